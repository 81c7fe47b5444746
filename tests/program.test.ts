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
import { hasUnknown, runPreview, UNKNOWN } from "./helpers/preview";
import { parse as parseYaml } from "yaml";
import { NO_RENEW_TOKEN } from "../components/pki/etcdPki";
import { PKI_RENEW_TOKEN } from "../components/config/schema";


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
        // Six member steps, a readiness check per VM, the pre-upgrade snapshot, the gate, the teardown step.
        expect(count(T.command)).toBe(6 * n + n + 3);
        expect(count(T.copyToRemote)).toBe(0);
        const pxTree = [count(T.proxmoxHosts), count(T.pveProvider), count(T.linuxBridge), count(T.bridge), count(T.image), count(T.etcdVm), count(T.snippet), count(T.vm)];
        expect(pxTree).toEqual([1, px.providers, px.bridges, px.bridges, px.images, n, px.snippets, n]);
        expect([count(T.fwOptions), count(T.fwRules), count(T.haResource), count(T.haRule), count(T.haGroup)]).toEqual([px.firewalls, px.firewalls, px.haResources, px.haRules, px.haGroups]);
        const proxmoxCount = 1 + px.providers + 2 * px.bridges + px.images + n + n + px.snippets + n + 2 * px.firewalls + px.haResources + px.haRules + px.haGroups + n;
        expect(rs.length).toBe(1 + 1 + 1 + n + (1 + 2 * n + 3) + 1 + 2 * (2 * n + 3) + 1 + 6 * n + 3 + proxmoxCount);

        const m = byName(rs);
        const clusterUrn = m.get(cluster)!.urn;
        expect(m.get(cluster)!.parent).toBe(rs[0].urn);
        expect(m.get(`${cluster}-pki`)!.parent).toBe(clusterUrn);
        expect(m.get(`${cluster}-token`)!.parent).toBe(clusterUrn);
        expect(m.get(`${cluster}-health`)!.parent).toBe(clusterUrn);
        expect(m.get(`${cluster}-upgrade-snapshot`)!.parent).toBe(clusterUrn);
        expect(m.get(`${cluster}-teardown`)!.parent).toBe(clusterUrn);
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
        expect(remote.length).toBe(7 * names.length + 3);
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

/** A member as the stack file places it: name, address, hypervisor, VM id, FQDN. */
type Placed = [string, string, string, number, string];

describe.each([
    [
        "Pulumi.dev.yaml",
        "etcd",
        "external",
        [
            ["etcd1", "10.103.0.101", "pve1", 7101, "etcd1.kloud.lan"],
            ["etcd2", "10.103.0.102", "pve2", 7102, "etcd2.kloud.lan"],
            ["etcd3", "10.103.0.103", "pve3", 7103, "etcd3.kloud.lan"],
        ],
        2,
        { members: 1, hypervisors: 1 },
        [],
    ],
    [
        "examples/Pulumi.six-on-two.yaml",
        "etcd",
        "external",
        [1, 2, 3, 4, 5, 6].map((i) => [`etcd${i}`, `10.103.0.10${i}`, i % 2 === 1 ? "pve1" : "pve2", 7100 + i, `etcd${i}.kloud.lan`]),
        4,
        { members: 2, hypervisors: 0 },
        ["even-members", "hypervisor-quorum"],
    ],
    [
        "examples/Pulumi.stacked-five.yaml",
        "k8s",
        "stacked",
        [1, 2, 3, 4, 5].map((i) => [`cp${i}`, `10.20.0.1${i}`, `pve${((i - 1) % 3) + 1}`, 8010 + i, `cp${i}.k8s.kloud.lan`]),
        3,
        { members: 2, hypervisors: 1 },
        [],
    ],
] as [string, string, string, Placed[], number, object, string[]][])("%s in a first pulumi preview (every resource new)", (file, cluster, topology, placed, quorum, ft, warnings) => {
    let o: Record<string, unknown>;
    const stacked = topology === "stacked";
    const addresses = placed.map((m) => m[1]);
    const endpoints = addresses.map((a) => `https://${a}:2379`);
    beforeAll(async () => {
        o = (await runPreview(stackRun(file, flatConfig({}).config))).stored;
    });

    it("knows every output that follows from config alone; what a resource computes stays unknown", () => {
        const known = ["topology", "members", "clientEndpoints", "etcdServers", "kubeApiserverFlags", "kubeadmEtcdExternal", "metricsUrls", "prometheusScrapeConfig", "quorum", "faultTolerance", "warnings", "vms"];
        if (stacked) known.push("controlPlaneNodes");
        expect(known.filter((k) => o[k] === undefined || hasUnknown(o[k]))).toEqual([]);
        // The gate's report, the CA and the client pairs come from resources that do not exist yet.
        for (const k of ["health", "caCertPem", "apiserverClientCertPem", "apiserverClientKeyPem", "adminClientCertPem", "adminClientKeyPem"]) {
            expect([k, plain(o[k])]).toEqual([k, UNKNOWN]);
        }
        expect(Object.keys(o).sort()).toEqual([...known, "health", "caCertPem", "apiserverClientCertPem", "apiserverClientKeyPem", "adminClientCertPem", "adminClientKeyPem"].sort());
    });

    it("shows the endpoints, members, quorum and layout warnings", () => {
        expect(o.topology).toBe(topology);
        expect(o.clientEndpoints).toEqual(endpoints);
        expect(o.etcdServers).toBe(endpoints.join(","));
        expect(o.metricsUrls).toEqual(addresses.map((a) => `http://${a}:2381`));
        expect(o.members).toEqual(
            placed.map(([name, address, hypervisor]) => ({
                name,
                hypervisor,
                address,
                clientUrl: `https://${address}:2379`,
                peerUrl: `https://${address}:2380`,
                metricsUrl: `http://${address}:2381`,
                ...(stacked ? { localClientUrl: "https://127.0.0.1:2379" } : {}),
            })),
        );
        expect(o.quorum).toBe(quorum);
        expect(o.faultTolerance).toEqual(ft);
        expect((o.warnings as { code: string }[]).map((w) => w.code)).toEqual(warnings);
    });

    it("shows the kube-apiserver flags: its etcd servers (stacked: the node's own member) and kubeadm's client files", () => {
        const lines = String(o.kubeApiserverFlags).trimEnd().split("\n");
        const flags = new Map(lines.map((l) => /^(--[a-z-]+)=(.+)$/.exec(l)!.slice(1, 3) as [string, string]));
        expect(flags.size).toBe(4);
        expect(flags.get("--etcd-servers")!.split(",")).toEqual(stacked ? ["https://127.0.0.1:2379"] : endpoints);
        expect(flags.get("--etcd-cafile")).toBe("/etc/kubernetes/pki/etcd/ca.crt");
        expect(flags.get("--etcd-certfile")).toBe("/etc/kubernetes/pki/apiserver-etcd-client.crt");
        expect(flags.get("--etcd-keyfile")).toBe("/etc/kubernetes/pki/apiserver-etcd-client.key");
    });

    it("shows kubeadm's etcd.external block with every member's endpoint", () => {
        const doc = parseYaml(String(o.kubeadmEtcdExternal));
        expect(doc).toEqual({
            apiVersion: "kubeadm.k8s.io/v1beta4",
            kind: "ClusterConfiguration",
            etcd: {
                external: {
                    endpoints,
                    caFile: "/etc/kubernetes/pki/etcd/ca.crt",
                    certFile: "/etc/kubernetes/pki/apiserver-etcd-client.crt",
                    keyFile: "/etc/kubernetes/pki/apiserver-etcd-client.key",
                },
            },
        });
    });

    it("shows the Prometheus job: one labelled metrics target per member", () => {
        const jobs = parseYaml(String(o.prometheusScrapeConfig)) as { job_name: string; scheme: string; metrics_path: string; static_configs: { targets: string[]; labels: Record<string, string> }[] }[];
        expect(jobs).toHaveLength(1);
        expect([jobs[0].job_name, jobs[0].scheme, jobs[0].metrics_path]).toEqual([`etcd-${cluster}`, "http", "/metrics"]);
        expect(jobs[0].static_configs).toEqual(placed.map(([name, address]) => ({ targets: [`${address}:2381`], labels: { etcd_cluster: cluster, etcd_member: name } })));
    });

    it("shows the VMs (and, stacked, the control-plane nodes) to be created", () => {
        const vms = placed.map(([name, address, hypervisor, vmId, fqdn]) => ({ name, fqdn, address, hypervisor, vmId, role: stacked ? "control-plane" : "etcd", sshUser: "ubuntu" }));
        expect(o.vms).toEqual(vms);
        if (stacked) expect(o.controlPlaneNodes).toEqual(vms);
        else expect(o.controlPlaneNodes).toBeUndefined();
    });
});

describe("etcd.pki.renew: every leaf certificate carries the token as its replacement trigger (options seen through a stack transformation: mocks never receive them)", () => {
    /** What a run registered: the options each resource was given, and the trigger each request carried to the engine. */
    async function runWithRenew(renew: string | undefined) {
        const run = stackRun("Pulumi.dev.yaml", flatConfig({}).config);
        const etcd = JSON.parse(run.config["etcd-ha:etcd"]) as { pki?: Record<string, unknown> };
        if (renew !== undefined) etcd.pki = { ...etcd.pki, renew };
        const opts = new Map<string, pulumi.ResourceOptions>();
        const sent = new Map<string, unknown>();
        const { resources } = await runProgram({
            ...run,
            config: { ...run.config, "etcd-ha:etcd": JSON.stringify(etcd) },
            program: async () => {
                pulumi.runtime.registerStackTransformation((a) => {
                    opts.set(a.name, a.opts);
                    return undefined;
                });
                // The registration request, as the engine receives it.
                type Req = { getName(): string; getReplacementTrigger(): { toJavaScript(): unknown } | undefined };
                const monitor = pulumi.runtime.getMonitor() as unknown as { registerResource(req: Req, cb: unknown): unknown };
                const next = monitor.registerResource.bind(monitor);
                monitor.registerResource = (req, cb) => {
                    const t = req.getReplacementTrigger();
                    if (t !== undefined) sent.set(req.getName(), t.toJavaScript());
                    return next(req, cb);
                };
                // eslint-disable-next-line @typescript-eslint/no-require-imports
                return (require(PROGRAM) as () => Promise<unknown>)();
            },
        });
        return { resources, opts, sent };
    }
    const names = (rs: RecordedResource[], type: string) => rs.filter((r) => r.type === type).map((r) => r.name);

    it("with a token: each of the 9 leaf certificates, and nothing else (not the CA, no key, no request)", async () => {
        const { resources, opts, sent } = await runWithRenew("2026-12-07");
        const leaves = names(resources, T.locallySignedCert);
        expect(leaves).toHaveLength(9);
        expect(leaves).toEqual(expect.arrayContaining(["etcd-pki-etcd1-server", "etcd-pki-etcd3-peer", "etcd-pki-apiserver-etcd-client", "etcd-pki-healthcheck-client", "etcd-pki-admin"]));
        for (const n of leaves) expect([n, opts.get(n)?.replacementTrigger]).toEqual([n, "2026-12-07"]);
        const withTrigger = [...opts].filter(([, o]) => o.replacementTrigger !== undefined).map(([n]) => n);
        expect(withTrigger.sort()).toEqual([...leaves].sort());
        for (const n of ["etcd-pki-ca", "etcd-pki-ca-key", "etcd-pki-etcd1-server-key", "etcd-pki-etcd1-server-csr", "etcd-pki-admin-key"]) {
            expect([n, opts.has(n), opts.get(n)?.replacementTrigger]).toEqual([n, true, undefined]);
        }
        // And the engine receives it with each leaf's registration.
        expect([...sent.keys()].sort()).toEqual([...leaves].sort());
        for (const n of leaves) expect(sent.get(n)).toBe("2026-12-07");
    });

    it("without a token: each leaf carries the sentinel `(none)`, so the first token is a change (the engine never replaces from or to no trigger)", async () => {
        const { resources, opts, sent } = await runWithRenew(undefined);
        const leaves = names(resources, T.locallySignedCert);
        expect(leaves).toHaveLength(9);
        expect(opts.size).toBeGreaterThan(9);
        const withTrigger = [...opts].filter(([, o]) => o.replacementTrigger !== undefined).map(([n]) => n);
        expect(withTrigger.sort()).toEqual([...leaves].sort());
        for (const n of leaves) expect(sent.get(n)).toBe(NO_RENEW_TOKEN);
        // No token can equal the sentinel.
        expect(PKI_RENEW_TOKEN.test(NO_RENEW_TOKEN)).toBe(false);
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
        expect(remote.length).toBe(6 * 3 + 3);
        for (const x of remote) {
            const c = plain(x.inputs.connection) as { host: string; port: number; hostKey?: string };
            expect([x.name, c.port, c.hostKey]).toEqual([x.name, 2222, keys.get(c.host)]);
        }
    });
});

describe("examples/k8s-stack/index.ts under mocks", () => {
    it("installs the client files and runs etcd with every remote step pinned to the node's host key", async () => {
        const nodes = ["cp1", "cp2", "cp3"];
        const hostKeys = Object.fromEntries(nodes.map((n) => [n, testHostKey(n)]));
        const r = await runProgram({
            program: path.join(ROOT, "examples", "k8s-stack", "index.ts"),
            project: "k8s",
            stack: "example",
            config: { "k8s:sshPrivateKey": "[secret]", "k8s:hostKeys": JSON.stringify(hostKeys) },
            secretKeys: ["k8s:sshPrivateKey"],
        });
        const remote = r.resources.filter((x) => x.type === T.command || x.type === T.copyToRemote);
        expect(remote.map((x) => x.name)).toEqual(expect.arrayContaining(nodes.map((n) => `${n}-etcd-client-files`)));
        expect(remote.length).toBe(6 * 3 + 3 + 3);
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
