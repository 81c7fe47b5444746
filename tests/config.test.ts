import * as path from "path";
import { ConfigValidationError, decodeRawConfig, imageFileName, loadStackConfig, requiredSecrets, validateStackConfig } from "../components/config/validate";
import { readProject, readStackFile } from "../tools/engine/stackFile";
import { ALL_SECRETS, hostsBase, IMAGE_SHA256, mutate, proxmoxBase, Raw, testHostKey } from "./helpers/configs";
import { MALFORMED } from "./helpers/malformed";

const ROOT = path.resolve(__dirname, "..");

function resolve(raw: Raw, secrets: ReadonlySet<string> = ALL_SECRETS) {
    const r = validateStackConfig(raw, secrets);
    if (!r.ok) throw new Error(`unexpected issues: ${JSON.stringify(r.issues, null, 1)}`);
    return r.config;
}

function stackFileConfig(file: string) {
    const sc = readStackFile(path.join(ROOT, file), readProject(ROOT));
    for (const s of ALL_SECRETS) sc.config[`etcd-ha:${s}`] = "[secret]";
    return loadStackConfig(sc.config);
}

describe("valid configs resolve", () => {
    it("dev stack: three pinned members, vmIds from the address offset, FQDNs, external sizes", () => {
        const c = stackFileConfig("Pulumi.dev.yaml");
        expect(c.mode).toBe("proxmox");
        expect(c.members.map((m) => [m.name, m.hypervisor, m.address, m.vmId, m.fqdn])).toEqual([
            ["etcd1", "pve1", "10.103.0.101", 7101, "etcd1.kloud.lan"],
            ["etcd2", "pve2", "10.103.0.102", 7102, "etcd2.kloud.lan"],
            ["etcd3", "pve3", "10.103.0.103", 7103, "etcd3.kloud.lan"],
        ]);
        expect(c.members[0].size).toEqual({ cores: 2, memoryMiB: 4096, diskGiB: 20 });
        expect(c.etcd.ports).toEqual({ client: 2379, peer: 2380, metrics: 2381 });
        expect(c.etcd.electionTimeoutMs).toBe(1000);
        expect(c.proxmox?.haEnabled).toBe(true);
        expect(c.plan.quorum).toBe(2);
        expect(c.warnings).toEqual([]);
    });

    it("six-on-two example: pool allocation, automatic spreading, both warnings", () => {
        const c = stackFileConfig("examples/Pulumi.six-on-two.yaml");
        expect(c.members.map((m) => `${m.name}@${m.hypervisor}=${m.address}`)).toEqual([
            "etcd1@pve1=10.103.0.101",
            "etcd2@pve2=10.103.0.102",
            "etcd3@pve1=10.103.0.103",
            "etcd4@pve2=10.103.0.104",
            "etcd5@pve1=10.103.0.105",
            "etcd6@pve2=10.103.0.106",
        ]);
        expect(c.warnings.map((w) => w.code)).toEqual(["even-members", "hypervisor-quorum"]);
        expect(c.plan.faultTolerance).toEqual({ members: 2, hypervisors: 0 });
    });

    it("stacked-five example: control-plane names, standalone hosts, sizes from vmSize, no HA", () => {
        const c = stackFileConfig("examples/Pulumi.stacked-five.yaml");
        expect(c.topology).toBe("stacked");
        expect(c.members.map((m) => m.name)).toEqual(["cp1", "cp2", "cp3", "cp4", "cp5"]);
        expect(c.members.map((m) => m.hypervisor)).toEqual(["pve1", "pve2", "pve3", "pve1", "pve2"]);
        expect(c.members.map((m) => m.vmId)).toEqual([8011, 8012, 8013, 8014, 8015]);
        expect(c.members[0].size).toEqual({ cores: 4, memoryMiB: 8192, diskGiB: 50 });
        expect(c.proxmox?.haEnabled).toBe(false);
        expect(c.plan.faultTolerance).toEqual({ members: 2, hypervisors: 1 });
        // A snippets datastore on every host (each VM's generated host key travels in its snippet): no warning.
        expect(c.hypervisors.map((h) => h.datastores.snippets)).toEqual(["local", "local", "local"]);
        expect(c.warnings).toEqual([]);
        // Stacked control-plane VMs also admit kube-apiserver and kubelet from the member network.
        expect(c.proxmox?.firewall.extraRules).toEqual([
            { port: "6443", proto: "tcp", comment: "kube-apiserver", sources: ["10.20.0.0/24"] },
            { port: "10250", proto: "tcp", comment: "kubelet", sources: ["10.20.0.0/24"] },
        ]);
    });

    it("pool skips the gateway and honours namePrefix and per-topology defaults", () => {
        const raw = mutate(proxmoxBase(), (c) => {
            delete c.members;
            c.memberPool = { count: 3, addressRange: "10.103.0.0/29" };
            c.topology = "stacked";
        });
        const c = resolve(raw);
        expect(c.members.map((m) => [m.name, m.address])).toEqual([
            ["cp1", "10.103.0.2"],
            ["cp2", "10.103.0.3"],
            ["cp3", "10.103.0.4"],
        ]);
        expect(c.members[0].size).toEqual({ cores: 4, memoryMiB: 8192, diskGiB: 40 });
    });

    it("member size overrides vmSize overrides topology defaults", () => {
        const raw = mutate(proxmoxBase(), (c) => {
            c.vmSize = { cores: 3 };
            c.members[0].size = { memoryMiB: 16384 };
        });
        const c = resolve(raw);
        expect(c.members[0].size).toEqual({ cores: 3, memoryMiB: 16384, diskGiB: 20 });
        expect(c.members[1].size).toEqual({ cores: 3, memoryMiB: 4096, diskGiB: 20 });
    });

    it("hosts mode: no Proxmox keys or secrets needed beyond the SSH key; users and ports per host", () => {
        const c = resolve(hostsBase(), new Set(["sshPrivateKey"]));
        expect(c.mode).toBe("hosts");
        expect(c.members.map((m) => [m.name, m.address, m.sshPort, m.sshUser, m.fqdn, m.vmId])).toEqual([
            ["m1", "127.42.0.11", 2222, "admin", "m1", undefined],
            ["m2", "127.42.0.12", 2222, "admin", "m2", undefined],
            ["m3", "127.42.0.13", 2222, "admin", "m3", undefined],
        ]);
        expect(c.plan.faultTolerance).toEqual({ members: 1, hypervisors: null });
        expect(requiredSecrets(c)).toEqual(["sshPrivateKey"]);
    });

    it("day-2 validation: replace names one existing member of a cluster of 3+; 2 members are refused", () => {
        const issues = (raw: Raw) => {
            const r = validateStackConfig(raw, new Set(["sshPrivateKey"]));
            return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
        };
        expect(resolve(mutate(hostsBase(), (c) => (c.replace = ["m2"])), new Set(["sshPrivateKey"])).replace).toEqual(["m2"]);
        expect(resolve(hostsBase(), new Set(["sshPrivateKey"])).replace).toEqual([]);
        expect(issues(mutate(hostsBase(), (c) => (c.replace = ["m9"])))).toEqual(['etcd-ha:replace[0]: "m9" is not a member (members: m1, m2, m3): name the member to replace']);
        expect(issues(mutate(hostsBase(), (c) => (c.replace = ["m1", "m2"])))).toEqual([
            "etcd-ha:replace: replace one member per run (got m1, m2): each replacement lowers the fault tolerance until the member has joined again",
        ]);
        const two = mutate(hostsBase(), (c) => c.hosts.pop());
        expect(issues(two)).toEqual([expect.stringMatching(/^etcd-ha:hosts: 2 members cannot lose either one \(quorum is 2\)/)]);
        expect(issues(mutate(two, (c) => (c.replace = ["m1"])))).toEqual([
            "etcd-ha:replace: a 2-member cluster cannot replace a member and keep quorum: restore it from a snapshot instead",
            expect.stringMatching(/^etcd-ha:hosts: 2 members/),
        ]);
        // One member (a throwaway cluster) stays allowed.
        expect(issues(mutate(two, (c) => c.hosts.pop()))).toEqual([]);
    });

    it("day-2 keys: snapshots (defaults, bad values named), restore (sha256 required, not with replace)", () => {
        const issues = (raw: Raw) => {
            const r = validateStackConfig(raw, new Set(["sshPrivateKey"]));
            return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
        };
        const c = resolve(hostsBase(), new Set(["sshPrivateKey"]));
        expect(c.snapshots).toEqual({ enabled: true, schedule: "*-*-* 00/6:00:00", randomizedDelaySec: 900, dir: "/var/backups/etcd", retain: 28, offHostTimeoutSeconds: 3600 });
        expect(c.restore).toBeUndefined();
        expect(issues(mutate(hostsBase(), (x) => (x.snapshots = { retain: 0, schedule: "daily; rm -rf /", dir: "/var/tmp/snaps" })))).toEqual([
            expect.stringMatching(/^etcd-ha:snapshots\.schedule: must be a systemd OnCalendar expression/),
            expect.stringMatching(/^etcd-ha:snapshots\.dir: must not be under \/tmp, \/var\/tmp/),
            expect.stringMatching(/^etcd-ha:snapshots\.retain: /),
        ]);
        const sha = "0f".repeat(32);
        expect(resolve(mutate(hostsBase(), (x) => (x.restore = { fromSnapshot: "./snap.db", sha256: sha })), new Set(["sshPrivateKey"])).restore).toEqual({ fromSnapshot: "./snap.db", sha256: sha });
        expect(issues(mutate(hostsBase(), (x) => (x.restore = { fromSnapshot: "./snap.db" })))).toEqual([expect.stringMatching(/^etcd-ha:restore\.sha256: /)]);
        expect(issues(mutate(hostsBase(), (x) => ((x.restore = { fromSnapshot: "./snap.db", sha256: sha }), (x.replace = ["m2"]))))).toEqual([
            "etcd-ha:restore: cannot run together with etcd-ha:replace: a restore rebuilds every member; remove replace (or finish the replacement first)",
        ]);
    });

    it("etcd.pki.renew: unset by default; a token such as a date is kept; anything else is refused with the key named", () => {
        const hostSecrets = new Set(["sshPrivateKey"]);
        const issues = (renew: unknown) => {
            const r = validateStackConfig(mutate(hostsBase(), (x) => (x.etcd = { pki: { renew } })), hostSecrets);
            return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
        };
        expect(resolve(hostsBase(), hostSecrets).etcd.pki.renew).toBeUndefined();
        expect("renew" in resolve(hostsBase(), hostSecrets).etcd.pki).toBe(false);
        for (const token of ["2026-12-07", "2026-12-07T10:00:00Z", "rotation_2.1", "x", "a".repeat(64)]) {
            expect(resolve(mutate(hostsBase(), (x) => (x.etcd = { pki: { renew: token } })), hostSecrets).etcd.pki.renew).toBe(token);
        }
        const rule = "must be 1 to 64 letters, digits, '.', '_', ':' or '-', such as the date 2026-12-07";
        expect(issues("")).toEqual([`etcd-ha:etcd.pki.renew: ${rule} (got "")`]);
        expect(issues("a".repeat(65))).toEqual([`etcd-ha:etcd.pki.renew: ${rule} (got "${"a".repeat(57)}...")`]);
        expect(issues("now; reboot")).toEqual([`etcd-ha:etcd.pki.renew: ${rule} (got "now; reboot")`]);
        expect(issues(20261207)).toEqual(["etcd-ha:etcd.pki.renew: must be a string (got 20261207)"]);
    });

    it("hosts mode with failure domains gets the hypervisor analysis too", () => {
        const raw = mutate(hostsBase(), (c) => {
            c.hosts[0].hypervisor = "box1";
            c.hosts[1].hypervisor = "box1";
            c.hosts[2].hypervisor = "box2";
        });
        const c = resolve(raw, new Set(["sshPrivateKey"]));
        expect(c.plan.faultTolerance).toEqual({ members: 1, hypervisors: 0 });
        expect(c.warnings.map((w) => w.code)).toEqual(["hypervisor-quorum"]);
    });

    it("proxmox defaults: image file name from the URL as .qcow2, firewall sources the member network, CPU type, readiness bound", () => {
        const c = resolve(proxmoxBase());
        expect(c.proxmox?.image).toEqual({
            url: "https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img",
            sha256: IMAGE_SHA256,
            fileName: "ubuntu-24.04-server-cloudimg-amd64.qcow2",
        });
        expect(c.proxmox?.firewall).toEqual({
            enabled: true,
            adminCidrs: ["10.103.0.0/24"],
            clientCidrs: ["10.103.0.0/24"],
            metricsCidrs: ["10.103.0.0/24"],
            extraRules: [],
        });
        expect([c.proxmox?.cpuType, c.proxmox?.readyTimeoutSeconds]).toEqual(["x86-64-v2-AES", 900]);
        expect(c.warnings).toEqual([]);
        expect(imageFileName("https://mirror.example/noble/current/noble-server-cloudimg-amd64.img?x=1")).toBe("noble-server-cloudimg-amd64.qcow2");
        expect(imageFileName("https://mirror.example/images/debian 12.raw")).toBe("debian-12.qcow2");
    });

    it("explicit firewall sources and extra rules are kept; extra rules default to the member network", () => {
        const c = resolve(
            mutate(proxmoxBase(), (x) => (x.proxmox.firewall = { adminCidrs: ["192.168.10.0/24", "10.9.9.9"], extraRules: [{ port: "8472", proto: "udp", comment: "flannel" }] })),
        );
        expect(c.proxmox?.firewall.adminCidrs).toEqual(["192.168.10.0/24", "10.9.9.9"]);
        expect(c.proxmox?.firewall.clientCidrs).toEqual(["10.103.0.0/24"]);
        expect(c.proxmox?.firewall.extraRules).toEqual([{ port: "8472", proto: "udp", comment: "flannel", sources: ["10.103.0.0/24"] }]);
    });

    it("a node hosting members needs a snippets datastore (the VMs' host keys travel in it); an unused one does not", () => {
        const raw = mutate(proxmoxBase(), (x) => {
            delete x.hypervisors[1].datastores;
            x.hypervisors.push({ name: "pve4", bridge: { name: "vmbr10" } });
        });
        const r = validateStackConfig(raw, ALL_SECRETS);
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expect(r.issues.map((i) => i.path)).toEqual(["etcd-ha:hypervisors[1].datastores.snippets"]);
        expect(r.issues[0].message).toMatch(/^is required on pve2, which hosts members: only a cloud-init snippet can install the SSH host key .* or set etcd-ha:ssh.insecureIgnoreHostKeys: true/);
    });

    it("VMs created before host keys were generated: their adopted keys (members[].hostKey) need no snippet", () => {
        const c = resolve(
            mutate(proxmoxBase(), (x) => {
                delete x.hypervisors[1].datastores;
                x.members[1].hostKey = testHostKey("etcd2");
            }),
        );
        expect(c.members.map((m) => m.hostKey)).toEqual([undefined, testHostKey("etcd2"), undefined]);
        expect(c.warnings.map((w) => w.code)).toEqual(["cloud-init-fallback"]);
    });

    it("with ssh.insecureIgnoreHostKeys such a node is the announced cloud-init fallback, host keys unchecked", () => {
        const c = resolve(
            mutate(proxmoxBase(), (x) => {
                delete x.hypervisors[1].datastores;
                x.hypervisors.push({ name: "pve4", bridge: { name: "vmbr10" } });
                x.ssh.insecureIgnoreHostKeys = true;
            }),
        );
        expect(c.warnings.map((w) => w.code)).toEqual(["cloud-init-fallback"]);
        expect(c.warnings[0].message).toMatch(/^no snippets datastore on pve2 \(.*no generated SSH host key, so only members\[\]\.hostKey pins their keys/);
    });

    it("hosts mode: every host names its public host key, else the error names each key and the opt-out", () => {
        expect(resolve(hostsBase()).members.map((m) => m.hostKey?.split(" ")[0])).toEqual(["ssh-ed25519", "ssh-ed25519", "ssh-ed25519"]);
        const raw = mutate(hostsBase(), (x) => {
            delete x.hosts[0].hostKey;
            delete x.hosts[2].hostKey;
        });
        const r = validateStackConfig(raw, ALL_SECRETS);
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expect(r.issues.map((i) => i.path)).toEqual(["etcd-ha:hosts[0].hostKey", "etcd-ha:hosts[2].hostKey"]);
        expect(r.issues[0].message).toMatch(/^is required: the public SSH host key of m1, .*cat \/etc\/ssh\/ssh_host_ed25519_key\.pub.*etcd-ha:ssh\.insecureIgnoreHostKeys: true/);
        // The explicit opt-out: accepted, the hosts carry no key (the component warns on every run).
        const c = resolve(mutate(raw, (x) => (x.ssh = { insecureIgnoreHostKeys: true })));
        expect(c.members.map((m) => m.hostKey === undefined)).toEqual([true, false, true]);
        expect(c.ssh.insecureIgnoreHostKeys).toBe(true);
    });

    it("proxmox.ssh.agent removes the need for the hypervisor SSH key", () => {
        const raw = mutate(proxmoxBase(), (c) => (c.proxmox.ssh = { agent: true }));
        const c = resolve(raw, new Set(["proxmoxApiToken", "sshPrivateKey"]));
        expect(requiredSecrets(c)).toEqual(["sshPrivateKey", "proxmoxApiToken"]);
    });
});

describe("malformed configs are refused with the key path and what to do", () => {
    it("has at least 30 distinct cases", () => {
        expect(MALFORMED.length).toBeGreaterThanOrEqual(30);
        expect(new Set(MALFORMED.map((m) => m.label)).size).toBe(MALFORMED.length);
    });

    it.each(MALFORMED.map((m) => [m.label, m] as const))("%s", (_label, m) => {
        const r = validateStackConfig(m.raw, m.secrets ?? ALL_SECRETS);
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expect(r.issues).toContainEqual({ path: m.path, message: m.message });
    });
});

describe("every problem is reported at once", () => {
    it("collects structural and cross-field problems from several keys in one report", () => {
        const raw = mutate(proxmoxBase(), (c) => {
            c.topology = "sideways";
            c.members[1].address = "10.9.9.9";
            c.members[2].name = "etcd1";
            c.hypervisors[0].bridge.name = "my-bridge-name";
            c.etcd = { heartbeatIntervalMs: 300, electionTimeoutMs: 1000 };
        });
        const r = validateStackConfig(raw, new Set());
        expect(r.ok).toBe(false);
        if (r.ok) return;
        expect(r.issues.map((i) => i.path)).toEqual(
            expect.arrayContaining([
                "etcd-ha:topology",
                "etcd-ha:members[1].address",
                "etcd-ha:members[2].name",
                "etcd-ha:hypervisors[0].bridge.name",
                "etcd-ha:etcd.electionTimeoutMs",
                "etcd-ha:sshPrivateKey",
                "etcd-ha:proxmoxApiToken",
                "etcd-ha:proxmoxSshPrivateKey",
            ]),
        );
    });

    it("loadStackConfig throws one ConfigValidationError listing every issue", () => {
        const cfg = {
            "etcd-ha:topology": "sideways",
            "etcd-ha:hosts": "[not json",
            "aws:region": "ignored-other-namespace",
        };
        let err: unknown;
        try {
            loadStackConfig(cfg);
        } catch (e) {
            err = e;
        }
        expect(err).toBeInstanceOf(ConfigValidationError);
        const e = err as ConfigValidationError;
        expect(e.issues).toEqual([
            { path: "etcd-ha:hosts", message: 'is not valid structured config ("[not json"): write it as a YAML mapping or list in the stack file' },
            { path: "etcd-ha:topology", message: 'must be one of "external", "stacked" (got "sideways")' },
            {
                path: "etcd-ha:sshPrivateKey",
                message: "is not set: run `pulumi config set --secret etcd-ha:sshPrivateKey < ~/.ssh/id_ed25519` (the key for SSH to the members)",
            },
        ]);
        // The undecodable hosts key still counts as given: no "no members" report on top of it.
        expect(e.message.split("\n")[0]).toBe("invalid stack configuration (3 problems):");
        expect(e.message).toContain("  - etcd-ha:topology: must be one of");
    });
});

describe("decodeRawConfig", () => {
    it("keeps string keys as strings, parses structured ones, skips secrets", () => {
        const { raw, issues } = decodeRawConfig({ topology: "external", members: "[]", sshPrivateKey: "x", memberPool: "{\"count\":3}" });
        expect(issues).toEqual([]);
        expect(raw).toEqual({ topology: "external", members: [], memberPool: { count: 3 } });
    });
});
