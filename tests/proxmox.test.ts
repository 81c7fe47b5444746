/**
 * The Proxmox layer: the pure pieces (cloud-init, firewall rules, readiness budget, the infrastructure
 * plan) tested directly, then the program under mocks asserting on every Proxmox resource's inputs — the
 * provider each uses, the node it lands on, what it depends on — and that no secret travels in plain text.
 */
import * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import { renderEtcHosts, renderHostsBlock, renderUserData } from "../components/proxmox/cloudInit";
import { memberFirewallRules } from "../components/proxmox/firewall";
import { retrySleepSeconds, sshDialBudget } from "../components/proxmox/readiness";
import { antiAffinitySets, InfraSpec, planInfrastructure, validateInfraSpec, vmTags } from "../components/proxmox/plan";
import { validateLinuxBridgeArgs } from "../components/proxmox/linuxBridge";
import { unwrapScript } from "../components/etcd/scripts";
import { RecordedResource, runProgram } from "../tools/engine/mockHost";
import { planNewResource } from "../tools/engine/planOutputs";
import { IMAGE_SHA256, PUBKEY, testHostKey } from "./helpers/configs";
import { PROGRAM, stackRun } from "./helpers/stacks";
import { fakePem, isSecretInput, plain, SECRET_SIG, SECRET_VALUE, T } from "./helpers/tokens";


const MEMBERS3 = [
    { name: "etcd1", fqdn: "etcd1.kloud.lan", address: "10.103.0.101" },
    { name: "etcd2", fqdn: "etcd2.kloud.lan", address: "10.103.0.102" },
    { name: "etcd3", fqdn: "etcd3.kloud.lan", address: "10.103.0.103" },
];

describe("cloud-init user data", () => {
    const doc = parse(
        renderUserData({ clusterName: "etcd", self: MEMBERS3[1], members: MEMBERS3, user: "ubuntu", publicKey: PUBKEY, ntpServers: ["10.103.0.1"] }),
    );

    it("is a #cloud-config document naming the VM by hostname and FQDN, with /etc/hosts left to us", () => {
        const text = renderUserData({ clusterName: "etcd", self: MEMBERS3[0], members: MEMBERS3, user: "ubuntu", publicKey: PUBKEY, ntpServers: [] });
        expect(text.split("\n")[0]).toBe("#cloud-config");
        expect([doc.hostname, doc.fqdn, doc.preserve_hostname, doc.manage_etc_hosts, doc.prefer_fqdn_over_hostname]).toEqual(["etcd2", "etcd2.kloud.lan", false, false, false]);
    });

    it("installs the SSH host key the program generated, and no other: the image's keys deleted, none generated", () => {
        const hostKey = { privateKey: fakePem("OPENSSH PRIVATE KEY", "host-key"), publicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRoaXNpc3RoZWhvc3RrZXlvZmV0Y2QxZXhhbXBsZQ\n" };
        const keyed = parse(renderUserData({ clusterName: "etcd", self: MEMBERS3[0], members: MEMBERS3, user: "ubuntu", publicKey: PUBKEY, ntpServers: [], hostKey }));
        expect([keyed.ssh_deletekeys, keyed.ssh_genkeytypes]).toEqual([true, []]);
        expect(keyed.ssh_keys).toEqual({ ed25519_private: hostKey.privateKey, ed25519_public: hostKey.publicKey.trim() });
        // Without a key (no snippet datastore would carry one), cloud-init's defaults stand.
        expect([doc.ssh_keys, doc.ssh_deletekeys, doc.ssh_genkeytypes]).toEqual([undefined, undefined, undefined]);
    });

    it("creates the admin user: key only, passwordless sudo, no root or password login", () => {
        expect(doc.users).toHaveLength(1);
        const u = doc.users[0];
        expect([u.name, u.sudo, u.lock_passwd, u.shell, u.ssh_authorized_keys]).toEqual(["ubuntu", "ALL=(ALL) NOPASSWD:ALL", true, "/bin/bash", [PUBKEY]]);
        expect([doc.disable_root, doc.ssh_pwauth]).toEqual([true, false]);
    });

    it("installs and starts qemu-guest-agent and turns time sync on (servers when given, else the distribution's pool)", () => {
        expect(doc.packages).toContain("qemu-guest-agent");
        expect(doc.runcmd).toContainEqual(["systemctl", "enable", "--now", "qemu-guest-agent"]);
        expect(doc.ntp).toEqual({ enabled: true, servers: ["10.103.0.1"] });
        const bare = parse(renderUserData({ clusterName: "etcd", self: MEMBERS3[0], members: MEMBERS3, user: "ubuntu", publicKey: PUBKEY, ntpServers: [] }));
        expect(bare.ntp).toEqual({ enabled: true });
    });

    it("writes /etc/hosts with every member (address, FQDN, name) and the loopback defaults: no DNS needed", () => {
        const hosts = doc.write_files.find((f: { path: string }) => f.path === "/etc/hosts");
        expect([hosts.owner, hosts.permissions]).toEqual(["root:root", "0644"]);
        const lines: string[] = hosts.content.split("\n");
        expect(lines).toContain("127.0.0.1 localhost");
        for (const m of MEMBERS3) expect(lines).toContain(`${m.address} ${m.fqdn} ${m.name}`);
        expect(hosts.content).toBe(renderEtcHosts("etcd", MEMBERS3));
        // The managed block is the same text the readiness step keeps in sync.
        expect(hosts.content).toContain(renderHostsBlock("etcd", MEMBERS3));
    });

    it("writes a member without a domain once (name only)", () => {
        expect(renderHostsBlock("c", [{ name: "m1", fqdn: "m1", address: "10.0.0.1" }]).split("\n")[1]).toBe("10.0.0.1 m1");
    });
});

describe("firewall rules", () => {
    const policy = { adminCidrs: ["192.168.10.0/24"], clientCidrs: ["10.20.0.0/24"], metricsCidrs: ["10.103.0.0/24"], extraRules: [] };
    const ports = { client: 2379, peer: 2380, metrics: 2381 };
    const rules = memberFirewallRules({ self: MEMBERS3[0], members: MEMBERS3, ports, networkCidr: "10.103.0.0/24", policy });
    const byPort = (p: string) => rules.filter((r) => r.dport === p);

    it("admits the peer port only from the other members", () => {
        expect(byPort("2380")).toHaveLength(1);
        expect(byPort("2380")[0].source.split(",")).toEqual(["10.103.0.102", "10.103.0.103"]);
        expect(byPort("2380")[0].source).not.toContain("10.103.0.101");
    });

    it("admits SSH from the admin sources, clients from the client sources plus every member, metrics from the metrics sources", () => {
        expect(byPort("22")[0].source).toBe("192.168.10.0/24");
        // Members are outside 10.20.0.0/24, so each is added (the health gate and etcdctl run on members).
        expect(byPort("2379")[0].source.split(",")).toEqual(["10.20.0.0/24", "10.103.0.101", "10.103.0.102", "10.103.0.103"]);
        expect(byPort("2381")[0].source).toBe("10.103.0.0/24");
        for (const r of rules) expect([r.type, r.action, r.enabled]).toEqual(["in", "ACCEPT", true]);
        expect(rules.find((r) => r.macro === "Ping")?.source).toBe("10.103.0.0/24,192.168.10.0/24");
    });

    it("does not repeat members already inside a client CIDR; a lone member has no peer rule; extra rules follow", () => {
        const inside = memberFirewallRules({ self: MEMBERS3[0], members: MEMBERS3, ports, networkCidr: "10.103.0.0/24", policy: { ...policy, clientCidrs: ["10.103.0.0/24"] } });
        expect(inside.find((r) => r.dport === "2379")?.source).toBe("10.103.0.0/24");
        const lone = memberFirewallRules({
            self: MEMBERS3[0],
            members: [MEMBERS3[0]],
            ports,
            networkCidr: "10.103.0.0/24",
            policy: { ...policy, extraRules: [{ port: "8472", proto: "udp", sources: ["10.103.0.0/24"], comment: "flannel" }] },
        });
        expect(lone.filter((r) => r.dport === "2380")).toEqual([]);
        expect(lone[lone.length - 1]).toEqual({ type: "in", action: "ACCEPT", proto: "udp", dport: "8472", source: "10.103.0.0/24", comment: "etcd-ha: flannel", enabled: true });
    });
});

describe("readiness dial budget", () => {
    it.each([30, 300, 900, 7200])("waits at least %i s for sshd when it refuses at once, and at most that plus one connect timeout per attempt", (t) => {
        const b = sshDialBudget(t);
        expect(retrySleepSeconds(b.dialErrorLimit + 1)).toBeGreaterThanOrEqual(t);
        // One fewer attempt would not be enough: the budget is the smallest that covers t.
        expect(b.dialErrorLimit === 10 || retrySleepSeconds(b.dialErrorLimit) < t).toBe(true);
        expect(retrySleepSeconds(b.dialErrorLimit + 1)).toBeLessThan(t + 5);
        expect(b.perDialTimeout).toBe(5);
    });

    it("sleeps as the command provider does: 100 ms × 1.5ⁿ capped at 5 s (11 attempts ≈ 11 s)", () => {
        expect(retrySleepSeconds(1)).toBe(0);
        expect(retrySleepSeconds(3)).toBeCloseTo(0.25, 6);
        expect(retrySleepSeconds(11)).toBeCloseTo(11.33, 1);
        expect(retrySleepSeconds(21) - retrySleepSeconds(20)).toBe(5);
    });
});

/** A plan spec like the dev stack's. */
function spec(over: Partial<InfraSpec> = {}): InfraSpec {
    return {
        clusterName: "etcd",
        topology: "external",
        proxmox: {
            endpoint: "https://pve1.kloud.lan:8006/",
            image: { url: "https://cloud-images.example/noble.img", sha256: IMAGE_SHA256, fileName: "noble.qcow2" },
        },
        hypervisors: ["pve1", "pve2", "pve3"].map((name, i) => ({
            name,
            sshAddress: `10.103.0.${11 + i}`,
            bridge: { name: "vmbr10", ports: ["eno2"] },
            datastores: { disk: "local-lvm", images: "local", snippets: "local" },
        })),
        network: { cidr: "10.103.0.0/24", gateway: "10.103.0.1", dnsServers: ["10.103.0.1"], searchDomain: "kloud.lan" },
        members: MEMBERS3.map((m, i) => ({ ...m, hypervisor: `pve${i + 1}`, vmId: 7101 + i, size: { cores: 2, memoryMiB: 4096, diskGiB: 20 } })),
        admin: { user: "ubuntu", publicKey: PUBKEY },
        ports: { client: 2379, peer: 2380, metrics: 2381 },
        ...over,
    };
}

describe("infrastructure plan", () => {
    it("anti-affinity sets never hold two members of one node; with one member per node there is one set of all", () => {
        expect(antiAffinitySets([{ name: "a", hypervisor: "p1" }, { name: "b", hypervisor: "p2" }, { name: "c", hypervisor: "p3" }])).toEqual([["a", "b", "c"]]);
        const six = ["p1", "p2", "p1", "p2", "p1", "p2"].map((h, i) => ({ name: `e${i + 1}`, hypervisor: h }));
        expect(antiAffinitySets(six)).toEqual([["e1", "e2"], ["e3", "e4"], ["e5", "e6"]]);
        expect(antiAffinitySets([{ name: "a", hypervisor: "p1" }, { name: "b", hypervisor: "p1" }])).toEqual([]);
    });

    it("one provider for a PVE cluster (with the nodes' SSH addresses), one per node for standalone hosts", () => {
        const p = planInfrastructure(spec());
        expect(p.providers).toEqual([
            {
                key: "cluster",
                endpoint: "https://pve1.kloud.lan:8006/",
                insecure: false,
                sshUsername: "root",
                sshAgent: false,
                nodes: [1, 2, 3].map((i) => ({ name: `pve${i}`, address: `10.103.0.${10 + i}` })),
            },
        ]);
        const s = spec({ proxmox: { ...spec().proxmox, clustered: false } });
        s.hypervisors.forEach((h) => (h.endpoint = `https://${h.name}:8006/`));
        const standalone = planInfrastructure(s);
        expect(standalone.providers.map((x) => [x.key, x.endpoint, x.nodes.map((n) => n.name)])).toEqual([1, 2, 3].map((i) => [`pve${i}`, `https://pve${i}:8006/`, [`pve${i}`]]));
        expect(standalone.vms.map((v) => v.provider)).toEqual(["pve1", "pve2", "pve3"]);
        expect(standalone.ha).toEqual({ mode: "off" });
    });

    it("bridges and images only on nodes that host members; an existing bridge is used, not managed", () => {
        const s = spec({ members: spec().members.slice(0, 2) });
        s.hypervisors[1].bridge.exists = true;
        delete s.hypervisors[1].bridge.ports;
        const p = planInfrastructure(s);
        expect(p.bridges.map((b) => b.hypervisor)).toEqual(["pve1"]);
        expect(p.images.map((i) => i.hypervisor)).toEqual(["pve1", "pve2"]);
        expect(p.vms.map((v) => v.managedBridge)).toEqual([true, false]);
        expect(p.images[0].args).toEqual({
            nodeName: "pve1",
            datastoreId: "local",
            contentType: "import",
            url: "https://cloud-images.example/noble.img",
            fileName: "noble.qcow2",
            checksum: IMAGE_SHA256,
            checksumAlgorithm: "sha256",
            overwrite: false,
            uploadTimeout: 1800,
        });
    });

    it("without a snippets datastore: the built-in user account, no snippet, agent off", () => {
        const s = spec();
        delete s.hypervisors[0].datastores.snippets;
        const [v1, v2] = planInfrastructure(s).vms;
        expect(v1.snippet).toBeUndefined();
        expect(v1.vm.initialization.userAccount).toEqual({ username: "ubuntu", keys: [PUBKEY] });
        expect(v1.vm.agent.enabled).toBe(false);
        expect(v2.snippet?.fileName).toBe("etcd-etcd2-user-data.yaml");
        expect(v2.vm.initialization.userAccount).toBeUndefined();
        expect(v2.vm.agent.enabled).toBe(true);
    });

    it("firewall off: no firewall resources and the NIC flag off; VLAN tag and MTU reach the NIC", () => {
        const s = spec({ proxmox: { ...spec().proxmox, firewall: { enabled: false } } });
        s.hypervisors[0].bridge = { ...s.hypervisors[0].bridge, vlanId: 103, mtu: 9000 };
        const [v1, v2] = planInfrastructure(s).vms;
        expect(v1.firewall).toBeUndefined();
        expect(v1.vm.networkDevices).toEqual([{ bridge: "vmbr10", model: "virtio", firewall: false, vlanId: 103, mtu: 9000 }]);
        expect(v2.vm.networkDevices).toEqual([{ bridge: "vmbr10", model: "virtio", firewall: false }]);
    });

    it("PVE 8: one HA group per node preferring it, no rules", () => {
        const p = planInfrastructure(spec({ proxmox: { ...spec().proxmox, ha: { pveMajor: 8 } } }));
        expect(p.ha).toEqual({
            mode: "groups",
            groups: [1, 2, 3].map((i) => ({ hypervisor: `pve${i}`, group: `etcd-pve${i}`, nodes: { pve1: i === 1 ? 2 : 1, pve2: i === 2 ? 2 : 1, pve3: i === 3 ? 2 : 1 } })),
        });
    });

    it("PVE tags are lower-case, sanitised, unique and sorted", () => {
        expect(vmTags(["K8s", "control-plane", "stacked", "k8s", "a b"])).toEqual(["a-b", "control-plane", "k8s", "stacked"]);
    });

    it("reports every problem of a bad spec at once, with its path", () => {
        const s = spec();
        s.proxmox.endpoint = undefined;
        s.proxmox.image.sha256 = "nope";
        s.hypervisors[0].bridge.name = "my-bridge-name";
        s.members[1].vmId = 7101;
        s.members[2].hypervisor = "pve9";
        s.members[2].address = "10.9.0.1";
        expect(validateInfraSpec(s).map((i) => i.path)).toEqual([
            "proxmox.endpoint",
            "proxmox.image.sha256",
            "hypervisors[0].bridge.name",
            "members[1].vmId",
            "members[2].address",
            "members[2].hypervisor",
        ]);
        expect(validateLinuxBridgeArgs({ nodeName: "", name: "9x", address: "10.0.0.1", mtu: 100, ports: ["eno2", "bad port"] }).map((p) => p.path)).toEqual([
            "nodeName",
            "name",
            "address",
            "mtu",
            "ports[1]",
        ]);
        expect(validateLinuxBridgeArgs({ nodeName: "pve1", name: "vmbr10", address: "10.0.0.1/24", gateway: "10.9.9.9" })).toEqual([{ path: "gateway", reason: "10.9.9.9 is outside 10.0.0.0/24" }]);
        expect(validateLinuxBridgeArgs({ nodeName: "pve1", name: "vmbr10", gateway: "10.9.9.9" })).toEqual([{ path: "gateway", reason: "needs address as well" }]);
    });
});

// ---------------------------------------------------------------------------------------------------------
// The program under mocks
// ---------------------------------------------------------------------------------------------------------

/** Distinct secret values, so a leak into any plain input is found by text. */
const SECRETS = {
    "etcd-ha:proxmoxApiToken": "pulumi@pve!etcd-ha=0f3a9c1e-token-value",
    "etcd-ha:proxmoxSshPrivateKey": fakePem("OPENSSH PRIVATE KEY", "hypervisor-key-body"),
    "etcd-ha:sshPrivateKey": fakePem("OPENSSH PRIVATE KEY", "member-key-body"),
};

interface Registered extends RecordedResource {
    /** The provider reference (`urn::id`) the SDK sent, when any. */
    provider?: string;
}

async function runStack(file: string): Promise<{ rs: Registered[]; outputs: Record<string, unknown> }> {
    const providers = new Map<string, string>();
    const record: Registered[] = [];
    const newResource = async (args: pulumi.runtime.MockResourceArgs) => {
        if (args.provider) providers.set(`${args.type}::${args.name}`, args.provider);
        return planNewResource(args);
    };
    const r = await runProgram({ ...stackRun(file, SECRETS), newResource, record });
    for (const x of record) x.provider = providers.get(`${x.type}::${x.name}`);
    return { rs: record, outputs: r.outputs };
}

/** Paths of every place a secret value appears outside a secret wrapper. */
function plainLeaks(value: unknown, secrets: readonly string[], at = ""): string[] {
    if (isSecretInput(value)) return [];
    // A whole secret, or any line of one (a PEM body line), found in plain text.
    if (typeof value === "string") return secrets.some((s) => s.split("\n").some((line) => line.length > 8 && !line.startsWith("-----") && value.includes(line))) ? [at] : [];
    if (Array.isArray(value)) return value.flatMap((v, i) => plainLeaks(v, secrets, `${at}[${i}]`));
    if (value && typeof value === "object") return Object.entries(value).flatMap(([k, v]) => plainLeaks(v, secrets, `${at}.${k}`));
    return [];
}

const ofType = (rs: Registered[], t: string) => rs.filter((r) => r.type === t);
const urnName = (urn: string) => urn.split("::").pop()!;
/** The provider's logical name from a provider reference (`<urn>::<id>`). */
const providerName = (ref: string | undefined) => ref?.split("::")[3];

describe("Pulumi.dev.yaml: the Proxmox resources' inputs", () => {
    let rs: Registered[];
    let outputs: Record<string, unknown>;
    beforeAll(async () => {
        ({ rs, outputs } = await runStack("Pulumi.dev.yaml"));
    });
    const by = (name: string) => rs.find((r) => r.name === name)!;
    const members = [
        { name: "etcd1", node: "pve1", address: "10.103.0.101", vmId: 7101 },
        { name: "etcd2", node: "pve2", address: "10.103.0.102", vmId: 7102 },
        { name: "etcd3", node: "pve3", address: "10.103.0.103", vmId: 7103 },
    ];

    it("builds one explicit provider from config, with the API token and the SSH key as secrets", () => {
        const [p] = ofType(rs, T.pveProvider);
        expect(ofType(rs, T.pveProvider)).toHaveLength(1);
        expect(p.name).toBe("etcd-vms-provider");
        expect(p.inputs.endpoint).toBe("https://pve1.kloud.lan:8006/");
        expect(p.inputs.insecure).toBe("true");
        expect(isSecretInput(p.inputs.apiToken)).toBe(true);
        expect(plain(p.inputs.apiToken)).toBe(SECRETS["etcd-ha:proxmoxApiToken"]);
        expect(isSecretInput(p.inputs.ssh)).toBe(true);
        const ssh = JSON.parse(plain(p.inputs.ssh) as string);
        expect(ssh.username).toBe("root");
        expect(ssh.privateKey).toBe(SECRETS["etcd-ha:proxmoxSshPrivateKey"]);
        expect(ssh.nodes).toEqual([1, 2, 3].map((i) => ({ name: `pve${i}`, address: `10.103.0.${10 + i}` })));
    });

    it("gives every Proxmox resource that explicit provider", () => {
        const provider = ofType(rs, T.pveProvider)[0];
        const px = rs.filter((r) => r.type.startsWith("proxmoxve:"));
        expect(px.length).toBeGreaterThan(20);
        for (const r of px) expect(r.provider?.slice(0, r.provider.lastIndexOf("::"))).toBe(provider.urn);
    });

    it("creates one bridge and one image per node that hosts a member, with the configured arguments", () => {
        const bridges = ofType(rs, T.bridge);
        expect(bridges.map((b) => b.inputs.nodeName)).toEqual(["pve1", "pve2", "pve3"]);
        expect(bridges[0].inputs).toEqual({ nodeName: "pve1", name: "vmbr10", address: "10.103.0.11/24", ports: ["eno2"], vlanAware: false, autostart: true, comment: "etcd member network" });
        expect(bridges[0].parent).toBe(by("etcd-vms-pve1-bridge").urn);
        const images = ofType(rs, T.image);
        expect(images.map((i) => [i.name, i.inputs.nodeName, i.inputs.datastoreId, i.inputs.contentType, i.inputs.fileName])).toEqual(
            [1, 2, 3].map((i) => [`etcd-vms-pve${i}-image`, `pve${i}`, "local", "import", "ubuntu-24.04-server-cloudimg-amd64.qcow2"]),
        );
        for (const i of images) expect([i.inputs.checksumAlgorithm, (i.inputs.checksum as string).length, i.inputs.overwrite]).toEqual(["sha256", 64, false]);
    });

    it.each(members)("$name: on $node, with that node's image, snippet and bridge, static IP and gateway, agent on", (m) => {
        const vm = by(`etcd-vms-${m.name}-vm`);
        const i = vm.inputs as Record<string, any>;
        expect([i.nodeName, i.vmId, i.name]).toEqual([m.node, m.vmId, m.name]);
        expect(i.disks).toEqual([{ interface: "scsi0", datastoreId: "local-lvm", size: 20, iothread: true, discard: "on", ssd: true, importFrom: `etcd-vms-${m.node}-image-id` }]);
        expect(vm.dependencies).toEqual(expect.arrayContaining([by(`etcd-vms-${m.node}-image`).urn, by(`etcd-vms-${m.name}-user-data`).urn, by(`etcd-vms-${m.node}-bridge-iface`).urn]));
        expect(i.networkDevices).toEqual([{ bridge: "vmbr10", model: "virtio", firewall: true }]);
        expect(i.initialization.ipConfigs).toEqual([{ ipv4: { address: `${m.address}/24`, gateway: "10.103.0.1" } }]);
        expect(i.initialization.dns).toEqual({ domain: "kloud.lan", servers: ["10.103.0.1"] });
        expect(i.initialization.datastoreId).toBe("local-lvm");
        expect(i.initialization.userDataFileId).toBe(`etcd-vms-${m.name}-user-data-id`);
        expect(i.initialization.userAccount).toBeUndefined();
        expect([i.cpu, i.memory, i.scsiHardware, i.operatingSystem]).toEqual([{ cores: 2, sockets: 1, type: "x86-64-v2-AES" }, { dedicated: 4096, floating: 0 }, "virtio-scsi-single", { type: "l26" }]);
        expect([i.onBoot, i.started, i.stopOnDestroy, i.migrate, i.agent.enabled]).toEqual([true, true, true, true, true]);
        expect(i.tags).toEqual(["etcd", "external"]);
        const snippet = by(`etcd-vms-${m.name}-user-data`).inputs as Record<string, any>;
        // The snippet carries the VM's SSH host key: the whole source is a secret.
        expect(isSecretInput(snippet.sourceRaw)).toBe(true);
        const source = plain(snippet.sourceRaw) as { fileName: string; data: string };
        expect([snippet.nodeName, snippet.datastoreId, snippet.contentType, source.fileName]).toEqual([m.node, "local", "snippets", `etcd-${m.name}-user-data.yaml`]);
        const doc = parse(source.data);
        expect([doc.hostname, doc.fqdn]).toEqual([m.name, `${m.name}.kloud.lan`]);
        // cloud-init replaces the image's host keys by the one generated for this VM (the mock's stand-in values).
        const key = by(`etcd-vms-${m.name}-host-key`);
        expect([key.type, key.inputs]).toEqual([T.privateKey, { algorithm: "ED25519" }]);
        expect(key.parent).toBe(by(`etcd-vms-${m.name}`).urn);
        expect([doc.ssh_deletekeys, doc.ssh_genkeytypes]).toEqual([true, []]);
        expect(doc.ssh_keys.ed25519_private).toContain(`plan-placeholder:etcd-vms-${m.name}-host-key`);
        expect(doc.ssh_keys.ed25519_public).toMatch(/^ssh-ed25519 AAAA\S+$/);
    });

    it("VM names and ids are unique", () => {
        const vms = ofType(rs, T.vm).map((v) => v.inputs as { name: string; vmId: number });
        expect(new Set(vms.map((v) => v.name)).size).toBe(3);
        expect(new Set(vms.map((v) => v.vmId)).size).toBe(3);
    });

    it.each(members)("$name: firewall on (inbound DROP) with 2380 only from the other members", (m) => {
        const opts = by(`etcd-vms-${m.name}-firewall-options`).inputs;
        expect(opts).toEqual({ nodeName: m.node, vmId: m.vmId, enabled: true, inputPolicy: "DROP", outputPolicy: "ACCEPT", macfilter: true, dhcp: false });
        const rules = by(`etcd-vms-${m.name}-firewall-rules`).inputs as { vmId: number; rules: { dport?: string; source: string }[] };
        expect(rules.vmId).toBe(m.vmId);
        const peer = rules.rules.filter((r) => r.dport === "2380");
        expect(peer).toHaveLength(1);
        expect(peer[0].source.split(",").sort()).toEqual(members.filter((x) => x.name !== m.name).map((x) => x.address));
        expect(rules.rules.find((r) => r.dport === "22")?.source).toBe("10.103.0.0/24,192.168.10.0/24");
    });

    it("registers every VM with HA and keeps them apart with one negative resource-affinity rule listing every member", () => {
        const ha = ofType(rs, T.haResource);
        expect(ha.map((h) => h.inputs.resourceId).sort()).toEqual(["vm:7101", "vm:7102", "vm:7103"]);
        for (const h of ha) expect(h.inputs.state).toBe("started");
        const [rule] = ofType(rs, T.haRule);
        expect(rule.inputs).toEqual({
            rule: "etcd-apart-1",
            type: "resource-affinity",
            affinity: "negative",
            resources: ["vm:7101", "vm:7102", "vm:7103"],
            comment: "etcd-ha etcd: keep etcd1, etcd2, etcd3 on different nodes",
        });
        expect(rule.dependencies).toEqual(expect.arrayContaining(ha.map((h) => h.urn)));
    });

    it.each(members)("$name: the readiness check waits for SSH and cloud-init before the first etcd step", (m) => {
        const ready = by(`etcd-vms-${m.name}-ready`);
        // The SDK sends the whole connection as a secret (it holds the key).
        expect(isSecretInput(ready.inputs.connection)).toBe(true);
        const c = plain(ready.inputs.connection) as Record<string, unknown>;
        expect([c.host, c.user, c.port, c.perDialTimeout, c.privateKey]).toEqual([m.address, "ubuntu", 22, 5, SECRETS["etcd-ha:sshPrivateKey"]]);
        expect(c.dialErrorLimit as number).toBeGreaterThan(150);
        const script = unwrapScript(ready.inputs.create as string);
        expect(script).toContain("cloud-init status --wait");
        expect(script).toContain(`vm='${m.name}'`);
        expect(script).toContain("limit=900");
        expect(ready.dependencies).toEqual(expect.arrayContaining([by(`etcd-vms-${m.name}-vm`).urn, by(`etcd-vms-${m.name}-firewall-rules`).urn]));
        // It pins the VM's generated host key, as every etcd step on the VM does.
        const hostKey = by(`etcd-vms-${m.name}-host-key`);
        const snippetDoc = parse((plain(by(`etcd-vms-${m.name}-user-data`).inputs.sourceRaw) as { data: string }).data);
        expect(c.hostKey).toBe(snippetDoc.ssh_keys.ed25519_public);
        expect(ready.dependencies).toContain(hostKey.urn);
        expect(by(`etcd-${m.name}-prepare`).dependencies.sort()).toEqual([hostKey.urn, ready.urn].sort());
        for (const step of ["prepare", "binaries", "certs", "config", "start", "maintenance"]) {
            expect((plain(by(`etcd-${m.name}-${step}`).inputs.connection) as { hostKey?: string }).hostKey).toBe(c.hostKey);
        }
    });

    it("parents: providers, bridges, images and VMs under ProxmoxHosts; each VM's resources under its EtcdVm", () => {
        const root = by("etcd-vms");
        expect(root.type).toBe(T.proxmoxHosts);
        for (const r of [...ofType(rs, T.pveProvider), ...ofType(rs, T.linuxBridge), ...ofType(rs, T.image), ...ofType(rs, T.etcdVm), ...ofType(rs, T.haRule)]) {
            expect(r.parent).toBe(root.urn);
        }
        for (const m of members) {
            const vmc = by(`etcd-vms-${m.name}`);
            for (const child of ["user-data", "vm", "firewall-options", "firewall-rules", "ha", "ready"]) expect(urnName(by(`etcd-vms-${m.name}-${child}`).parent)).toBe(vmc.name);
        }
    });

    it("sends no secret (API token, either private key) in any plain input", () => {
        const secrets = Object.values(SECRETS);
        const leaks = rs.flatMap((r) => plainLeaks(r.inputs, secrets).map((p) => `${r.name}${p}`));
        expect(leaks).toEqual([]);
        // The walker finds a leak when there is one.
        const wrapped = { [SECRET_SIG]: SECRET_VALUE, value: SECRETS["etcd-ha:proxmoxApiToken"] };
        expect(isSecretInput(wrapped)).toBe(true);
        expect(plainLeaks({ a: [{ b: `x ${SECRETS["etcd-ha:proxmoxApiToken"]} y` }], c: wrapped, d: "member-key-body" }, secrets)).toEqual([".a[0].b", ".d"]);
        // The test can fail: the key does travel, wrapped, to every remote command.
        const carrying = rs.filter((r) => r.type === T.command && isSecretInput(r.inputs.connection) && (plain(r.inputs.connection) as { privateKey?: string }).privateKey === SECRETS["etcd-ha:sshPrivateKey"]);
        // Per member: its readiness check and six etcd steps; then the pre-upgrade snapshot, the gate and the teardown step.
        expect(carrying).toHaveLength(3 * 7 + 3);
        expect(JSON.stringify(outputs)).not.toContain("member-key-body");
    });
});

describe("resource options (seen through a stack transformation: mocks never receive options)", () => {
    const opts = new Map<string, pulumi.CustomResourceOptions>();
    beforeAll(async () => {
        await runProgram({
            ...stackRun("Pulumi.dev.yaml", SECRETS),
            program: async () => {
                pulumi.runtime.registerStackTransformation((a) => {
                    opts.set(a.name, a.opts);
                    return undefined;
                });
                // eslint-disable-next-line @typescript-eslint/no-require-imports
                return (require(PROGRAM) as () => Promise<unknown>)();
            },
        });
    });

    it("a VM ignores its seed inputs (snippet id, source image) and, with HA, its node: nothing rebuilds a running member", () => {
        expect(opts.get("etcd-vms-etcd1-vm")?.ignoreChanges).toEqual(["initialization.userDataFileId", "disks[0].importFrom", "nodeName"]);
    });

    it("a snippet is deleted before it is replaced (same file name on the datastore)", () => {
        expect(opts.get("etcd-vms-etcd1-user-data")?.deleteBeforeReplace).toBe(true);
    });
});

describe("a VM created before host keys were generated (members[].hostKey)", () => {
    it("pins the adopted key on every remote step and generates none; its snippet carries no key", async () => {
        const adopted = testHostKey("etcd2");
        const run = stackRun("Pulumi.dev.yaml", SECRETS);
        const members = JSON.parse(run.config["etcd-ha:members"]) as Record<string, unknown>[];
        members[1].hostKey = adopted;
        const record: Registered[] = [];
        await runProgram({ ...run, config: { ...run.config, "etcd-ha:members": JSON.stringify(members) }, newResource: planNewResource, record });
        const names = record.map((r) => r.name);
        expect(names).toContain("etcd-vms-etcd1-host-key");
        expect(names).not.toContain("etcd-vms-etcd2-host-key");
        const pin = adopted.split(" ").slice(0, 2).join(" ");
        const onEtcd2 = record.filter((r) => (r.type === T.command || r.type === T.copyToRemote) && (plain(r.inputs.connection) as { host: string }).host === "10.103.0.102");
        expect(onEtcd2.map((r) => r.name).sort()).toEqual(["etcd-etcd2-binaries", "etcd-etcd2-certs", "etcd-etcd2-config", "etcd-etcd2-maintenance", "etcd-etcd2-prepare", "etcd-etcd2-start", "etcd-vms-etcd2-ready"]);
        for (const r of onEtcd2) expect((plain(r.inputs.connection) as { hostKey?: string }).hostKey).toBe(pin);
        const snippet = record.find((r) => r.name === "etcd-vms-etcd2-user-data")!;
        const doc = parse((plain(snippet.inputs.sourceRaw) as { data: string }).data);
        expect([doc.ssh_keys, doc.ssh_deletekeys]).toEqual([undefined, undefined]);
    });
});

describe("examples under mocks", () => {
    it("six on two: two bridges and images, six VMs alternating nodes, three anti-affinity rules of one member per node", async () => {
        const { rs } = await runStack("examples/Pulumi.six-on-two.yaml");
        expect(ofType(rs, T.bridge).map((b) => b.inputs.nodeName)).toEqual(["pve1", "pve2"]);
        expect(ofType(rs, T.image).map((b) => b.inputs.nodeName)).toEqual(["pve1", "pve2"]);
        const placed = ofType(rs, T.vm).map((v) => [v.inputs.name, v.inputs.nodeName]);
        expect(placed.sort()).toEqual([1, 2, 3, 4, 5, 6].map((i) => [`etcd${i}`, i % 2 ? "pve1" : "pve2"]));
        expect(ofType(rs, T.haRule).map((r) => r.inputs.resources).sort()).toEqual([
            ["vm:7101", "vm:7102"],
            ["vm:7103", "vm:7104"],
            ["vm:7105", "vm:7106"],
        ]);
        const peer = (ofType(rs, T.fwRules)[0].inputs.rules as { dport?: string; source: string }[]).find((r) => r.dport === "2380")!;
        expect(peer.source.split(",")).toHaveLength(5);
    });

    it("stacked five: control-plane VMs on three standalone hosts, a provider each, existing bridges, a snippet each, kube ports open", async () => {
        const { rs, outputs } = await runStack("examples/Pulumi.stacked-five.yaml");
        const providers = ofType(rs, T.pveProvider);
        expect(providers.map((p) => [p.name, p.inputs.endpoint])).toEqual([1, 2, 3].map((i) => [`k8s-vms-pve${i}-provider`, `https://pve${i}.kloud.lan:8006/`]));
        expect(JSON.parse(plain(providers[0].inputs.ssh) as string)).toEqual({ username: "root", agent: true });
        expect(ofType(rs, T.bridge)).toEqual([]);
        expect(ofType(rs, T.snippet).map((f) => f.inputs.nodeName)).toEqual(["pve1", "pve2", "pve3", "pve1", "pve2"]);
        expect([ofType(rs, T.haResource), ofType(rs, T.haRule)]).toEqual([[], []]);
        const vms = ofType(rs, T.vm);
        expect(vms.map((v) => v.inputs.name).sort()).toEqual(["cp1", "cp2", "cp3", "cp4", "cp5"]);
        for (const v of vms) {
            const i = v.inputs as Record<string, any>;
            // Each VM uses the provider of its own node.
            expect(providerName(v.provider)).toBe(`k8s-vms-${i.nodeName}-provider`);
            expect(i.tags).toEqual(["control-plane", "k8s", "stacked"]);
            expect(i.description).toContain("control-plane");
            expect(i.initialization.userAccount).toBeUndefined();
            expect(i.agent.enabled).toBe(true);
            expect(i.networkDevices[0].bridge).toBe("vmbr20");
            expect([i.cpu.cores, i.memory.dedicated, i.disks[0].size]).toEqual([4, 8192, 50]);
        }
        const rules = ofType(rs, T.fwRules)[0].inputs.rules as { dport?: string; comment: string }[];
        expect(rules.filter((r) => ["6443", "10250"].includes(r.dport ?? "")).map((r) => r.comment)).toEqual(["etcd-ha: kube-apiserver", "etcd-ha: kubelet"]);
        expect((outputs.controlPlaneNodes as { name: string; role: string }[]).map((n) => `${n.name}:${n.role}`)).toEqual(["cp1", "cp2", "cp3", "cp4", "cp5"].map((n) => `${n}:control-plane`));
    });
});
