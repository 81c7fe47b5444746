/**
 * EtcdCluster under the mock engine, asserting on every resource's inputs: keys reach commands only as
 * secrets on stdin; no command text, environment or non-secret value carries a key; SANs per member; the
 * step graph (prepare → binaries/certs/config → start → health gate); outputs gated on the health gate.
 */
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import { EtcdCluster, EtcdClusterArgs, validateClusterArgs } from "../components/etcdCluster";
import { EtcdHost } from "../components/hosts";
import { validatePkiArgs } from "../components/pki/etcdPki";
import { parseUnit } from "../components/etcd/flags";
import { pinnedSha256 } from "../components/etcd/version";
import { parseCertBundle, unwrapScript } from "../components/etcd/scripts";
import { runProgram, RecordedResource } from "../tools/engine/mockHost";
import { fakePem, isSecretInput, plain, T } from "./helpers/tokens";
import { testHostKey } from "./helpers/configs";
import { itLintsClean } from "./helpers/tools";
import { runPreview } from "./helpers/preview";
import { planNewResource } from "../tools/engine/planOutputs";

const KEY = fakePem("OPENSSH PRIVATE KEY", "ssh-key-material");

function hosts(n: number, user = "ubuntu"): EtcdHost[] {
    return Array.from({ length: n }, (_, i) => ({
        name: `etcd${i + 1}`,
        fqdn: `etcd${i + 1}.kloud.lan`,
        address: `10.0.0.${11 + i}`,
        hypervisor: `pve${(i % 3) + 1}`,
        connection: { host: `10.0.0.${11 + i}`, user, privateKey: pulumi.secret(KEY), hostKey: testHostKey(`etcd${i + 1}`) },
    }));
}

interface Run {
    resources: RecordedResource[];
    byName: Map<string, RecordedResource>;
    cluster: EtcdCluster;
}

async function runCluster(name: string, args: EtcdClusterArgs): Promise<Run> {
    let cluster: EtcdCluster | undefined;
    const { resources } = await runProgram({
        program: () => {
            cluster = new EtcdCluster(name, args);
            return {};
        },
        project: "etcd-ha",
        stack: "test",
        config: {},
        secretKeys: [],
    });
    return { resources, byName: new Map(resources.map((r) => [r.name, r])), cluster: cluster! };
}

function value<T>(o: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => o.apply((v) => resolve(v)));
}

describe("EtcdCluster (3 members, ECDSA, download)", () => {
    let run: Run;
    beforeAll(async () => {
        run = await runCluster("prod", { hosts: hosts(3), etcd: { version: "3.5.21" } });
    });
    const commands = () => run.resources.filter((r) => r.type === T.command);

    it("delivers every private key to commands only as a secret on stdin", () => {
        const withKeys = commands().filter((c) => JSON.stringify(plain(c.inputs.stdin) ?? "").includes("PRIVATE KEY"));
        expect(withKeys.map((c) => c.name).sort()).toEqual(["prod-etcd1-certs", "prod-etcd2-certs", "prod-etcd3-certs"]);
        for (const c of withKeys) {
            expect(isSecretInput(c.inputs.stdin)).toBe(true);
            expect(c.inputs.logging).toBe("none");
            expect(c.inputs.addPreviousOutputInEnv).toBe(false);
        }
        // The connection (with the SSH key) is secret on every command.
        for (const c of commands()) expect(isSecretInput(c.inputs.connection)).toBe(true);
    });

    it("puts no key material in any command text, environment or non-secret input", () => {
        for (const r of run.resources.filter((x) => x.custom)) {
            for (const [k, v] of Object.entries(r.inputs)) {
                if (isSecretInput(v)) continue;
                expect([r.name, k, JSON.stringify(v).includes("PRIVATE KEY")]).toEqual([r.name, k, false]);
            }
            expect(r.inputs.environment).toBeUndefined();
        }
    });

    it("each member's bundle holds the CA, its own server/peer pair, the healthcheck and admin clients", () => {
        const certs = run.byName.get("prod-etcd2-certs")!;
        const bundle = parseCertBundle(String(plain(certs.inputs.stdin)));
        expect([...bundle.keys()]).toEqual(["ca.crt", "server.crt", "server.key", "peer.crt", "peer.key", "healthcheck-client.crt", "healthcheck-client.key", "admin.crt", "admin.key"]);
        expect(bundle.get("server.crt")).toContain("prod-pki-etcd2-server");
        expect(bundle.get("peer.key")).toContain("prod-pki-etcd2-peer-key");
        expect(bundle.get("ca.crt")).toContain("prod-pki-ca");
        expect([...bundle.values()].join("")).not.toContain("apiserver-etcd-client");
    });

    it("issues server and peer certificates with each member's SANs", () => {
        for (const [i, n] of ["etcd1", "etcd2", "etcd3"].entries()) {
            const server = run.byName.get(`prod-pki-${n}-server-csr`)!.inputs;
            expect(server.dnsNames).toEqual([n, `${n}.kloud.lan`, "localhost"]);
            expect(server.ipAddresses).toEqual([`10.0.0.${11 + i}`, "127.0.0.1", "::1"]);
            expect(server.subject).toEqual({ commonName: n });
            const peer = run.byName.get(`prod-pki-${n}-peer-csr`)!.inputs;
            expect(peer.dnsNames).toEqual([n, `${n}.kloud.lan`]);
            expect(peer.ipAddresses).toEqual([`10.0.0.${11 + i}`]);
            expect(run.byName.get(`prod-pki-${n}-server`)!.inputs.allowedUses).toEqual(["digital_signature", "key_encipherment", "server_auth", "client_auth"]);
        }
        for (const [id, cn] of [["apiserver-etcd-client", "kube-apiserver-etcd-client"], ["healthcheck-client", "kube-etcd-healthcheck-client"], ["admin", "etcd-admin"]]) {
            expect(run.byName.get(`prod-pki-${id}-csr`)!.inputs.subject).toEqual({ commonName: cn, organization: "system:masters" });
            expect(run.byName.get(`prod-pki-${id}`)!.inputs.allowedUses).toEqual(["digital_signature", "key_encipherment", "client_auth"]);
        }
    });

    it("makes every key ECDSA P-256 and a 10-year CA, 1-year leaves with a 30-day renewal window", () => {
        const keys = run.resources.filter((r) => r.type === T.privateKey);
        expect(keys).toHaveLength(10);
        for (const k of keys) expect(k.inputs).toEqual({ algorithm: "ECDSA", ecdsaCurve: "P256" });
        const ca = run.byName.get("prod-pki-ca")!.inputs;
        expect(ca).toMatchObject({ isCaCertificate: true, validityPeriodHours: 87600, allowedUses: ["cert_signing", "crl_signing", "digital_signature"] });
        expect(ca.subject).toMatchObject({ commonName: "etcd-ca" });
        for (const c of run.resources.filter((r) => r.type === T.locallySignedCert)) {
            expect(c.inputs).toMatchObject({ validityPeriodHours: 8760, earlyRenewalHours: 720 });
            expect(isSecretInput(c.inputs.caPrivateKeyPem)).toBe(true);
        }
    });

    it("orders each member's steps: prepare → binaries, certs, config → start", () => {
        const urn = (n: string) => run.byName.get(n)!.urn;
        for (const m of ["etcd1", "etcd2", "etcd3"]) {
            const deps = (step: string) => run.byName.get(`prod-${m}-${step}`)!.dependencies;
            expect(deps("prepare")).toEqual([]);
            for (const step of ["binaries", "certs", "config"]) expect(deps(step)).toContain(urn(`prod-${m}-prepare`));
            expect(deps("start")).toEqual(expect.arrayContaining(["binaries", "certs", "config"].map((s) => urn(`prod-${m}-${s}`))));
            // Members install independently: no install step of one member waits for another member.
            for (const step of ["prepare", "binaries", "certs", "config"]) {
                for (const other of ["etcd1", "etcd2", "etcd3"].filter((o) => o !== m)) {
                    expect(deps(step).filter((d) => d.includes(`prod-${other}-`))).toEqual([]);
                }
            }
        }
        // Start steps do not wait for each other either: members of a live cluster take turns at run time.
        for (const m of ["etcd1", "etcd2", "etcd3"]) {
            expect(run.byName.get(`prod-${m}-start`)!.dependencies.filter((d) => /prod-etcd\d-/.test(d) && !d.includes(`prod-${m}-`))).toEqual([]);
        }
    });

    it("start decides bootstrap or join at run time from the other members; its delete leaves the cluster", () => {
        const start = run.byName.get("prod-etcd2-start")!;
        const script = unwrapScript(String(start.inputs.create));
        expect(script).toContain("cluster='etcd1=https://10.0.0.11:2380,etcd2=https://10.0.0.12:2380,etcd3=https://10.0.0.13:2380'");
        expect(script).toContain("others='https://10.0.0.11:2379,https://10.0.0.13:2379'");
        expect(script).toMatch(/\ntoken='prod-[a-z0-9]{16}'\n/);
        expect(script).toContain("\nreplace=''\n");
        expect(script).not.toContain("replace requested");
        // member.sh's start, after its parameters and the rolling helpers.
        expect(script).toContain('member add "$name" --peer-urls="$peer_url" --learner');
        expect(script.trimEnd().split("\n").pop()).toBe("etcd_ha_start");
        const leave = unwrapScript(String(start.inputs.delete));
        expect(leave).toContain("\nname='etcd2'\n");
        expect(leave).toContain("\npeer_url='https://10.0.0.12:2380'\n");
        expect(leave).toContain('reconfigure member remove "$id"');
        expect(leave.trimEnd().split("\n").pop()).toBe("etcd_ha_leave");
    });

    describe("the install steps' deletes (after the leave: certs, config, binaries, then prepare)", () => {
        const del = (m: string, step: string) => String(plain(run.byName.get(`prod-${m}-${step}`)!.inputs.delete));
        /** The parameter block of a script, as name → value. */
        const params = (script: string) => Object.fromEntries([...script.matchAll(/^([a-z_]+)='([^'\n]*)'$/gm)].map((m) => [m[1], m[2]]));

        it("a replacement forced by hand deletes first: the old step's delete never removes what the new one wrote", () => {
            for (const step of ["prepare", "binaries", "certs", "config"]) expect([step, run.byName.get(`prod-etcd2-${step}`)!.options?.deleteBeforeReplace]).toEqual([step, true]);
        });

        it("each of prepare, binaries, certs and config has a delete, run through sudo -n like the creates, calling its own entry", () => {
            const entries = { prepare: "etcd_ha_uninstall_prepare", binaries: "etcd_ha_uninstall_binaries", certs: "etcd_ha_uninstall_certs", config: "etcd_ha_uninstall_config" };
            for (const m of ["etcd1", "etcd2", "etcd3"]) {
                for (const [step, entry] of Object.entries(entries)) {
                    expect([m, step, del(m, step)]).toEqual([m, step, expect.stringMatching(/^sudo -n \/bin\/bash -c /)]);
                    expect(unwrapScript(del(m, step)).trimEnd().split("\n").pop()).toBe(entry);
                }
            }
        });

        it("certs: exactly this member's files, by name only (no key material, not a secret); config: its files and the unit's environment file", () => {
            const certs = run.byName.get("prod-etcd2-certs")!;
            expect(isSecretInput(certs.inputs.delete)).toBe(false);
            expect(del("etcd2", "certs")).not.toContain("PRIVATE KEY");
            const bundle = parseCertBundle(String(plain(certs.inputs.stdin)));
            expect(params(unwrapScript(del("etcd2", "certs"))).cert_files.split(" ")).toEqual([...bundle.keys()]);
            expect(params(unwrapScript(del("etcd2", "config")))).toMatchObject({
                config_files: "/etc/systemd/system/etcd.service /etc/etcd/etcdctl.env /usr/local/bin/etcdctl.sh /etc/etcd/bootstrap.env",
                unit_path: "/etc/systemd/system/etcd.service",
            });
        });

        it("prepare: keeps the member's data dir and the snapshot dir (named in its output)", async () => {
            expect(params(unwrapScript(del("etcd2", "prepare")))).toMatchObject({ data_dir: "/var/lib/etcd", snapshot_dir: "/var/backups/etcd", state_dir: "/var/lib/etcd-ha", staging_dir: "/var/tmp/etcd-ha" });
            const custom = await runCluster("prod", { hosts: hosts(3), etcd: { version: "3.5.21", dataDir: "/data/etcd" }, snapshots: { dir: "/srv/etcd-snapshots" } });
            expect(params(unwrapScript(String(plain(custom.byName.get("prod-etcd1-prepare")!.inputs.delete))))).toMatchObject({ data_dir: "/data/etcd", snapshot_dir: "/srv/etcd-snapshots" });
        });

        describe.each(["prepare", "binaries", "certs", "config"])("the %s delete script", (step) => {
            itLintsClean(() => unwrapScript(del("etcd2", step)));
        });
    });

    it("runs the health gate after every member's start step, on the first member (none is being replaced)", () => {
        const gate = run.byName.get("prod-health")!;
        for (const m of ["etcd1", "etcd2", "etcd3"]) expect(gate.dependencies).toContain(run.byName.get(`prod-${m}-start`)!.urn);
        const conn = plain(gate.inputs.connection) as { host: string; user: string };
        expect(conn.host).toBe("10.0.0.11");
        const script = unwrapScript(String(gate.inputs.create));
        expect(script).toContain("endpoint health --cluster");
        expect(script).toContain("member list");
        expect(script).toContain("etcd3 https://10.0.0.13:2379 https://10.0.0.13:2380");
        expect(script).toContain("\npki_dir='/etc/etcd/pki'\n");
        expect(script).toContain('--cert="$pki_dir/healthcheck-client.crt"');
        expect(script.trimEnd().split("\n").pop()).toBe("etcd_ha_gate");
    });

    it("makes the outputs consumers use wait for the health gate", async () => {
        type WithResources = { allResources?: () => Promise<Set<pulumi.Resource>> };
        const c = run.cluster;
        for (const o of [c.clientEndpoints, c.etcdServers, c.caCertPem, c.apiserverClientCertPem, c.apiserverClientKeyPem, c.kubeApiserverFlags, c.kubeadmEtcdExternal, c.metricsUrls, c.prometheusScrapeConfig, c.members]) {
            const deps = await (o as unknown as WithResources).allResources!();
            const names = await Promise.all([...deps].map((d) => value(d.urn)));
            expect(names.some((u) => u.endsWith("::prod-health"))).toBe(true);
        }
        // A value computed without the cluster (quorum) does not wait for it: the check tells them apart.
        const q = await (c.quorum as unknown as WithResources).allResources!();
        expect(q.size).toBe(0);
    });

    it("exports client keys only as secrets, certificates and endpoints in the clear", async () => {
        const c = run.cluster;
        expect(await pulumi.isSecret(c.apiserverClientKeyPem)).toBe(true);
        expect(await pulumi.isSecret(c.adminClientKeyPem)).toBe(true);
        expect(await pulumi.isSecret(c.apiserverClientCertPem)).toBe(false);
        expect(await pulumi.isSecret(c.caCertPem)).toBe(false);
        expect(await value(c.apiserverClientCertPem)).toContain("prod-pki-apiserver-etcd-client");
        expect(await value(c.etcdServers)).toBe("https://10.0.0.11:2379,https://10.0.0.12:2379,https://10.0.0.13:2379");
        expect(await value(c.kubeApiserverFlags)).toContain("--etcd-servers=https://10.0.0.11:2379,https://10.0.0.12:2379,https://10.0.0.13:2379\n");
        expect(await value(c.kubeadmEtcdExternal)).toContain("external:");
        expect(await value(c.metricsUrls)).toEqual(["http://10.0.0.11:2381", "http://10.0.0.12:2381", "http://10.0.0.13:2381"]);
    });

    it("renders each unit with the member's own flags; the start steps share the random token", () => {
        const unitOf = (m: string) => {
            const script = unwrapScript(String(run.byName.get(`prod-${m}-config`)!.inputs.create));
            const unit = /<<'ETCD_HA_FILE_0'\n([\s\S]*?)\nETCD_HA_FILE_0/.exec(script)![1];
            return parseUnit(unit).execStart.flags;
        };
        const f1 = unitOf("etcd1");
        const f3 = unitOf("etcd3");
        expect(f3.get("name")).toBe("etcd3");
        expect(f3.get("advertise-client-urls")).toBe("https://10.0.0.13:2379");
        // No bootstrap flags in the unit: the start step decides them (bootstrap.env), so a membership
        // change leaves every unit, and every running member, alone.
        expect(f1.has("initial-cluster")).toBe(false);
        expect(f1.has("initial-cluster-token")).toBe(false);
        const token = (m: string) => /\ntoken='(prod-[a-z0-9]{16})'\n/.exec(unwrapScript(String(run.byName.get(`prod-${m}-start`)!.inputs.create)))![1];
        expect(token("etcd1")).toBe(token("etcd3"));
        expect(run.byName.get("prod-token")!.inputs).toMatchObject({ length: 16, special: false, upper: false });
    });

    it("runs every script through sudo -n for a non-root SSH user", () => {
        for (const c of commands()) expect(String(c.inputs.create)).toMatch(/^sudo -n \/bin\/bash -c /);
    });

    it("downloads the pinned release and checks its sha256", () => {
        const script = unwrapScript(String(run.byName.get("prod-etcd1-binaries")!.inputs.create));
        expect(script).toContain("\nsource_kind='download'\nsource='https://github.com/etcd-io/etcd/releases/download/v3.5.21/etcd-v3.5.21-linux-amd64.tar.gz'\n");
        expect(script).toContain(`'${pinnedSha256("3.5.21", "amd64")}'`);
        expect(script).toContain("sha256sum --check");
    });
});

describe("EtcdCluster outputs and the health gate", () => {
    /** The outputs consumers use, by name. */
    const GATED = ["clientEndpoints", "etcdServers", "caCertPem", "apiserverClientCertPem", "apiserverClientKeyPem", "adminClientCertPem", "adminClientKeyPem", "kubeApiserverFlags", "kubeadmEtcdExternal", "metricsUrls", "prometheusScrapeConfig", "members"] as const;
    /** A resource that takes one value as input, as a consumer's would. */
    class Consumer extends pulumi.CustomResource {
        constructor(name: string, value: pulumi.Input<unknown>) {
            super("test:index:Consumer", name, { value });
        }
    }

    it("in a preview: a resource given a gated output gets its value when it follows from config, and depends on the gate", async () => {
        const { resources } = await runPreview({
            program: () => {
                const c = new EtcdCluster("prod", { hosts: hosts(3) });
                for (const k of GATED) new Consumer(`uses-${k}`, c[k]);
                new Consumer("uses-quorum", c.quorum);
                return {};
            },
            project: "etcd-ha",
            stack: "test",
            config: {},
            secretKeys: [],
        });
        const byName = new Map(resources.map((r) => [r.name, r]));
        const gate = byName.get("prod-health")!.urn;
        for (const k of GATED) expect([k, byName.get(`uses-${k}`)!.dependencies]).toEqual([k, expect.arrayContaining([gate])]);
        // A value that does not wait for the gate has no such dependency: the check tells them apart.
        expect(byName.get("uses-quorum")!.dependencies).toEqual([]);
        expect(byName.get("uses-quorum")!.inputs.value).toBe(2);
        const value = (k: string) => plain(byName.get(`uses-${k}`)!.inputs.value);
        expect(value("etcdServers")).toBe("https://10.0.0.11:2379,https://10.0.0.12:2379,https://10.0.0.13:2379");
        expect(value("clientEndpoints")).toEqual(["https://10.0.0.11:2379", "https://10.0.0.12:2379", "https://10.0.0.13:2379"]);
        expect(String(value("kubeApiserverFlags")).split("\n")[0]).toBe("--etcd-servers=https://10.0.0.11:2379,https://10.0.0.12:2379,https://10.0.0.13:2379");
        expect(value("metricsUrls")).toEqual(["http://10.0.0.11:2381", "http://10.0.0.12:2381", "http://10.0.0.13:2381"]);
        expect((value("members") as { name: string }[]).map((m) => m.name)).toEqual(["etcd1", "etcd2", "etcd3"]);
        // Certificates and keys come from tls resources that a first preview has not created.
        for (const k of ["caCertPem", "apiserverClientCertPem", "apiserverClientKeyPem", "adminClientCertPem", "adminClientKeyPem"]) expect([k, pulumi.isUnknown(value(k))]).toEqual([k, true]);
        expect(pulumi.isUnknown(value("etcdServers"))).toBe(false);
    });

    it("in an update: a gated output resolves only after the engine has answered the gate's registration", async () => {
        const events: string[] = [];
        await runProgram({
            program: () => {
                const c = new EtcdCluster("prod", { hosts: hosts(3) });
                for (const k of GATED) (c[k] as pulumi.Output<unknown>).apply(() => events.push(`resolved ${k}`));
                // Ungated, for contrast: resolves at once.
                c.quorum.apply(() => events.push("resolved quorum"));
                return {};
            },
            project: "etcd-ha",
            stack: "test",
            config: {},
            secretKeys: [],
            newResource: async (args) => {
                if (args.name === "prod-health") {
                    // The gate's step takes a while; the engine answers the registration once it has run.
                    await new Promise((r) => setTimeout(r, 300));
                    events.push("gate ran");
                }
                return planNewResource(args);
            },
        });
        const gateAt = events.indexOf("gate ran");
        expect(gateAt).toBeGreaterThan(0);
        expect(events.indexOf("resolved quorum")).toBeLessThan(gateAt);
        for (const k of GATED) expect([k, events.indexOf(`resolved ${k}`)]).toEqual([k, expect.any(Number)]);
        expect(GATED.filter((k) => events.indexOf(`resolved ${k}`) < gateAt)).toEqual([]);
    });
});

describe("EtcdCluster variants", () => {
    it("push install: copies the tarball with CopyToRemote, then installs from the staged path", async () => {
        const tarball = path.join(__dirname, "fixtures", "etcd-flags-3.5.txt");
        const run = await runCluster("lab", { hosts: hosts(3, "root"), etcd: { version: "3.4.23", install: { method: "push", tarball, sha256: "b".repeat(64) } } });
        const copies = run.resources.filter((r) => r.type === T.copyToRemote);
        expect(copies.map((c) => c.name)).toEqual(["lab-etcd1-tarball", "lab-etcd2-tarball", "lab-etcd3-tarball"]);
        expect(copies[0].inputs.remotePath).toBe("/var/tmp/etcd-ha/etcd-v3.4.23-linux-amd64.tar.gz");
        // No push before the version change is checked (a refused upgrade leaves the hosts as they were).
        for (const c of copies) expect(c.dependencies).toContain(run.byName.get("lab-upgrade-snapshot")!.urn);
        const bin = run.byName.get("lab-etcd1-binaries")!;
        expect(bin.dependencies).toContain(copies[0].urn);
        const script = unwrapScript(String(bin.inputs.create));
        // binaries.sh takes the tarball from where the push put it: nothing is downloaded.
        expect(script).toContain("\nsource_kind='push'\nsource='/var/tmp/etcd-ha/etcd-v3.4.23-linux-amd64.tar.gz'\n");
        expect(script).toContain(`\nsha256='${"b".repeat(64)}'\n`);
        expect(String(bin.inputs.create)).toMatch(/^\/bin\/bash -c /);
    });

    it("RSA keys when configured", async () => {
        const run = await runCluster("r", { hosts: hosts(1), etcd: { pki: { keyAlgorithm: "RSA", rsaBits: 3072 } } });
        for (const k of run.resources.filter((r) => r.type === T.privateKey)) expect(k.inputs).toEqual({ algorithm: "RSA", rsaBits: 3072 });
    });

    it("adopts an existing CA: no CA resources, leaves signed with the given key (kept secret)", async () => {
        const run = await runCluster("adopt", {
            hosts: hosts(3),
            existingCa: { certPem: fakePem("CERTIFICATE", "kubeadm-etcd-ca"), keyPem: fakePem("RSA PRIVATE KEY", "ca-key") },
        });
        expect(run.byName.has("adopt-pki-ca")).toBe(false);
        expect(run.byName.has("adopt-pki-ca-key")).toBe(false);
        const leaf = run.byName.get("adopt-pki-etcd1-server")!.inputs;
        expect(leaf.caCertPem).toContain("kubeadm-etcd-ca");
        expect(isSecretInput(leaf.caPrivateKeyPem)).toBe(true);
        expect(JSON.stringify(plain(leaf.caPrivateKeyPem))).toContain("ca-key");
    });

    it("stacked topology: kube-apiserver uses its local member; members carry the local URL", async () => {
        const run = await runCluster("k8s", { hosts: hosts(3), topology: "stacked" });
        expect(await value(run.cluster.kubeApiserverFlags)).toContain("--etcd-servers=https://127.0.0.1:2379\n");
        const members = await value(run.cluster.members);
        expect(members.map((m) => m.localClientUrl)).toEqual(["https://127.0.0.1:2379", "https://127.0.0.1:2379", "https://127.0.0.1:2379"]);
        expect(await value(run.cluster.kubeadmEtcdExternal)).toContain("https://10.0.0.13:2379");
    });

    it("reports every bad argument in one error", async () => {
        const bad = hosts(2);
        bad[1] = { ...bad[1], name: bad[0].name, address: "10.0.0.300" };
        await expect(runCluster("bad", { hosts: bad, topology: "flat", etcd: { version: "4.0.0", electionTimeoutMs: 10 }, healthGate: { attempts: 0 } })).rejects.toMatchObject({
            errors: expect.arrayContaining([
                expect.objectContaining({ propertyPath: "hosts[1].name" }),
                expect.objectContaining({ propertyPath: "hosts[1].address" }),
                expect.objectContaining({ propertyPath: "topology" }),
                expect.objectContaining({ propertyPath: "etcd.version" }),
                expect.objectContaining({ propertyPath: "etcd.electionTimeoutMs" }),
                expect.objectContaining({ propertyPath: "healthGate.attempts" }),
            ]),
        });
    });

    it("refuses a version without a pinned or given sha256", async () => {
        await expect(runCluster("nosha", { hosts: hosts(1), etcd: { version: "3.5.99" } })).rejects.toMatchObject({
            errors: [expect.objectContaining({ propertyPath: "etcd.install.sha256", reason: expect.stringMatching(/not in the pinned release table/) })],
        });
    });
});

describe("EtcdCluster day-2 arguments", () => {
    it("refuses 2 hosts and a replace list that is not one existing member of 3+, with the stack config's rule", () => {
        expect(validateClusterArgs({ hosts: hosts(3), replace: ["etcd2"] })).toEqual([]);
        expect(validateClusterArgs({ hosts: hosts(3), replace: ["etcd9", "etcd1"] }).map((p) => p.path)).toEqual(["replace[0]", "replace"]);
        expect(validateClusterArgs({ hosts: hosts(2), replace: ["etcd1"] })).toEqual([
            { path: "replace", reason: "a 2-member cluster cannot replace a member and keep quorum: restore it from a snapshot instead" },
            { path: "hosts", reason: expect.stringMatching(/^2 members cannot lose either one \(quorum is 2\)/) },
        ]);
    });
});

describe("EtcdCluster host keys", () => {
    const unpinned = (n: number) => hosts(n).map((h) => ({ ...h, connection: { ...h.connection, hostKey: undefined } }));

    it("refuses hosts without a pinned host key (every one named) or with a line that is not a public key", () => {
        const hs = unpinned(3);
        hs[1].connection.hostKey = "not a key" as unknown as undefined;
        expect(validateClusterArgs({ hosts: hs })).toEqual([
            { path: "hosts[0].connection.hostKey", reason: expect.stringMatching(/^is required: the public SSH host key of etcd1 \(10\.0\.0\.11\).*insecureIgnoreHostKeys: true/) },
            { path: "hosts[1].connection.hostKey", reason: 'is not an OpenSSH public key line such as "ssh-ed25519 AAAA…" (got "not a key")' },
            { path: "hosts[2].connection.hostKey", reason: expect.stringMatching(/^is required: the public SSH host key of etcd3/) },
        ]);
        expect(validateClusterArgs({ hosts: unpinned(3), insecureIgnoreHostKeys: true })).toEqual([]);
    });

    it("pins each host's own key (comment dropped) on every command, copy and gate", async () => {
        const run = await runCluster("pinned", { hosts: hosts(3), etcd: { version: "3.5.21", install: { method: "push", tarball: "/tmp/etcd-v3.5.21-linux-amd64.tar.gz", sha256: "ab".repeat(32) } } });
        const remote = run.resources.filter((r) => r.type === T.command || r.type === T.copyToRemote);
        // Six steps and a tarball copy per member; the pre-upgrade snapshot, the gate and the teardown step.
        expect(remote.length).toBe(6 * 3 + 3 + 3);
        const keyOf = new Map(hosts(3).map((h) => [h.address, (h.connection.hostKey as string).split(" ").slice(0, 2).join(" ")]));
        for (const r of remote) {
            const c = plain(r.inputs.connection) as { host: string; hostKey?: string };
            expect([r.name, c.hostKey]).toEqual([r.name, keyOf.get(c.host)]);
        }
    });

    it("with insecureIgnoreHostKeys: no key pinned, and a warning naming the unpinned hosts", async () => {
        const warn = jest.spyOn(pulumi.log, "warn");
        try {
            const run = await runCluster("unpinned", { hosts: unpinned(3), insecureIgnoreHostKeys: true, etcd: { version: "3.5.21" } });
            for (const r of run.resources.filter((x) => x.type === T.command)) expect((plain(r.inputs.connection) as { hostKey?: string }).hostKey).toBeUndefined();
            expect(warn.mock.calls.map((c) => c[0])).toContainEqual(expect.stringMatching(/^SSH host keys are not checked for etcd1, etcd2, etcd3 \(insecureIgnoreHostKeys\)/));
        } finally {
            warn.mockRestore();
        }
    });
});

describe("EtcdCluster day-2 steps", () => {
    const SHA = "ab".repeat(32);
    const urnOf = (run: Run, n: string) => run.byName.get(n)!.urn;
    const script = (run: Run, n: string) => unwrapScript(String(plain(run.byName.get(n)!.inputs.create)));

    it("takes the pre-upgrade snapshot (with the upgrade guard) before any member's binaries and config steps", async () => {
        const run = await runCluster("prod", { hosts: hosts(3), etcd: { version: "3.5.21" } });
        const snap = run.byName.get("prod-upgrade-snapshot")!;
        expect(snap.parent).toBe(run.byName.get("prod")!.urn);
        const body = script(run, "prod-upgrade-snapshot");
        expect(body.indexOf("etcd_ha_upgrade_guard\n")).toBeGreaterThan(0);
        expect(body.indexOf("etcd_ha_upgrade_guard\n")).toBeLessThan(body.indexOf("snapshot save"));
        expect(body).toContain("member='etcd1'");
        expect(body).toContain('prefix="${cluster}_${member}_pre-upgrade_"');
        for (const m of ["etcd1", "etcd2", "etcd3"]) {
            expect(run.byName.get(`prod-${m}-binaries`)!.dependencies).toContain(snap.urn);
            expect(script(run, `prod-${m}-binaries`)).toContain("etcd_ha_upgrade_guard\n");
            // The config step too: the guard runs before the first file is written.
            expect(run.byName.get(`prod-${m}-config`)!.dependencies).toContain(snap.urn);
            const config = script(run, `prod-${m}-config`);
            expect(config.indexOf("etcd_ha_upgrade_guard\n")).toBeGreaterThan(0);
            expect(config.indexOf("etcd_ha_upgrade_guard\n")).toBeLessThan(config.indexOf("write_file '/etc/systemd/system/etcd.service'"));
            expect(config).toContain("local bin='/usr/local/bin/etcd' to=3.5.21 ");
            // The start installs the staged release in the member's turn.
            expect(script(run, `prod-${m}-start`)).toContain("\nrelease='yes'\n");
            expect(script(run, `prod-${m}-start`)).toMatch(/\n {4}install_release\n/);
        }
    });

    it("runs the pre-upgrade snapshot and the health gate on the first member not being replaced (its host may be new and empty)", async () => {
        const run = await runCluster("prod", { hosts: hosts(3), replace: ["etcd1"] });
        for (const step of ["prod-upgrade-snapshot", "prod-health"]) {
            expect((plain(run.byName.get(step)!.inputs.connection) as { host: string }).host).toBe("10.0.0.12");
        }
        expect(script(run, "prod-upgrade-snapshot")).toContain("member='etcd2'");
        expect(script(run, "prod-upgrade-snapshot")).toContain("https://10.0.0.12:2379");
        // The gate still asks every member, etcd1 included.
        expect(script(run, "prod-health")).toContain("etcd1 https://10.0.0.11:2379 https://10.0.0.11:2380");
    });

    it("installs the snapshot timer on every member after its start and the health gate; off: the timer is removed, the script stays", async () => {
        const on = await runCluster("prod", { hosts: hosts(3), snapshots: { retain: 7, schedule: "hourly", dir: "/srv/etcd-snapshots" } });
        for (const m of ["etcd1", "etcd2", "etcd3"]) {
            const mt = on.byName.get(`prod-${m}-maintenance`)!;
            expect([...mt.dependencies].sort()).toEqual([urnOf(on, `prod-${m}-start`), urnOf(on, "prod-health")].sort());
            const body = script(on, `prod-${m}-maintenance`);
            expect(body).toContain("OnCalendar=hourly");
            expect(body).toContain("retain=7");
            expect(body).toContain("dir='/srv/etcd-snapshots'");
            expect(body).toContain(`member='${m}'`);
            expect(body).toContain("systemctl --no-reload enable etcd-ha-snapshot.timer");
            expect(String(plain(mt.inputs.delete))).toContain("systemctl disable --now etcd-ha-snapshot.timer");
        }
        const off = await runCluster("prod", { hosts: hosts(3), snapshots: { enabled: false } });
        const body = script(off, "prod-etcd1-maintenance");
        expect(body).not.toContain("OnCalendar=");
        expect(body).toContain("systemctl disable --now etcd-ha-snapshot.timer");
        expect(body).toContain("/usr/local/bin/etcd-ha-snapshot");
    });

    it("snapshots.s3: each member's maintenance step gets the keys only as a secret on stdin (output not logged), the script the store's settings and no key", async () => {
        const SECRET = "wJalrXUtnFEMI-example-secret";
        const CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
        const run = await runCluster("prod", {
            hosts: hosts(3),
            snapshots: { s3: { endpoint: "https://s3.kloud.lan:9000", bucket: "etcd-backups", caPem: CA, retainCount: 10 } },
            s3Credentials: pulumi.secret({ accessKeyId: "AKIDEXAMPLE", secretAccessKey: SECRET }),
        });
        for (const m of ["etcd1", "etcd2", "etcd3"]) {
            const mt = run.byName.get(`prod-${m}-maintenance`)!;
            expect(isSecretInput(mt.inputs.stdin)).toBe(true);
            expect(plain(mt.inputs.stdin)).toBe(`user = "AKIDEXAMPLE:${SECRET}"\n`);
            expect(mt.inputs.logging).toBe("none");
            const body = script(run, `prod-${m}-maintenance`);
            expect(body).not.toContain(SECRET);
            expect(body).not.toContain("AKIDEXAMPLE");
            expect(body).toContain("s3_endpoint='https://s3.kloud.lan:9000'");
            expect(body).toContain("s3_bucket='etcd-backups'");
            expect(body).toContain(`s3_keys='etcd/'"$cluster/"`);
            expect(body).toContain("s3_auth='/etc/etcd/s3.curlrc'");
            expect(body).toContain("s3_ca='/etc/etcd/s3-ca.crt'");
            expect(body).toContain("keeping the newest 10 of at most 30 days");
            expect(body).toContain("write_file '/etc/etcd/s3-ca.crt' 0644 root:root");
            expect(String(plain(mt.inputs.delete))).toContain("/etc/etcd/s3.curlrc");
        }
        // Without s3 the keys are neither sent nor kept: the step removes what an earlier run wrote.
        const plainRun = await runCluster("prod", { hosts: hosts(3) });
        const mt = plainRun.byName.get("prod-etcd1-maintenance")!;
        expect(mt.inputs.stdin).toBeUndefined();
        expect(script(plainRun, "prod-etcd1-maintenance")).toContain("rm -f '/etc/etcd/s3.curlrc' '/etc/etcd/s3-ca.crt'");
        // snapshots.s3 without keys: refused with the rest of the arguments' problems.
        await expect(runCluster("prod", { hosts: hosts(3), snapshots: { s3: { endpoint: "http://s3.kloud.lan:9000", bucket: "etcd-backups" } } })).rejects.toMatchObject({
            errors: [
                expect.objectContaining({ propertyPath: "snapshots.s3.endpoint", reason: expect.stringMatching(/^must be https:\/\/host\[:port\]/) }),
                expect.objectContaining({ propertyPath: "s3Credentials", reason: expect.stringMatching(/^is required with snapshots\.s3/) }),
            ],
        });
    });

    it("restore: every member stopped before any is restored; each start after its restore; the gate re-runs", async () => {
        const run = await runCluster("prod", { hosts: hosts(3), restore: { fromSnapshot: "/backups/etcd.db", sha256: SHA } });
        const stops = ["etcd1", "etcd2", "etcd3"].map((m) => urnOf(run, `prod-${m}-restore-stop`));
        for (const m of ["etcd1", "etcd2", "etcd3"]) {
            const restore = run.byName.get(`prod-${m}-restore`)!;
            expect(restore.dependencies).toEqual(expect.arrayContaining([...stops, urnOf(run, `prod-${m}-restore-snapshot`), urnOf(run, `prod-${m}-binaries`)]));
            expect(run.byName.get(`prod-${m}-restore-snapshot`)!.inputs.remotePath).toBe(`/var/tmp/etcd-ha/restore/${SHA.slice(0, 16)}.db`);
            expect(run.byName.get(`prod-${m}-start`)!.dependencies).toContain(restore.urn);
            const body = script(run, `prod-${m}-restore`);
            expect(body).toContain("--initial-cluster-token 'prod-restore-abababababab'");
            expect(body).toContain(`--name '${m}'`);
            expect(script(run, `prod-${m}-start`)).toContain("\nrestore_id='abababababab'\n");
            expect(script(run, `prod-${m}-start`)).toContain('started restored member $name (restore $restore_id)');
        }
        expect(script(run, "prod-health")).toContain("# after: restore abababababab\n");
        const url = await runCluster("prod", { hosts: hosts(3), restore: { fromSnapshot: "https://backups.example/etcd.db", sha256: SHA, id: "again-1" } });
        expect(url.resources.filter((r) => r.type === T.copyToRemote)).toEqual([]);
        expect(script(url, "prod-etcd2-restore")).toContain("curl --fail");
        expect(script(url, "prod-etcd2-restore")).toContain("--initial-cluster-token 'prod-restore-again-1'");
        // Without a restore there are no restore steps.
        const plainRun = await runCluster("prod", { hosts: hosts(3) });
        expect(plainRun.resources.filter((r) => r.name.includes("restore"))).toEqual([]);
    });

    it("trusts extra CAs (a CA rotation's trust-both phase): every member's ca.crt and the caCertPem output hold the bundle", async () => {
        const extra = fakePem("CERTIFICATE", "bmV4dC1jYQ==");
        const run = await runCluster("prod", { hosts: hosts(3), etcd: { pki: { trustedCaCerts: [extra] } } });
        for (const m of ["etcd1", "etcd2", "etcd3"]) {
            const ca = parseCertBundle(String(plain(run.byName.get(`prod-${m}-certs`)!.inputs.stdin))).get("ca.crt")!;
            expect(ca).toContain("prod-pki-ca");
            expect(ca.endsWith(extra.trim() + "\n")).toBe(true);
        }
        const out = await value(run.cluster.caCertPem);
        expect(out).toContain("prod-pki-ca");
        expect(out).toContain(extra.trim());
    });

    it("reports bad snapshot and restore settings with the rest, and refuses restore with replace", async () => {
        await expect(
            runCluster("bad", { hosts: hosts(3), replace: ["etcd1"], snapshots: { retain: 0, dir: "/tmp/x" }, restore: { fromSnapshot: "a b", sha256: "nope" }, etcd: { pki: { trustedCaCerts: ["not a pem"] } } }),
        ).rejects.toMatchObject({
            errors: expect.arrayContaining([
                expect.objectContaining({ propertyPath: "restore", reason: expect.stringMatching(/cannot run together with replace/) }),
                expect.objectContaining({ propertyPath: "snapshots.retain" }),
                expect.objectContaining({ propertyPath: "snapshots.dir" }),
                expect.objectContaining({ propertyPath: "restore.fromSnapshot" }),
                expect.objectContaining({ propertyPath: "restore.sha256" }),
                expect.objectContaining({ propertyPath: "etcd.pki.trustedCaCerts.0" }),
            ]),
        });
    });
});

describe("EtcdCluster teardown step", () => {
    let run: Run;
    beforeAll(async () => {
        run = await runCluster("prod", { hosts: hosts(3) });
    });
    const teardown = () => run.byName.get("prod-teardown")!;
    const script = (which: "create" | "delete") => unwrapScript(String(plain(teardown().inputs[which])));

    it("is a command child of the cluster that depends on every member's start step and the gate (so destroy deletes it before any member leaves)", () => {
        const t = teardown();
        expect(t.type).toBe(T.command);
        expect(t.parent).toBe(run.byName.get("prod")!.urn);
        expect([...t.dependencies].sort()).toEqual([...["etcd1", "etcd2", "etcd3"].map((m) => run.byName.get(`prod-${m}-start`)!.urn), run.byName.get("prod-health")!.urn].sort());
        // Nothing depends on it: it is not in the way of the gate or the outputs.
        expect(run.resources.filter((r) => r.dependencies.includes(t.urn))).toEqual([]);
    });

    it("is never replaced on a live cluster: no triggers, and a forced replacement deletes the old one first (the create then clears the marker)", () => {
        expect(teardown().inputs.triggers).toBeUndefined();
        // The SDK marks `triggers` replaceOnChanges on every command; the teardown sets none.
        expect(teardown().options).toEqual({ deleteBeforeReplace: true, replaceOnChanges: ["triggers[*]"] });
        expect(teardown().inputs.addPreviousOutputInEnv).toBe(false);
    });

    it("runs on the gate's member with that host's pinned key, through sudo -n", () => {
        const gate = plain(run.byName.get("prod-health")!.inputs.connection) as { host: string; hostKey?: string };
        const c = plain(teardown().inputs.connection) as { host: string; port: number; user: string; hostKey?: string };
        expect(isSecretInput(teardown().inputs.connection)).toBe(true);
        expect(c).toMatchObject({ host: "10.0.0.11", port: 22, user: "ubuntu", hostKey: testHostKey("etcd1").split(" ").slice(0, 2).join(" ") });
        expect(c.hostKey).toBe(gate.hostKey);
        for (const which of ["create", "delete"] as const) expect(String(plain(teardown().inputs[which]))).toMatch(/^sudo -n \/bin\/bash -c /);
    });

    it("moves with the gate to the first member not being replaced", async () => {
        const replacing = await runCluster("prod", { hosts: hosts(3), replace: ["etcd1"] });
        const c = plain(replacing.byName.get("prod-teardown")!.inputs.connection) as { host: string; hostKey?: string };
        expect(c).toMatchObject({ host: "10.0.0.12", hostKey: testHostKey("etcd2").split(" ").slice(0, 2).join(" ") });
    });

    it("create clears and delete writes the marker the members' leaves read, over every member's endpoint", () => {
        const create = script("create");
        const del = script("delete");
        expect(create.trimEnd().split("\n").pop()).toBe("etcd_ha_teardown_clear");
        expect(del.trimEnd().split("\n").pop()).toBe("etcd_ha_teardown_mark");
        for (const s of [create, del]) {
            expect(s).toContain("\nmarker='/etcd-ha/prod/teardown'\n");
            expect(s).toContain("\nendpoints='https://10.0.0.11:2379,https://10.0.0.12:2379,https://10.0.0.13:2379'\n");
            // The create waits for the cluster as long as the gate does.
            expect(s).toContain("\nclear_wait='300'\n");
        }
        for (const m of ["etcd1", "etcd2", "etcd3"]) expect(unwrapScript(String(plain(run.byName.get(`prod-${m}-start`)!.inputs.delete)))).toContain("\nteardown_marker='/etcd-ha/prod/teardown'\n");
    });

    describe.each(["create", "delete"] as const)("its %s script", (which) => {
        itLintsClean(() => script(which));
    });
});

describe("EtcdPki arguments", () => {
    it("reports every bad argument in one list", () => {
        const m = { name: "a", fqdn: "a.lan", address: "10.0.0.1" };
        expect(validatePkiArgs({ members: [m, m], keyAlgorithm: "ED25519", rsaBits: 1024, certValidityHours: 100000, earlyRenewalHours: 200000 }).map((p) => p.path)).toEqual([
            "keyAlgorithm",
            "rsaBits",
            "certValidityHours",
            "earlyRenewalHours",
            "members[1].name",
        ]);
        expect(validatePkiArgs({ members: [m] })).toEqual([]);
    });

    it("takes a renew-now token such as a date, and refuses another value with the stack config's rule", async () => {
        const m = { name: "a", fqdn: "a.lan", address: "10.0.0.1" };
        const rule = "must be 1 to 64 letters, digits, '.', '_', ':' or '-', such as the date 2026-12-07";
        expect(validatePkiArgs({ members: [m], renew: "2026-12-07" })).toEqual([]);
        expect(validatePkiArgs({ members: [m], renew: "" })).toEqual([{ path: "renew", reason: `${rule} (got "")` }]);
        expect(validatePkiArgs({ members: [m], renew: "b".repeat(65) })).toEqual([{ path: "renew", reason: `${rule} (got "${"b".repeat(65)}")` }]);
        expect(validatePkiArgs({ members: [m], renew: 7 as unknown as string })).toEqual([{ path: "renew", reason: `${rule} (got 7)` }]);
        // Through EtcdCluster, the etcd settings' own check names it below etcd.
        await expect(runCluster("bad", { hosts: hosts(3), etcd: { pki: { renew: "renew now" } } })).rejects.toMatchObject({
            errors: [expect.objectContaining({ propertyPath: "etcd.pki.renew", reason: rule })],
        });
    });
});
