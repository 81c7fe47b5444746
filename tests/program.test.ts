/**
 * index.ts under the mock engine (the same harness the offline plan uses): the resources each stack
 * registers, their parents and dependencies, the stack outputs, and refusals before any resource.
 */
import * as pulumi from "@pulumi/pulumi";
import { runProgram, RecordedResource } from "../tools/engine/mockHost";
import * as path from "path";
import { flatConfig, hostsBase, testHostKey } from "./helpers/configs";
import { MALFORMED } from "./helpers/malformed";
import { plain, T } from "./helpers/tokens";
import { PROGRAM, ROOT, stackRun } from "./helpers/stacks";


async function runStackFile(file: string) {
    // Every secret key set to the placeholder.
    return runProgram(stackRun(file, flatConfig({}).config));
}

function byName(rs: RecordedResource[]) {
    return new Map(rs.map((r) => [r.name, r]));
}

/** Proxmox resources a stack registers: providers, managed bridges, images, snippets, HA rules and groups. */
interface PxCounts {
    providers: number;
    bridges: number;
    images: number;
    snippets: number;
    haResources: number;
    haRules: number;
    haGroups: number;
    firewalls: number;
}

describe.each([
    // Three nodes of one PVE cluster, managed bridges, snippets, HA (PVE 9): one anti-affinity rule.
    ["Pulumi.dev.yaml", "etcd", ["etcd1", "etcd2", "etcd3"], 2, { members: 1, hypervisors: 1 }, [], { providers: 1, bridges: 3, images: 3, snippets: 3, haResources: 3, haRules: 1, haGroups: 0, firewalls: 3 }],
    // Six on two: three anti-affinity rules of two members each (one per node).
    [
        "examples/Pulumi.six-on-two.yaml",
        "etcd",
        ["etcd1", "etcd2", "etcd3", "etcd4", "etcd5", "etcd6"],
        4,
        { members: 2, hypervisors: 0 },
        ["even-members", "hypervisor-quorum"],
        { providers: 1, bridges: 2, images: 2, snippets: 6, haResources: 6, haRules: 3, haGroups: 0, firewalls: 6 },
    ],
    // Three standalone hosts (a provider each), existing bridges, no HA.
    [
        "examples/Pulumi.stacked-five.yaml",
        "k8s",
        ["cp1", "cp2", "cp3", "cp4", "cp5"],
        3,
        { members: 2, hypervisors: 1 },
        [],
        { providers: 3, bridges: 0, images: 3, snippets: 5, haResources: 0, haRules: 0, haGroups: 0, firewalls: 5 },
    ],
] as [string, string, string[], number, object, string[], PxCounts][])("%s under mocks", (file, cluster, names, quorum, ft, warnings, px) => {
    let result: Awaited<ReturnType<typeof runStackFile>>;
    beforeAll(async () => {
        result = await runStackFile(file);
    });

    it("registers the stack and the cluster tree: PKI, one EtcdMember of six steps per member, token, upgrade snapshot, health gate", () => {
        const rs = result.resources;
        const n = names.length;
        const count = (t: string) => rs.filter((r) => r.type === t).length;
        expect([rs[0].type, rs[0].name]).toEqual([T.stack, expect.stringMatching(/^etcd-ha-/)]);
        expect([count(T.cluster), count(T.pki), count(T.member)]).toEqual([1, 1, n]);
        // CA key + a key per member cert (2 per member) + 3 client certs, and each VM's SSH host key.
        expect(count(T.privateKey)).toBe(1 + 2 * n + 3 + n);
        expect(rs.filter((r) => r.type === T.privateKey && r.name.endsWith("-host-key")).map((r) => r.inputs)).toEqual(names.map(() => ({ algorithm: "ED25519" })));
        expect(count(T.selfSignedCert)).toBe(1);
        expect(count(T.certRequest)).toBe(2 * n + 3);
        expect(count(T.locallySignedCert)).toBe(2 * n + 3);
        expect(count(T.randomString)).toBe(1);
        // Six member steps, a readiness check per VM, the pre-upgrade snapshot, the gate.
        expect(count(T.command)).toBe(6 * n + n + 2);
        expect(count(T.copyToRemote)).toBe(0);
        const pxTree = [count(T.proxmoxHosts), count(T.pveProvider), count(T.linuxBridge), count(T.bridge), count(T.image), count(T.etcdVm), count(T.snippet), count(T.vm)];
        expect(pxTree).toEqual([1, px.providers, px.bridges, px.bridges, px.images, n, px.snippets, n]);
        expect([count(T.fwOptions), count(T.fwRules), count(T.haResource), count(T.haRule), count(T.haGroup)]).toEqual([px.firewalls, px.firewalls, px.haResources, px.haRules, px.haGroups]);
        const proxmoxCount = 1 + px.providers + 2 * px.bridges + px.images + n + n + px.snippets + n + 2 * px.firewalls + px.haResources + px.haRules + px.haGroups + n;
        expect(rs.length).toBe(1 + 1 + 1 + n + (1 + 2 * n + 3) + 1 + 2 * (2 * n + 3) + 1 + 6 * n + 2 + proxmoxCount);

        const m = byName(rs);
        const clusterUrn = m.get(cluster)!.urn;
        expect(m.get(cluster)!.parent).toBe(rs[0].urn);
        expect(m.get(`${cluster}-pki`)!.parent).toBe(clusterUrn);
        expect(m.get(`${cluster}-token`)!.parent).toBe(clusterUrn);
        expect(m.get(`${cluster}-health`)!.parent).toBe(clusterUrn);
        expect(m.get(`${cluster}-upgrade-snapshot`)!.parent).toBe(clusterUrn);
        for (const r of rs.filter((x) => x.type.startsWith("tls:") && !x.name.endsWith("-host-key"))) expect(r.parent).toBe(m.get(`${cluster}-pki`)!.urn);
        for (const r of rs.filter((x) => x.name.endsWith("-host-key"))) expect(r.parent).toBe(m.get(r.name.replace(/-host-key$/, ""))!.urn);
        for (const nm of names) {
            const member = m.get(`${cluster}-${nm}`)!;
            expect(member.parent).toBe(clusterUrn);
            expect(member.urn).toContain(`${T.cluster}$${T.member}`);
            for (const step of ["prepare", "binaries", "certs", "config", "start", "maintenance"]) {
                expect(m.get(`${cluster}-${nm}-${step}`)!.parent).toBe(member.urn);
            }
        }
    });

    it("pins each VM's generated SSH host key on every remote step that reaches the VM", () => {
        const rs = result.resources;
        const remote = rs.filter((r) => r.type === T.command || r.type === T.copyToRemote);
        expect(remote.length).toBe(7 * names.length + 2);
        const byAddress = new Map<string, string>();
        for (const r of remote) {
            const c = plain(r.inputs.connection) as { host: string; hostKey?: string };
            // The mock engine answers each key with a stand-in public key naming the key resource.
            expect(c.hostKey).toMatch(/^ssh-ed25519 AAAA\S+$/);
            const owner = Buffer.from(c.hostKey!.split(" ")[1].slice(4), "base64").toString();
            expect(owner).toMatch(/^plan-placeholder:.*-vms-.*-host-key$/);
            if (byAddress.has(c.host)) expect(c.hostKey).toBe(byAddress.get(c.host));
            byAddress.set(c.host, c.hostKey!);
        }
        // One key per VM, each its own.
        expect(new Set(byAddress.values()).size).toBe(names.length);
    });

    it("gives every resource a unique logical name (the plan's names are unambiguous)", () => {
        const ns = result.resources.map((r) => r.name);
        expect(new Set(ns).size).toBe(ns.length);
    });

    it("exports members, endpoints, quorum, fault tolerance and warnings", () => {
        const o = result.outputs as Record<string, any>;
        expect(o.members.map((x: { name: string }) => x.name)).toEqual(names);
        expect(o.clientEndpoints).toEqual(o.members.map((x: { address: string }) => `https://${x.address}:2379`));
        expect(o.etcdServers).toBe(o.clientEndpoints.join(","));
        expect(o.quorum).toBe(quorum);
        expect(o.faultTolerance).toEqual(ft);
        expect(o.warnings.map((w: { code: string }) => w.code)).toEqual(warnings);
    });

    it("exports the VMs (and, stacked, the control-plane nodes) with the host fields the etcd layer used", () => {
        const o = result.outputs as Record<string, any>;
        const stacked = file.includes("stacked");
        expect(o.vms.map((v: { name: string }) => v.name)).toEqual(names);
        for (const [i, v] of (o.vms as Record<string, unknown>[]).entries()) {
            expect(Object.keys(v).sort()).toEqual(["address", "fqdn", "hypervisor", "name", "role", "sshUser", "vmId"]);
            expect(v.address).toBe(o.members[i].address);
            expect(v.hypervisor).toBe(o.members[i].hypervisor);
            expect(v.role).toBe(stacked ? "control-plane" : "etcd");
        }
        if (stacked) expect(o.controlPlaneNodes).toEqual(o.vms);
        else expect(o.controlPlaneNodes).toBeUndefined();
    });

    it("registers components without their arguments (no SSH key in component state)", () => {
        for (const r of result.resources.filter((x) => !x.custom)) {
            expect(JSON.stringify(r.inputs)).not.toContain("[secret]");
            expect(JSON.stringify(r.inputs)).not.toContain("privateKey");
        }
    });
});

describe("hosts mode under mocks", () => {
    it("builds the cluster on the listed machines with no Proxmox resource", async () => {
        const { config, secretKeys } = flatConfig(hostsBase(), new Set(["sshPrivateKey"]));
        const r = await runProgram({ program: PROGRAM, project: "etcd-ha", stack: "lab", config, secretKeys });
        expect(r.resources.filter((x) => x.type.startsWith("proxmoxve:") || x.type.includes(":proxmoxve"))).toEqual([]);
        expect((r.outputs as { vms?: unknown }).vms).toBeUndefined();
        expect(r.resources.filter((x) => x.type === T.member).map((x) => x.name)).toEqual(["lab-m1", "lab-m2", "lab-m3"]);
        expect(r.resources.filter((x) => x.type === T.command && x.name.endsWith("-start")).map((x) => x.name)).toEqual(["lab-m1-start", "lab-m2-start", "lab-m3-start"]);
        expect((r.outputs as { faultTolerance: unknown }).faultTolerance).toEqual({ members: 1, hypervisors: null });
        // Every remote step pins the host key given for its host (hosts[].hostKey, comment dropped).
        const keys = new Map((hostsBase().hosts as { address: string; hostKey: string }[]).map((h) => [h.address, h.hostKey.split(" ").slice(0, 2).join(" ")]));
        const remote = r.resources.filter((x) => x.type === T.command || x.type === T.copyToRemote);
        expect(remote.length).toBe(6 * 3 + 2);
        for (const x of remote) {
            const c = plain(x.inputs.connection) as { host: string; port: number; hostKey?: string };
            expect([x.name, c.port, c.hostKey]).toEqual([x.name, 2222, keys.get(c.host)]);
        }
    });
});

describe("examples/k8s-stack.ts under mocks", () => {
    it("installs the client files and runs etcd with every remote step pinned to the node's host key", async () => {
        const nodes = ["cp1", "cp2", "cp3"];
        const hostKeys = Object.fromEntries(nodes.map((n) => [n, testHostKey(n)]));
        const r = await runProgram({
            program: path.join(ROOT, "examples", "k8s-stack.ts"),
            project: "k8s",
            stack: "example",
            config: { "k8s:sshPrivateKey": "[secret]", "k8s:hostKeys": JSON.stringify(hostKeys) },
            secretKeys: ["k8s:sshPrivateKey"],
        });
        const remote = r.resources.filter((x) => x.type === T.command || x.type === T.copyToRemote);
        expect(remote.map((x) => x.name)).toEqual(expect.arrayContaining(nodes.map((n) => `${n}-etcd-client-files`)));
        expect(remote.length).toBe(6 * 3 + 2 + 3);
        const keyOf = new Map(nodes.map((n, i) => [`10.20.0.${11 + i}`, hostKeys[n].split(" ").slice(0, 2).join(" ")]));
        for (const x of remote) {
            const c = plain(x.inputs.connection) as { host: string; hostKey?: string };
            expect([x.name, c.hostKey]).toEqual([x.name, keyOf.get(c.host)]);
        }
    });
});

describe("malformed configs register no resource", () => {
    it.each(MALFORMED.map((m) => [m.label, m] as const))("%s", async (_l, m) => {
        const { config, secretKeys } = flatConfig(m.raw, m.secrets);
        let err: (Error & { issues?: { path: string; message: string }[] }) | undefined;
        const record: RecordedResource[] = [];
        const created: string[] = [];
        const newResource = async (args: pulumi.runtime.MockResourceArgs) => {
            created.push(args.type);
            return { id: `${args.name}-id`, state: args.inputs };
        };
        try {
            await runProgram({ program: PROGRAM, project: "etcd-ha", stack: "bad", config, secretKeys, newResource, record });
        } catch (e) {
            err = e as typeof err;
        }
        expect(err?.name).toBe("ConfigValidationError");
        expect(err?.issues).toContainEqual({ path: m.path, message: m.message });
        // Only the stack itself registered (the engine creates it before the program runs).
        expect(record.map((r) => r.type)).toEqual([T.stack]);
        expect(created).toEqual([T.stack]);
    });
});
