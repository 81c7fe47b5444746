/**
 * Pure renderers: the flag set and unit per etcd version (parsed, every security and bootstrap flag
 * asserted), the certificate table, the consumer outputs, and the initial-cluster string.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parse as parseYaml } from "yaml";
import { etcdFlags, FORBIDDEN_FLAGS, parseUnit, renderUnit, UnitSettings, CIPHER_SUITES } from "../components/etcd/flags";
import { etcdCertTable, memberFiles, USES } from "../components/pki/certTable";
import { kubeadmExternalEtcd, kubeApiserverFlags, prometheusScrapeConfig } from "../components/etcd/consumers";
import { initialClusterString, planTopology } from "../components/topology/planner";
import { compareVersions, pinnedSha256, versionFeatures, downloadUrl } from "../components/etcd/version";
import { ETCD_RELEASES } from "../components/etcd/releases";
import { tuningOf } from "../components/etcd/options";
import { EtcdSchema } from "../components/config/schema";

const base: UnitSettings = {
    clusterName: "prod",
    arch: "amd64",
    version: "3.5.21",
    name: "etcd2",
    address: "10.0.0.12",
    ports: { client: 2379, peer: 2380, metrics: 2381 },
    dataDir: "/var/lib/etcd",
    // The defaults of etcd-ha:etcd (the assertions below spell out their values).
    ...tuningOf(EtcdSchema.parse({})),
};

function flagsOf(s: Partial<UnitSettings>) {
    return parseUnit(renderUnit({ ...base, ...s })).execStart.flags;
}

describe.each(["3.4.23", "3.5.6", "3.5.21", "3.6.15"])("unit for etcd %s", (version) => {
    const unit = renderUnit({ ...base, version });
    const { sections, execStart } = parseUnit(unit);
    const flags = execStart.flags;
    const svc = new Map(sections.Service);

    it("runs etcd as a notify service of user etcd with restart, fd limit and hardening", () => {
        expect(execStart.binary).toBe("/usr/local/bin/etcd");
        expect(svc.get("Type")).toBe("notify");
        expect(svc.get("User")).toBe("etcd");
        expect(svc.get("Group")).toBe("etcd");
        expect(svc.get("Restart")).toBe("on-failure");
        expect(svc.get("RestartSec")).toBe("5s");
        expect(svc.get("LimitNOFILE")).toBe("40000");
        expect(svc.get("ReadWritePaths")).toBe("/var/lib/etcd");
        expect(svc.get("NoNewPrivileges")).toBe("yes");
        expect(new Map(sections.Install).get("WantedBy")).toBe("multi-user.target");
        expect(svc.has("Environment")).toBe(false);
        // Bootstrap settings come from the start step's env file (optional: read only while the data dir is empty).
        expect(svc.get("EnvironmentFile")).toBe("-/etc/etcd/bootstrap.env");
    });

    it("sandboxes etcd: read-only system but the data dir, no capabilities, private devices and /tmp, filtered system calls", () => {
        expect(svc.get("ProtectSystem")).toBe("strict");
        expect(svc.get("ReadWritePaths")).toBe("/var/lib/etcd");
        expect(svc.get("CapabilityBoundingSet")).toBe("");
        expect(svc.get("AmbientCapabilities")).toBe("");
        for (const k of ["ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectClock", "ProtectHostname", "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups"]) {
            expect([k, svc.get(k)]).toEqual([k, "yes"]);
        }
        for (const k of ["RestrictNamespaces", "RestrictRealtime", "RestrictSUIDSGID", "LockPersonality", "MemoryDenyWriteExecute", "RemoveIPC"]) expect([k, svc.get(k)]).toEqual([k, "yes"]);
        expect(svc.get("ProtectProc")).toBe("invisible");
        // Clients and peers over TCP; Unix and netlink sockets for Go's runtime and interface lookups.
        expect(svc.get("RestrictAddressFamilies")!.split(" ").sort()).toEqual(["AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"]);
        expect(svc.get("SystemCallArchitectures")).toBe("native");
        expect(svc.get("SystemCallFilter")).toBe("@system-service");
        // A filtered call fails (EPERM) instead of killing etcd with SIGSYS.
        expect(svc.get("SystemCallErrorNumber")).toBe("EPERM");
        expect(svc.get("UMask")).toBe("0077");
    });

    it("sets identity; the bootstrap settings stay out of the unit (a membership change never restarts a member)", () => {
        expect(flags.get("name")).toBe("etcd2");
        expect(flags.get("data-dir")).toBe("/var/lib/etcd");
        expect(flags.get("listen-client-urls")).toBe("https://10.0.0.12:2379,https://127.0.0.1:2379");
        expect(flags.get("advertise-client-urls")).toBe("https://10.0.0.12:2379");
        expect(flags.get("listen-peer-urls")).toBe("https://10.0.0.12:2380");
        expect(flags.get("initial-advertise-peer-urls")).toBe("https://10.0.0.12:2380");
        for (const f of ["initial-cluster", "initial-cluster-token", "initial-cluster-state"]) expect(flags.has(f)).toBe(false);
        expect(flags.get("strict-reconfig-check")).toBe("true");
        expect(flags.get("pre-vote")).toBe("true");
    });

    it("enforces mutual TLS with the etcd CA on client and peer ports (CIS 2.1-2.7)", () => {
        expect(flags.get("cert-file")).toBe("/etc/etcd/pki/server.crt");
        expect(flags.get("key-file")).toBe("/etc/etcd/pki/server.key");
        expect(flags.get("trusted-ca-file")).toBe("/etc/etcd/pki/ca.crt");
        expect(flags.get("client-cert-auth")).toBe("true");
        expect(flags.get("auto-tls")).toBe("false");
        expect(flags.get("peer-cert-file")).toBe("/etc/etcd/pki/peer.crt");
        expect(flags.get("peer-key-file")).toBe("/etc/etcd/pki/peer.key");
        expect(flags.get("peer-trusted-ca-file")).toBe("/etc/etcd/pki/ca.crt");
        expect(flags.get("peer-client-cert-auth")).toBe("true");
        expect(flags.get("peer-auto-tls")).toBe("false");
        expect(flags.get("cipher-suites")).toBe(CIPHER_SUITES.join(","));
        // Every listener but metrics is https.
        for (const k of ["listen-client-urls", "advertise-client-urls", "listen-peer-urls", "initial-advertise-peer-urls"]) {
            for (const u of flags.get(k)!.split(",")) expect(u).toMatch(/^https:\/\//);
        }
        expect(flags.get("tls-min-version")).toBe(compareVersions(version, "3.5.8") >= 0 ? "TLS1.2" : undefined);
    });

    it("puts metrics and health on a separate plain-HTTP listener", () => {
        expect(flags.get("listen-metrics-urls")).toBe("http://10.0.0.12:2381,http://127.0.0.1:2381");
        expect(flags.get("metrics")).toBe("basic");
    });

    it("sets timing, quota, compaction and retention from settings", () => {
        expect(flags.get("heartbeat-interval")).toBe("100");
        expect(flags.get("election-timeout")).toBe("1000");
        expect(flags.get("quota-backend-bytes")).toBe("2147483648");
        expect(flags.get("auto-compaction-mode")).toBe("periodic");
        expect(flags.get("auto-compaction-retention")).toBe("8h");
        expect(flags.get("snapshot-count")).toBe("10000");
        expect(flags.get("max-snapshots")).toBe("5");
        expect(flags.get("max-wals")).toBe("5");
    });

    it("uses the version's names for corruption checks and watch progress", () => {
        if (version.startsWith("3.6")) {
            expect(flags.get("feature-gates")).toBe("InitialCorruptCheck=true,CompactHashCheck=true");
            expect(flags.get("watch-progress-notify-interval")).toBe("5s");
            expect([...flags.keys()].filter((k) => k.startsWith("experimental-"))).toEqual([]);
        } else {
            expect(flags.get("experimental-initial-corrupt-check")).toBe("true");
            expect(flags.get("experimental-watch-progress-notify-interval")).toBe("5s");
            expect(flags.get("experimental-compact-hash-check-enabled")).toBe(version === "3.4.23" ? undefined : "true");
            expect(flags.has("feature-gates")).toBe(false);
        }
    });

    it("never renders auto TLS, v2, force-new-cluster, no-fsync or pprof", () => {
        for (const f of FORBIDDEN_FLAGS) expect(flags.has(f)).toBe(false);
        expect(unit).not.toMatch(/enable-v2|force-new-cluster|unsafe-no-fsync/);
        expect(flags.get("auto-tls")).toBe("false");
        expect(flags.get("peer-auto-tls")).toBe("false");
    });
});

describe("flag names exist in the etcd release they are rendered for", () => {
    it("3.4: every flag is one Debian's etcd 3.4.23 binary lists in --help", () => {
        let help: string;
        try {
            help = execFileSync("etcd", ["--help"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
        } catch (e) {
            const err = e as { code?: string; stdout?: string; stderr?: string };
            if (err.code === "ENOENT") throw new Error("etcd is not installed: run `apt-get install -y etcd-server etcd-client` (the lab uses Debian's etcd 3.4.23)");
            help = `${err.stdout ?? ""}${err.stderr ?? ""}`;
        }
        const known = new Set([...help.matchAll(/^\s+--([a-z0-9-]+)/gm)].map((m) => m[1]));
        expect(known.size).toBeGreaterThan(50);
        const version = execFileSync("etcd", ["--version"], { encoding: "utf8" });
        const v = /etcd Version: (\S+)/.exec(version)![1];
        expect(v.startsWith("3.4.")).toBe(true);
        const missing = etcdFlags({ ...base, version: v }).map(([n]) => n).filter((n) => !known.has(n));
        expect(missing).toEqual([]);
    });

    it("3.5: every flag is in etcd's release-3.5 help text (tests/fixtures/etcd-flags-3.5.txt)", () => {
        const known = new Set(
            fs
                .readFileSync(path.join(__dirname, "fixtures", "etcd-flags-3.5.txt"), "utf8")
                .split("\n")
                .filter((l) => l.startsWith("--"))
                .map((l) => l.slice(2).trim()),
        );
        expect(known.size).toBeGreaterThan(90);
        const missing = etcdFlags({ ...base, version: "3.5.21" }).map(([n]) => n).filter((n) => !known.has(n));
        expect(missing).toEqual([]);
        expect(known.has("feature-gates")).toBe(false);
    });
});

describe("unit variants", () => {
    it("leaves the localhost listeners out when listenLocalhost is off", () => {
        const f = flagsOf({ listenLocalhost: false });
        expect(f.get("listen-client-urls")).toBe("https://10.0.0.12:2379");
        expect(f.get("listen-metrics-urls")).toBe("http://10.0.0.12:2381");
    });
    it("sets ETCD_UNSUPPORTED_ARCH=arm64 only for 3.4 on arm64", () => {
        const env = (s: Partial<UnitSettings>) => new Map(parseUnit(renderUnit({ ...base, ...s })).sections.Service).get("Environment");
        expect(env({ version: "3.4.23", arch: "arm64" })).toBe("ETCD_UNSUPPORTED_ARCH=arm64");
        expect(env({ version: "3.5.21", arch: "arm64" })).toBeUndefined();
        expect(env({ version: "3.4.23", arch: "amd64" })).toBeUndefined();
    });
    it("uses custom ports everywhere", () => {
        const f = flagsOf({ ports: { client: 12379, peer: 12380, metrics: 12381 } });
        expect(f.get("advertise-client-urls")).toBe("https://10.0.0.12:12379");
        expect(f.get("listen-peer-urls")).toBe("https://10.0.0.12:12380");
        expect(f.get("listen-metrics-urls")).toBe("http://10.0.0.12:12381,http://127.0.0.1:12381");
    });
    it("refuses a value a unit file would reinterpret", () => {
        expect(() => renderUnit({ ...base, dataDir: "/var/lib/etcd data" })).toThrow(/--data-dir/);
        expect(() => renderUnit({ ...base, name: "etcd%n" })).toThrow(/--name/);
    });
    it("renders revision compaction", () => {
        const f = flagsOf({ autoCompaction: { mode: "revision", retention: "10000" } });
        expect([f.get("auto-compaction-mode"), f.get("auto-compaction-retention")]).toEqual(["revision", "10000"]);
    });
});

describe("initial cluster", () => {
    it.each([1, 3, 5, 7])("%i members: name=https://ip:2380, in member order", (n) => {
        const members = Array.from({ length: n }, (_, i) => ({ name: `etcd${i + 1}`, address: `10.0.0.${11 + i}` }));
        const plan = planTopology(members, { client: 2379, peer: 2380, metrics: 2381 });
        const parts = plan.initialCluster.split(",");
        expect(parts).toHaveLength(n);
        parts.forEach((p, i) => expect(p).toBe(`etcd${i + 1}=https://10.0.0.${11 + i}:2380`));
        expect(initialClusterString(plan.members)).toBe(plan.initialCluster);
    });
});

describe("certificate table", () => {
    const members = [
        { name: "etcd1", fqdn: "etcd1.kloud.lan", address: "10.0.0.11" },
        { name: "etcd2", fqdn: "etcd2.kloud.lan", address: "10.0.0.12" },
    ];
    const table = etcdCertTable(members, { serverCertSans: ["etcd.kloud.lan", "10.0.0.100"] });

    it("has a server and a peer cert per member, then the three kubeadm-style client certs", () => {
        expect(table.map((c) => c.id)).toEqual(["etcd1-server", "etcd1-peer", "etcd2-server", "etcd2-peer", "apiserver-etcd-client", "healthcheck-client", "admin"]);
    });
    it("server SANs: name, FQDN, IP, localhost, 127.0.0.1, ::1 and the extra SANs", () => {
        const s = table.find((c) => c.id === "etcd2-server")!;
        expect(s.commonName).toBe("etcd2");
        expect(s.dnsNames).toEqual(["etcd2", "etcd2.kloud.lan", "localhost", "etcd.kloud.lan"]);
        expect(s.ipAddresses).toEqual(["10.0.0.12", "127.0.0.1", "::1", "10.0.0.100"]);
        expect(s.allowedUses).toEqual([...USES.server]);
        expect(s.allowedUses).toEqual(expect.arrayContaining(["server_auth", "client_auth"]));
    });
    it("peer SANs: only the member's own name, FQDN and IP (no loopback)", () => {
        const p = table.find((c) => c.id === "etcd1-peer")!;
        expect(p.dnsNames).toEqual(["etcd1", "etcd1.kloud.lan"]);
        expect(p.ipAddresses).toEqual(["10.0.0.11"]);
        expect(p.allowedUses).toEqual(expect.arrayContaining(["server_auth", "client_auth"]));
    });
    it("client certs: kubeadm subjects, O=system:masters, clientAuth only, no SANs", () => {
        const clients = table.filter((c) => c.kind === "client");
        expect(clients.map((c) => c.commonName)).toEqual(["kube-apiserver-etcd-client", "kube-etcd-healthcheck-client", "etcd-admin"]);
        for (const c of clients) {
            expect(c.organization).toBe("system:masters");
            expect(c.allowedUses).toEqual(["digital_signature", "key_encipherment", "client_auth"]);
            expect(c.dnsNames.concat(c.ipAddresses)).toEqual([]);
        }
    });
    it("installs on a member its own server/peer pair plus the healthcheck and admin clients, never another member's or the apiserver's", () => {
        expect(memberFiles(table, "etcd1").map((f) => `${f.name} ${f.mode}`)).toEqual([
            "ca.crt 0644",
            "server.crt 0644",
            "server.key 0600",
            "peer.crt 0644",
            "peer.key 0600",
            "healthcheck-client.crt 0644",
            "healthcheck-client.key 0600",
            "admin.crt 0644",
            "admin.key 0600",
        ]);
        expect(memberFiles(table, "etcd1").map((f) => f.certId)).not.toContain("etcd2-server");
        expect(memberFiles(table, "etcd1").map((f) => f.certId)).not.toContain("apiserver-etcd-client");
    });
    it("uses only allowedUses strings the tls provider accepts", () => {
        const accepted = new Set(["digital_signature", "content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "cert_signing", "crl_signing", "encipher_only", "decipher_only", "any_extended", "server_auth", "client_auth"]);
        for (const u of [...USES.ca, ...table.flatMap((c) => c.allowedUses)]) expect(accepted.has(u)).toBe(true);
    });
});

describe("consumer outputs", () => {
    const eps = ["https://10.0.0.11:2379", "https://10.0.0.12:2379", "https://10.0.0.13:2379"];
    it("kube-apiserver flags", () => {
        const lines = kubeApiserverFlags(eps).trim().split("\n");
        const m = new Map(lines.map((l) => l.split(/=(.*)/s).slice(0, 2) as [string, string]));
        expect(m.get("--etcd-servers")).toBe(eps.join(","));
        expect(m.get("--etcd-cafile")).toBe("/etc/kubernetes/pki/etcd/ca.crt");
        expect(m.get("--etcd-certfile")).toBe("/etc/kubernetes/pki/apiserver-etcd-client.crt");
        expect(m.get("--etcd-keyfile")).toBe("/etc/kubernetes/pki/apiserver-etcd-client.key");
    });
    it("kubeadm ClusterConfiguration etcd.external", () => {
        const doc = parseYaml(kubeadmExternalEtcd(eps));
        expect(doc).toEqual({
            apiVersion: "kubeadm.k8s.io/v1beta4",
            kind: "ClusterConfiguration",
            etcd: { external: { endpoints: eps, caFile: "/etc/kubernetes/pki/etcd/ca.crt", certFile: "/etc/kubernetes/pki/apiserver-etcd-client.crt", keyFile: "/etc/kubernetes/pki/apiserver-etcd-client.key" } },
        });
    });
    it("Prometheus scrape config: one labelled target per member on the metrics port", () => {
        const doc = parseYaml(prometheusScrapeConfig("prod", [{ member: "etcd1", target: "10.0.0.11:2381" }, { member: "etcd2", target: "10.0.0.12:2381" }]));
        expect(doc).toEqual([
            {
                job_name: "etcd-prod",
                scheme: "http",
                metrics_path: "/metrics",
                static_configs: [
                    { targets: ["10.0.0.11:2381"], labels: { etcd_cluster: "prod", etcd_member: "etcd1" } },
                    { targets: ["10.0.0.12:2381"], labels: { etcd_cluster: "prod", etcd_member: "etcd2" } },
                ],
            },
        ]);
    });
});

describe("versions and releases", () => {
    it("knows which features each line has", () => {
        expect(versionFeatures("3.4.23")).toMatchObject({ hasEtcdutl: false, featureGates: false, compactHashCheckFlag: false, tlsMinVersion: false, arm64NeedsUnsupportedArch: true });
        expect(versionFeatures("3.5.6")).toMatchObject({ hasEtcdutl: true, featureGates: false, compactHashCheckFlag: true, tlsMinVersion: false, arm64NeedsUnsupportedArch: false });
        expect(versionFeatures("3.5.21")).toMatchObject({ tlsMinVersion: true });
        expect(versionFeatures("3.6.0")).toMatchObject({ featureGates: true, hasEtcdutl: true });
        expect(versionFeatures("3.5.1").knownBad).toMatch(/3\.5\.3/);
        expect(versionFeatures("3.5.3").knownBad).toBeUndefined();
    });
    it("pins a distinct 64-hex sha256 per version and arch", () => {
        const all = ETCD_RELEASES.flatMap((r) => [r.sha256.amd64, r.sha256.arm64]);
        for (const h of all) expect(h).toMatch(/^[0-9a-f]{64}$/);
        expect(new Set(all).size).toBe(all.length);
        expect(pinnedSha256("3.6.14", "amd64")).toBe("ffe840ff9295808e88cce2794a18a5ac87f12a5203c8314d0bf6aa119b41bac5");
        expect(pinnedSha256("3.4.23", "amd64")).toBeUndefined();
    });
    it("builds the official download URL, or a mirror's", () => {
        expect(downloadUrl("3.5.21", "arm64")).toBe("https://github.com/etcd-io/etcd/releases/download/v3.5.21/etcd-v3.5.21-linux-arm64.tar.gz");
        expect(downloadUrl("3.5.21", "amd64", "https://mirror.lan/etcd/")).toBe("https://mirror.lan/etcd/v3.5.21/etcd-v3.5.21-linux-amd64.tar.gz");
    });
});
