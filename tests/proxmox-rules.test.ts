/**
 * The config rules that mirror what the Proxmox provider (or the program's own components) refuses
 * (docs/proxmox-provider.md): each refused class is a row of tests/helpers/malformed.ts; here, the values
 * just inside each rule are still accepted, the rule holds on every key it covers, and the CPU-type list
 * is the one in the provider source the built plugin was compiled from.
 */
import * as fs from "fs";
import * as path from "path";
import { spawnSync } from "child_process";
import { cpuTypeProblem, PROXMOX_CPU_TYPES } from "../components/config/schema";
import { validateStackConfig } from "../components/config/validate";
import { engine } from "../tools/lab/pulumi";
import { ALL_SECRETS, hostsBase, mutate, proxmoxBase, Raw } from "./helpers/configs";

const HOST_SECRETS: ReadonlySet<string> = new Set(["sshPrivateKey"]);

/** `path: message` of every issue (empty when the config is valid). */
function issues(raw: Raw, secrets: ReadonlySet<string> = ALL_SECRETS): string[] {
    const r = validateStackConfig(raw, secrets);
    return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`);
}
const LEADING_ZERO = "must be written without leading zeros (10.103.0.1, not 10.103.0.01): the Proxmox provider refuses them and some tools read them as octal";

describe("proxmox.cpuType", () => {
    it("accepts every type the provider lists, and custom-<name>", () => {
        for (const t of [...PROXMOX_CPU_TYPES, "custom-etcd", "custom-Skylake_noAVX.1"]) expect([t, issues(mutate(proxmoxBase(), (c) => (c.proxmox.cpuType = t)))]).toEqual([t, []]);
    });

    it("names the listed type when only the case differs", () => {
        expect(cpuTypeProblem("Host")).toMatch(/: did you mean host\?$/);
        expect(cpuTypeProblem("epyc-milan")).toMatch(/: did you mean EPYC-Milan\?$/);
        expect(cpuTypeProblem("custom-")).not.toMatch(/did you mean/);
    });

    it("is the list of the provider source the built plugin was compiled from", () => {
        // The plugin's build info names the terraform provider module and version it was built with.
        const sdkPluginVersion = JSON.parse(fs.readFileSync(path.join(__dirname, "..", "node_modules", "@muhlba91", "pulumi-proxmoxve", "package.json"), "utf8")).pulumi.version;
        const plugin = path.join(engine().home, "plugins", `resource-proxmoxve-v${sdkPluginVersion}`, "pulumi-resource-proxmoxve");
        const info = spawnSync("go", ["version", "-m", plugin], { encoding: "utf8" });
        const dep = /\bdep\s+github\.com\/bpg\/terraform-provider-proxmox\s+(v\S+)/.exec(info.stdout ?? "");
        expect([plugin, dep?.[1]]).toEqual([plugin, expect.stringMatching(/^v\d+\.\d+\.\d+$/)]);
        const modcache = spawnSync("go", ["env", "GOMODCACHE"], { encoding: "utf8" }).stdout.trim();
        const file = path.join(modcache, "github.com", "bpg", `terraform-provider-proxmox@${dep![1]}`, "proxmoxtf", "resource", "vm", "validators.go");
        if (!fs.existsSync(file)) throw new Error(`${file} is missing: run \`go mod download github.com/bpg/terraform-provider-proxmox@${dep![1]}\``);
        const body = /standardTypes := \[\]string\{([^}]*)\}/.exec(fs.readFileSync(file, "utf8"))?.[1] ?? "";
        const listed = [...body.matchAll(/"([^"]+)"/g)].map((m) => m[1]);
        expect(listed.length).toBeGreaterThan(50);
        expect([...PROXMOX_CPU_TYPES].sort()).toEqual([...listed].sort());
    }, 120_000);
});

describe("clusterName and Proxmox HA names", () => {
    it("a leading digit is refused only where HA objects are named after it", () => {
        expect(issues(mutate(proxmoxBase(), (c) => (c.clusterName = "1etcd")))).toHaveLength(1);
        expect(issues(mutate(proxmoxBase(), (c) => ((c.clusterName = "1etcd"), (c.proxmox.ha = { enabled: false }))))).toEqual([]);
        const standalone = mutate(proxmoxBase(), (c) => {
            c.clusterName = "1etcd";
            c.proxmox = { ...c.proxmox, clustered: false };
            c.hypervisors.forEach((h: { name: string; endpoint?: string }) => (h.endpoint = `https://${h.name}:8006/`));
        });
        expect(issues(standalone)).toEqual([]);
        expect(issues(mutate(hostsBase(), (c) => (c.clusterName = "1lab")), HOST_SECRETS)).toEqual([]);
        expect(issues(mutate(proxmoxBase(), (c) => ((c.clusterName = "2etcd"), (c.proxmox.ha = { pveMajor: 8 }))))).toEqual([
            `etcd-ha:clusterName: "2etcd" starts with a digit, but the Proxmox HA groups are named after it (2etcd-pve1) and Proxmox refuses a name that does not start with a letter: start the cluster name with a letter, or set etcd-ha:proxmox.ha.enabled: false`,
        ]);
    });

    it("PVE 8 group names: a cluster name that leaves every group whole is accepted; PVE 9 rules are never cut", () => {
        expect(issues(mutate(proxmoxBase(), (c) => ((c.clusterName = "a".repeat(35)), (c.proxmox.ha = { pveMajor: 8 }))))).toEqual([]);
        // A cut that still ends in a letter and keeps the groups apart is fine too.
        expect(issues(mutate(proxmoxBase(), (c) => ((c.clusterName = "a".repeat(38)), (c.proxmox.ha = { pveMajor: 8 }), c.hypervisors.forEach((h: { name: string }, i: number) => (h.name = `${"xyz"[i]}pve`)), c.members.forEach((m: { hypervisor: string }, i: number) => (m.hypervisor = `${"xyz"[i]}pve`)))))).toEqual([]);
        expect(issues(mutate(proxmoxBase(), (c) => (c.clusterName = "a".repeat(63))))).toEqual([]);
        expect(issues(mutate(proxmoxBase(), (c) => ((c.clusterName = "a".repeat(39)), (c.proxmox.ha = { pveMajor: 8, enabled: false }))))).toEqual([]);
    });
});

describe("IPv4 values without leading zeros", () => {
    it("holds on every IPv4 key, with the key named; a lone 0 octet is fine", () => {
        expect(issues(proxmoxBase())).toEqual([]);
        const cases: [string, (c: any) => void][] = [
            ["etcd-ha:network.dnsServers[0]: ", (c) => (c.network.dnsServers = ["10.103.0.01"])],
            ["etcd-ha:network.gateway: ", (c) => (c.network.gateway = "10.103.0.001")],
            ["etcd-ha:members[1].address: ", (c) => (c.members[1].address = "10.103.0.0102")],
            ["etcd-ha:hypervisors[1].bridge.gateway: ", (c) => (c.hypervisors[1].bridge.gateway = "010.103.0.1")],
            ["etcd-ha:proxmox.firewall.adminCidrs[0]: ", (c) => (c.proxmox.firewall = { adminCidrs: ["192.168.010.0/24"] })],
            ["etcd-ha:network.cidr: ", (c) => (c.network.cidr = "10.103.00.0/24")],
        ];
        for (const [at, f] of cases) {
            const raw = mutate(proxmoxBase(), f);
            expect(issues(raw).filter((i) => i.startsWith(at) && i.includes(LEADING_ZERO))).toHaveLength(1);
        }
        // A CIDR with a leading zero is not also called a network address with host bits set.
        expect(issues(mutate(proxmoxBase(), (c) => (c.network.cidr = "10.103.00.0/24"))).filter((i) => i.startsWith("etcd-ha:network.cidr:"))).toHaveLength(1);
        expect(issues(mutate(hostsBase(), (c) => (c.hosts[0].address = "127.42.0.011")), HOST_SECRETS)).toEqual([`etcd-ha:hosts[0].address: ${LEADING_ZERO} (got "127.42.0.011")`]);
        expect(issues(mutate(proxmoxBase(), (c) => (c.proxmox.firewall = { adminCidrs: ["0.0.0.0/0", "10.0.0.0/8"] })))).toEqual([]);
    });
});

describe("bridge ports", () => {
    it("accepts NICs, bonds and VLAN interfaces; one name per entry", () => {
        expect(issues(mutate(proxmoxBase(), (c) => (c.hypervisors[0].bridge.ports = ["enp3s0f1", "bond0", "eno2.103", "eth0:1"])))).toEqual([]);
        expect(issues(mutate(proxmoxBase(), (c) => (c.hypervisors[0].bridge.ports = ["eno2", "x".repeat(16), ""])))).toHaveLength(2);
    });
});

describe("allocated VM ids and FQDN length", () => {
    it("vmIdBase + offset up to 999999999 is accepted; explicit vmIds need no room", () => {
        const wide = (base: number) => mutate(proxmoxBase(), (c) => ((c.proxmox.vmIdBase = base), (c.network.cidr = "10.0.0.0/8")));
        expect(issues(wide(993249688))).toEqual([]);
        expect(issues(wide(993249689))).toHaveLength(1);
        expect(issues(mutate(wide(999000000), (c) => c.members.forEach((m: { vmId?: number }, i: number) => (m.vmId = 7101 + i))))).toEqual([]);
    });

    it("an FQDN of exactly 253 characters is accepted; hosts with their own fqdn are not measured", () => {
        const domain247 = `${"a".repeat(60)}.`.repeat(4) + "lan";
        expect(issues(mutate(proxmoxBase(), (c) => (c.network.searchDomain = domain247)))).toEqual([]);
        expect(issues(mutate(proxmoxBase(), (c) => ((c.network.searchDomain = domain247), (c.members[2].name = "etcd10"))))).toEqual([
            "etcd-ha:network.searchDomain: makes the FQDN of etcd10 (etcd10.<searchDomain>) 254 characters long, more than the 253 a DNS name may have (it goes into certificates and cloud-init): use a search domain of at most 246 characters, or shorter member names",
        ]);
        const hosts = (fqdn?: string) => mutate(hostsBase(), (c) => ((c.network = { cidr: "127.42.0.0/24", searchDomain: `${"b".repeat(61)}.`.repeat(4) + "lan" }), fqdn && c.hosts.forEach((h: { fqdn?: string }) => (h.fqdn = fqdn))));
        expect(issues(hosts(), HOST_SECRETS)).toHaveLength(1);
        expect(issues(hosts("m.kloud.lan"), HOST_SECRETS)).toEqual([]);
    });
});
