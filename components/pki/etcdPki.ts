/**
 * EtcdPki: the etcd CA and every certificate of the table in `certTable.ts`, as @pulumi/tls resources.
 * Private keys exist only as Pulumi secrets (the provider marks them so). Keys are ECDSA P-256 by default
 * (the provider's own ECDSA default, P-224, is unusable by etcd) or RSA.
 */
import * as pulumi from "@pulumi/pulumi";
import { invalidArgs } from "../argsError";
import * as tls from "@pulumi/tls";
import { EtcdPkiOptions } from "../etcd/options";
import { PKI_RENEW_MESSAGE, PKI_RENEW_TOKEN } from "../config/schema";
import { CA_COMMON_NAME, CertMember, CertSpec, etcdCertTable, USES } from "./certTable";

export const ETCD_PKI_TYPE = "etcd-ha:index:EtcdPki";

/** An existing CA to adopt instead of creating one (e.g. kubeadm's `/etc/kubernetes/pki/etcd/ca.{crt,key}`). */
export interface ExistingCa {
    /** The CA certificate (PEM). */
    certPem: pulumi.Input<string>;
    /** The CA private key (PEM). Pass a secret; it is wrapped as one regardless. */
    keyPem: pulumi.Input<string>;
}

/**
 * The leaf certificates' replacement trigger without a renew token: outside the token alphabet, so no token
 * equals it.
 */
export const NO_RENEW_TOKEN = "(none)";

/** Arguments of EtcdPki: the members, the `etcd.pki` settings (key algorithm, validity, renewal, a renew-now token, extra SANs) and an optional CA to adopt. */
export interface EtcdPkiArgs extends EtcdPkiOptions {
    /** Members that get a server and a peer certificate (name = CN, FQDN and address in the SANs). */
    members: CertMember[];
    /** Adopt this CA instead of creating one. */
    existingCa?: ExistingCa;
}

/** A certificate and its key. */
export interface CertPair {
    certPem: pulumi.Output<string>;
    /** Secret. */
    keyPem: pulumi.Output<string>;
}

/**
 * Per-instance data that is not a component output. Kept off the instance because the schema analyzer of
 * `pulumi package add` turns every property declaration of a component class (private and #private too)
 * into an output; accessors and methods it skips.
 */
const internals = new WeakMap<EtcdPki, { table: CertSpec[]; pairs: Map<string, CertPair> }>();

/** The etcd certificate authority and all certificates of a cluster. */
export class EtcdPki extends pulumi.ComponentResource {
    /** The CA certificate (PEM). Not secret. */
    public readonly caCertPem: pulumi.Output<string>;
    /** Every certificate by table id (PEM). Not secret. */
    public readonly certPems: pulumi.Output<Record<string, string>>;
    /** Every private key by table id (PEM). Secret. */
    public readonly privateKeyPems: pulumi.Output<Record<string, string>>;
    /** The certificate table the resources were built from. */
    get table(): CertSpec[] {
        return internals.get(this)!.table;
    }

    /**
     * @param name Logical name; children are `${name}-ca`, `${name}-<cert id>` (and `-key`, `-csr`).
     * @param args Members, key algorithm, validity, renew-now token, optional CA to adopt.
     * @param opts Resource options.
     */
    constructor(name: string, args: EtcdPkiArgs, opts?: pulumi.ComponentResourceOptions) {
        super(ETCD_PKI_TYPE, name, {}, opts);
        const problems = validatePkiArgs(args);
        if (problems.length > 0) invalidArgs("EtcdPki", name, problems);
        const algorithm = args.keyAlgorithm ?? "ECDSA";
        const keyArgs: tls.PrivateKeyArgs =
            algorithm === "RSA" ? { algorithm: "RSA", rsaBits: args.rsaBits ?? 2048 } : { algorithm: "ECDSA", ecdsaCurve: "P256" };
        const certValidityHours = args.certValidityHours ?? 8760;
        const earlyRenewalHours = args.earlyRenewalHours ?? 720;
        const table = etcdCertTable(args.members, { serverCertSans: args.serverCertSans, peerCertSans: args.peerCertSans });
        // Renew now: each change of the token replaces every leaf certificate (not the CA, not a key). The engine
        // replaces only on a change between two set values (null means "no trigger"), so a stack without a token
        // carries NO_RENEW_TOKEN: its first token then renews at once, and a stack from before this option gets
        // the sentinel without a replacement (null → value never replaces).
        const leafOptions = (): pulumi.CustomResourceOptions => ({ parent: this, replacementTrigger: args.renew ?? NO_RENEW_TOKEN });
        const pairs = new Map<string, CertPair>();
        internals.set(this, { table, pairs });

        let caCertPem: pulumi.Output<string>;
        let caKeyPem: pulumi.Output<string>;
        if (args.existingCa) {
            caCertPem = pulumi.output(args.existingCa.certPem);
            caKeyPem = pulumi.secret(args.existingCa.keyPem);
        } else {
            const caKey = new tls.PrivateKey(`${name}-ca-key`, keyArgs, { parent: this });
            const ca = new tls.SelfSignedCert(
                `${name}-ca`,
                {
                    privateKeyPem: caKey.privateKeyPem,
                    subject: { commonName: CA_COMMON_NAME, organization: "etcd-ha", organizationalUnit: name },
                    isCaCertificate: true,
                    setSubjectKeyId: true,
                    validityPeriodHours: args.caValidityHours ?? 87600,
                    allowedUses: [...USES.ca],
                },
                { parent: this },
            );
            caCertPem = ca.certPem;
            caKeyPem = caKey.privateKeyPem;
        }

        for (const spec of table) {
            const key = new tls.PrivateKey(`${name}-${spec.id}-key`, keyArgs, { parent: this });
            const csr = new tls.CertRequest(
                `${name}-${spec.id}-csr`,
                {
                    privateKeyPem: key.privateKeyPem,
                    subject: { commonName: spec.commonName, ...(spec.organization ? { organization: spec.organization } : {}) },
                    dnsNames: spec.dnsNames,
                    ipAddresses: spec.ipAddresses,
                },
                { parent: this },
            );
            const cert = new tls.LocallySignedCert(
                `${name}-${spec.id}`,
                {
                    certRequestPem: csr.certRequestPem,
                    caCertPem,
                    caPrivateKeyPem: caKeyPem,
                    validityPeriodHours: certValidityHours,
                    earlyRenewalHours,
                    allowedUses: spec.allowedUses,
                },
                leafOptions(),
            );
            pairs.set(spec.id, { certPem: cert.certPem, keyPem: key.privateKeyPem });
        }

        this.caCertPem = caCertPem;
        const ids = [...pairs.keys()];
        this.certPems = pulumi.all(ids.map((id) => pairs.get(id)!.certPem)).apply((pems) => Object.fromEntries(ids.map((id, i) => [id, pems[i]])));
        this.privateKeyPems = pulumi.secret(
            pulumi.all(ids.map((id) => pairs.get(id)!.keyPem)).apply((pems) => Object.fromEntries(ids.map((id, i) => [id, pems[i]]))),
        );
        this.registerOutputs({ caCertPem: this.caCertPem, certPems: this.certPems, privateKeyPems: this.privateKeyPems });
    }

    /** The certificate and key of a table row. Throws for an unknown id. */
    pair(id: string): CertPair {
        const { pairs } = internals.get(this)!;
        const p = pairs.get(id);
        if (!p) throw new Error(`EtcdPki: no certificate "${id}" (known: ${[...pairs.keys()].join(", ")})`);
        return p;
    }
}

/** Problems with EtcdPki arguments, every one (exported for tests). */
export function validatePkiArgs(args: EtcdPkiArgs): { path: string; reason: string }[] {
    const out: { path: string; reason: string }[] = [];
    if (args.keyAlgorithm !== undefined && args.keyAlgorithm !== "ECDSA" && args.keyAlgorithm !== "RSA") {
        out.push({ path: "keyAlgorithm", reason: `must be "ECDSA" (P-256) or "RSA" (got "${args.keyAlgorithm}")` });
    }
    if (args.rsaBits !== undefined && ![2048, 3072, 4096].includes(args.rsaBits)) out.push({ path: "rsaBits", reason: `must be 2048, 3072 or 4096 (got ${args.rsaBits})` });
    const ca = args.caValidityHours ?? 87600;
    const leaf = args.certValidityHours ?? 8760;
    const early = args.earlyRenewalHours ?? 720;
    for (const [k, v] of [["caValidityHours", ca], ["certValidityHours", leaf]] as const) {
        if (!Number.isInteger(v) || v < 24) out.push({ path: k, reason: `must be a whole number of hours, at least 24 (got ${v})` });
    }
    if (leaf > ca) out.push({ path: "certValidityHours", reason: `${leaf} h outlives the CA (${ca} h): shorten it or lengthen caValidityHours` });
    if (!Number.isInteger(early) || early < 0 || early >= leaf) {
        out.push({ path: "earlyRenewalHours", reason: `must be from 0 to less than certValidityHours (${leaf} h), or certificates renew on every run (got ${early})` });
    }
    if (args.renew !== undefined && (typeof args.renew !== "string" || !PKI_RENEW_TOKEN.test(args.renew))) {
        out.push({ path: "renew", reason: `${PKI_RENEW_MESSAGE} (got ${JSON.stringify(args.renew)})` });
    }
    if (args.members.length === 0) out.push({ path: "members", reason: "at least one member is required" });
    const seen = new Set<string>();
    args.members.forEach((m, i) => {
        if (seen.has(m.name)) out.push({ path: `members[${i}].name`, reason: `"${m.name}" is listed twice` });
        seen.add(m.name);
    });
    return out;
}
