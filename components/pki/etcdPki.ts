/**
 * EtcdPki: the etcd CA and every certificate of the table in `certTable.ts`, as @pulumi/tls resources.
 * Private keys exist only as Pulumi secrets (the provider marks them so). Keys are ECDSA P-256 by default
 * (the provider's own ECDSA default, P-224, is unusable by etcd) or RSA.
 */
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { CA_COMMON_NAME, CertMember, CertSpec, etcdCertTable, USES } from "./certTable";

export const ETCD_PKI_TYPE = "etcd-ha:index:EtcdPki";

/** An existing CA to adopt instead of creating one (e.g. kubeadm's `/etc/kubernetes/pki/etcd/ca.{crt,key}`). */
export interface ExistingCa {
    /** The CA certificate (PEM). */
    certPem: pulumi.Input<string>;
    /** The CA private key (PEM). Pass a secret; it is wrapped as one regardless. */
    keyPem: pulumi.Input<string>;
}

/** Arguments of EtcdPki. */
export interface EtcdPkiArgs {
    /** Members that get a server and a peer certificate (name = CN, FQDN and address in the SANs). */
    members: CertMember[];
    /** `ECDSA` (P-256, the default) or `RSA`. */
    keyAlgorithm?: "ECDSA" | "RSA";
    /** RSA key size (2048, 3072 or 4096). Default 2048. */
    rsaBits?: number;
    /** CA validity in hours. Default 87600 (10 years). */
    caValidityHours?: number;
    /** Leaf certificate validity in hours. Default 8760 (1 year). */
    certValidityHours?: number;
    /** A leaf is re-issued on the first `pulumi up` within this many hours of its expiry. Default 720. */
    earlyRenewalHours?: number;
    /** Extra SANs (names or IPs) on every server certificate, e.g. a load-balancer name. */
    serverCertSans?: string[];
    /** Extra SANs on every peer certificate. */
    peerCertSans?: string[];
    /** Adopt this CA instead of creating one. */
    existingCa?: ExistingCa;
}

/** A certificate and its key. */
export interface CertPair {
    certPem: pulumi.Output<string>;
    /** Secret. */
    keyPem: pulumi.Output<string>;
}

/** The etcd certificate authority and all certificates of a cluster. */
export class EtcdPki extends pulumi.ComponentResource {
    /** The CA certificate (PEM). Not secret. */
    public readonly caCertPem: pulumi.Output<string>;
    /** Every certificate by table id (PEM). Not secret. */
    public readonly certPems: pulumi.Output<Record<string, string>>;
    /** Every private key by table id (PEM). Secret. */
    public readonly privateKeyPems: pulumi.Output<Record<string, string>>;
    /** The certificate table the resources were built from. */
    public readonly table: CertSpec[];

    private readonly pairs: Map<string, CertPair>;

    /**
     * @param name Logical name; children are `${name}-ca`, `${name}-<cert id>` (and `-key`, `-csr`).
     * @param args Members, key algorithm, validity, optional CA to adopt.
     * @param opts Resource options.
     */
    constructor(name: string, args: EtcdPkiArgs, opts?: pulumi.ComponentResourceOptions) {
        super(ETCD_PKI_TYPE, name, {}, opts);
        const algorithm = args.keyAlgorithm ?? "ECDSA";
        const keyArgs: tls.PrivateKeyArgs =
            algorithm === "RSA" ? { algorithm: "RSA", rsaBits: args.rsaBits ?? 2048 } : { algorithm: "ECDSA", ecdsaCurve: "P256" };
        const certValidityHours = args.certValidityHours ?? 8760;
        const earlyRenewalHours = args.earlyRenewalHours ?? 720;
        this.table = etcdCertTable(args.members, { serverCertSans: args.serverCertSans, peerCertSans: args.peerCertSans });

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

        this.pairs = new Map();
        for (const spec of this.table) {
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
                { parent: this },
            );
            this.pairs.set(spec.id, { certPem: cert.certPem, keyPem: key.privateKeyPem });
        }

        this.caCertPem = caCertPem;
        const ids = [...this.pairs.keys()];
        this.certPems = pulumi.all(ids.map((id) => this.pairs.get(id)!.certPem)).apply((pems) => Object.fromEntries(ids.map((id, i) => [id, pems[i]])));
        this.privateKeyPems = pulumi.secret(
            pulumi.all(ids.map((id) => this.pairs.get(id)!.keyPem)).apply((pems) => Object.fromEntries(ids.map((id, i) => [id, pems[i]]))),
        );
        this.registerOutputs({ caCertPem: this.caCertPem, certPems: this.certPems, privateKeyPems: this.privateKeyPems });
    }

    /** The certificate and key of a table row. Throws for an unknown id. */
    pair(id: string): CertPair {
        const p = this.pairs.get(id);
        if (!p) throw new Error(`EtcdPki: no certificate "${id}" (known: ${[...this.pairs.keys()].join(", ")})`);
        return p;
    }
}
