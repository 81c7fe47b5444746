/**
 * The offline plan end to end: `npm run plan` as an operator runs it (child process), human and JSON.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..");

function plan(args: string[], viaNpm = false): Promise<{ code: number; stdout: string; stderr: string }> {
    const [cmd, argv] = viaNpm
        ? ["npm", ["run", "-s", "plan", "--", ...args]]
        : [process.execPath, [path.join(ROOT, "node_modules/ts-node/dist/bin.js"), "--transpile-only", path.join(ROOT, "tools/plan.ts"), ...args]];
    return new Promise((resolve) => {
        execFile(cmd, argv as string[], { cwd: ROOT, timeout: 60000 }, (err, stdout, stderr) => {
            const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 99) : 0;
            resolve({ code, stdout, stderr });
        });
    });
}

const CONTRACT_KEYS = ["stack", "topology", "members", "quorum", "faultTolerance", "endpoints", "warnings", "resources", "depth"];

describe("npm run plan", () => {
    it("prints the member table, quorum, warnings and resource tree for the dev stack (human)", async () => {
        const r = await plan(["--stack", "dev"], true);
        expect(r.code).toBe(0);
        const lines = r.stdout.split("\n");
        expect(lines[0]).toBe("Stack dev: external topology, 3 members");
        expect(lines).toContain("etcd1   pve1        10.103.0.101  https://10.103.0.101:2379  https://10.103.0.101:2380");
        expect(lines).toContain("Quorum: 2 of 3");
        expect(lines).toContain("Fault tolerance: 1 member, 1 hypervisor (worst case)");
        expect(lines).toContain("Warnings: none");
        expect(lines).toContain("pulumi:pulumi:Stack  etcd-ha-dev");
        expect(lines).toContain("└─ etcd-ha:index:EtcdCluster  etcd");
        expect(lines).toContain("   ├─ etcd-ha:index:EtcdPki  etcd-pki");
        expect(lines).toContain("   ├─ etcd-ha:index:EtcdMember  etcd-etcd3");
        expect(lines).toContain("   │  ├─ command:remote:Command  etcd-etcd3-start  ← etcd-etcd3-binaries, etcd-etcd3-certs, etcd-etcd3-config, etcd-pki-ca, etcd-pki-etcd3-peer, etcd-pki-etcd3-server, etcd-token, etcd-vms-etcd3-host-key");
        expect(lines).toContain("   │  └─ command:remote:Command  etcd-etcd3-maintenance  ← etcd-etcd3-start, etcd-health, etcd-vms-etcd3-host-key");
        expect(lines).toContain("   │  ├─ command:remote:Command  etcd-etcd3-binaries  ← etcd-etcd3-prepare, etcd-upgrade-snapshot, etcd-vms-etcd3-host-key");
        expect(lines).toContain("   ├─ command:remote:Command  etcd-upgrade-snapshot  ← etcd-vms-etcd1-host-key, etcd-vms-etcd1-ready");
        expect(lines).toContain("   ├─ command:remote:Command  etcd-health  ← etcd-etcd1-start, etcd-etcd2-start, etcd-etcd3-start, etcd-vms-etcd1-host-key");
        expect(lines).toContain("   └─ command:remote:Command  etcd-teardown  ← etcd-etcd1-start, etcd-etcd2-start, etcd-etcd3-start, etcd-health, etcd-vms-etcd1-host-key");
        // The Proxmox layer, with its parents and dependencies: the VM after its node's image, snippet and
        // bridge; the readiness check after the VM and its firewall; the first etcd step after the check.
        expect(lines).toContain("├─ etcd-ha:index:ProxmoxHosts  etcd-vms");
        expect(lines).toContain("│  ├─ pulumi:providers:proxmoxve  etcd-vms-provider");
        expect(lines).toContain("│  │  ├─ proxmoxve:index/vmLegacy:VmLegacy  etcd-vms-etcd1-vm  ← etcd-vms-etcd1-user-data, etcd-vms-pve1-bridge-iface, etcd-vms-pve1-image");
        expect(lines).toContain(
            "│  │  └─ command:remote:Command  etcd-vms-etcd1-ready  ← etcd-vms-etcd1-firewall-options, etcd-vms-etcd1-firewall-rules, etcd-vms-etcd1-host-key, etcd-vms-etcd1-vm",
        );
        expect(lines).toContain("│  │  └─ proxmoxve:network/linux/bridge:Bridge  etcd-vms-pve3-bridge-iface");
        expect(lines).toContain("│  ├─ proxmoxve:download/file:File  etcd-vms-pve2-image");
        expect(lines).toContain(
            "│  └─ proxmoxve:index/harule:Harule  etcd-vms-anti-affinity-1  ← etcd-vms-etcd1-ha, etcd-vms-etcd1-vm, etcd-vms-etcd2-ha, etcd-vms-etcd2-vm, etcd-vms-etcd3-ha, etcd-vms-etcd3-vm",
        );
        expect(lines).toContain("   │  ├─ command:remote:Command  etcd-etcd1-prepare  ← etcd-vms-etcd1-host-key, etcd-vms-etcd1-ready");
        expect(lines).toContain("Resources: 93, longest dependency chain: 10");
        // progress and notes go to stderr, never into the plan
        expect(r.stderr).toMatch(/plan: evaluating Pulumi\.dev\.yaml/);
        expect(r.stdout).not.toMatch(/plan: /);
    });

    it.each([
        ["dev", 3, 2, { members: 1, hypervisors: 1 }, []],
        ["six-on-two", 6, 4, { members: 2, hypervisors: 0 }, ["even-members", "hypervisor-quorum"]],
        ["stacked-five", 5, 3, { members: 2, hypervisors: 1 }, []],
    ])("--json for %s matches the contract", async (stack, n, quorum, ft, warnings) => {
        const r = await plan(["--stack", stack, "--json"]);
        expect(r.code).toBe(0);
        const j = JSON.parse(r.stdout); // exactly one JSON object on stdout
        expect(Object.keys(j)).toEqual(CONTRACT_KEYS);
        expect(j.stack).toBe(stack);
        expect(j.members).toHaveLength(n);
        for (const m of j.members) {
            expect(Object.keys(m)).toEqual(["name", "hypervisor", "address", "clientUrl", "peerUrl"]);
            expect(m.clientUrl).toBe(`https://${m.address}:2379`);
            expect(m.peerUrl).toBe(`https://${m.address}:2380`);
        }
        expect(j.quorum).toBe(quorum);
        expect(j.faultTolerance).toEqual(ft);
        expect(j.endpoints).toEqual(j.members.map((m: { clientUrl: string }) => m.clientUrl));
        expect(j.warnings.map((w: { code: string }) => w.code)).toEqual(warnings);
        for (const w of j.warnings) expect(typeof w.message).toBe("string");
        expect(j.resources[0]).toEqual({ type: "pulumi:pulumi:Stack", name: `etcd-ha-${stack}`, parent: null, dependsOn: [] });
        for (const res of j.resources) expect(Object.keys(res)).toEqual(["type", "name", "parent", "dependsOn"]);
        const names = new Set(j.resources.map((x: { name: string }) => x.name));
        for (const res of j.resources) {
            if (res.parent !== null) expect(names.has(res.parent)).toBe(true);
            for (const d of res.dependsOn) expect(names.has(d)).toBe(true);
        }
        // host key → snippet → VM → firewall → readiness → prepare → binaries → start → health gate →
        // maintenance, whatever the size (members take turns at run time, not in the graph)
        expect(j.depth).toBe(10);
        // The Proxmox tree: a VM per member under its EtcdVm, after an image; its readiness check after it;
        // the member's first etcd step after the check.
        type R = { type: string; name: string; parent: string | null; dependsOn: string[] };
        const res = j.resources as R[];
        const byName = new Map(res.map((x) => [x.name, x]));
        const vms = res.filter((x) => x.type === "proxmoxve:index/vmLegacy:VmLegacy");
        expect(vms).toHaveLength(n);
        for (const vm of vms) {
            const member = vm.name.replace(/-vm$/, "");
            expect(byName.get(vm.parent!)!.type).toBe("etcd-ha:index:EtcdVm");
            expect(vm.dependsOn.filter((d) => byName.get(d)!.type === "proxmoxve:download/file:File")).toHaveLength(1);
            expect(byName.get(`${member}-ready`)!.dependsOn).toContain(vm.name);
            const etcdMember = member.replace(/^([a-z0-9]+)-vms-/, "$1-");
            // Every remote step on the VM pins its generated host key, so it depends on that key too.
            expect(byName.get(`${member}-host-key`)!.type).toBe("tls:index/privateKey:PrivateKey");
            expect(byName.get(`${member}-user-data`)!.dependsOn).toEqual([`${member}-host-key`]);
            expect(byName.get(`${etcdMember}-prepare`)!.dependsOn).toEqual([`${member}-host-key`, `${member}-ready`]);
        }
    });

    it("--config-file with an invalid config: exit 1, every error with its key path, nothing registered", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "plan-"));
        const file = path.join(dir, "Pulumi.broken.yaml");
        fs.writeFileSync(
            file,
            [
                "config:",
                "  etcd-ha:topology: sideways",
                "  etcd-ha:hosts:",
                "    - { name: a, address: 127.42.0.1 }",
                "    - { name: a, address: 127.42.0.300 }",
                "",
            ].join("\n"),
        );
        const j = await plan(["--config-file", file, "--json"]);
        expect(j.code).toBe(1);
        expect(JSON.parse(j.stdout)).toEqual({
            errors: [
                { path: "etcd-ha:topology", message: 'must be one of "external", "stacked" (got "sideways")' },
                { path: "etcd-ha:hosts[1].address", message: 'must be an IPv4 address such as 10.103.0.101 (got "127.42.0.300")' },
            ],
        });
        expect(j.stderr).toMatch(/configuration invalid \(2 problems\); 0 resource\(s\) registered besides the stack/);
        const h = await plan(["--config-file", file]);
        expect(h.code).toBe(1);
        expect(h.stdout.split("\n")[0]).toBe("Invalid stack configuration (2 problems):");
        expect(h.stdout).toContain("  - etcd-ha:hosts[1].address: must be an IPv4 address");
    });

    it("refuses bad usage with exit 2", async () => {
        const r = await plan(["--stak", "dev"]);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(/unknown argument "--stak"/);
        expect(r.stdout).toBe("");
    });
});
