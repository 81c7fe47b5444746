/**
 * The pull-request preview for real (`npm run preview`): the real `pulumi preview` of the three Proxmox
 * stacks and of the consumer example (examples/k8s-stack, which imports EtcdCluster), offline — placeholder
 * secrets, the Proxmox API at an address where nothing listens, a network namespace with only loopback. The
 * real proxmoxve, tls, random and command plugins check every input; the outputs that follow from config are
 * known in the preview itself; an error fails it.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import YAML from "yaml";
import { DEAD_ENDPOINT, offlineStack, preview, PreviewResult } from "../tools/preview";
import { UNKNOWN } from "../tools/lab/pulumi";

const ROOT = path.resolve(__dirname, "..");
const figures: string[] = [];
afterAll(() => console.log(["preview figures:", ...figures].join("\n")));

/** A preview in a scratch workspace of its own (removed afterwards), its lines kept for a failure's message. */
async function run(file: string, project?: string): Promise<PreviewResult> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-preview-test-"));
    try {
        const r = await preview(path.join(ROOT, file), { dir, print: () => undefined, ...(project ? { project: path.join(ROOT, project) } : {}) });
        figures.push(`  ${file}: ${r.ok ? "ok" : "FAILED"}, ${r.run.changes.create ?? 0} to create, ${(r.run.ms / 1000).toFixed(1)}s${r.isolated ? ", network namespace" : ""}`);
        if (!r.ok) throw new Error(`preview of ${file} failed:\n${r.run.errors.join("\n")}\n${r.run.lines.slice(-30).join("\n")}`);
        return r;
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

const known = (v: unknown): boolean => v !== UNKNOWN && !JSON.stringify(v ?? null).includes(UNKNOWN);

describe("offlineStack (pure)", () => {
    it("drops the secrets provider's fields and secure values, points every Proxmox endpoint where nothing listens, keeps the rest", () => {
        const { doc, notes } = offlineStack({
            encryptionsalt: "v1:x",
            secretsprovider: "awskms://k",
            config: {
                "etcd-ha:proxmox": { endpoint: "https://pve1:8006/", insecure: true },
                "etcd-ha:hypervisors": [{ name: "pve1", endpoint: "https://pve1:8006/" }, { name: "pve2" }],
                "etcd-ha:proxmoxApiToken": { secure: "v1:abc" },
                "etcd-ha:clusterName": "etcd",
            },
        });
        expect(doc).toEqual({
            config: {
                "etcd-ha:proxmox": { endpoint: DEAD_ENDPOINT, insecure: true },
                "etcd-ha:hypervisors": [{ name: "pve1", endpoint: DEAD_ENDPOINT }, { name: "pve2" }],
                "etcd-ha:clusterName": "etcd",
            },
        });
        expect(notes).toHaveLength(3);
    });
});

describe("the real pulumi preview, offline", () => {
    test.each([
        ["Pulumi.dev.yaml", 3],
        ["examples/Pulumi.six-on-two.yaml", 6],
        ["examples/Pulumi.stacked-five.yaml", 5],
    ])("%s: every input passes the real providers; endpoints, flags and scrape targets are known in the preview", async (file, members) => {
        const r = await run(file);
        expect(r.run.status).toBe(0);
        expect(r.run.errors).toEqual([]);
        if (process.getuid?.() === 0) expect(r.isolated).toBe(true);
        expect(r.run.changes.create).toBeGreaterThan(80);
        // Every resource is one the preview would create; none is read or refreshed.
        expect(new Set(r.run.steps.map((s) => s.engineOp))).toEqual(new Set(["create"]));
        const o = r.outputs;
        const cfg = (YAML.parse(fs.readFileSync(path.join(ROOT, file), "utf8")) as { config: Record<string, unknown> }).config;
        for (const k of ["clientEndpoints", "etcdServers", "kubeApiserverFlags", "kubeadmEtcdExternal", "metricsUrls", "members", "prometheusScrapeConfig", "quorum", "faultTolerance", "vms"]) {
            expect([k, known(o[k])]).toEqual([k, true]);
        }
        // Not known before `up`: what the health gate reports.
        expect(known(o.health)).toBe(false);
        const endpoints = o.clientEndpoints as string[];
        expect(endpoints).toHaveLength(members);
        for (const e of endpoints) expect(e).toMatch(/^https:\/\/\d+\.\d+\.\d+\.\d+:2379$/);
        expect(o.etcdServers).toBe(endpoints.join(","));
        const scrape = YAML.parse(String(o.prometheusScrapeConfig)) as { static_configs: { targets: string[] }[] }[];
        expect(scrape[0].static_configs.flatMap((c) => c.targets)).toEqual(endpoints.map((e) => e.replace(/^https:\/\//, "").replace(/:2379$/, ":2381")));
        expect(String(o.kubeApiserverFlags)).toMatch(/^--etcd-servers=https:\/\//m);
        // The stack file itself is untouched (secrets and endpoints are replaced in a copy only).
        expect(JSON.stringify(cfg)).not.toContain(DEAD_ENDPOINT);
    }, 180_000);

    test("examples/k8s-stack (a consumer that imports EtcdCluster) previews on the real engine", async () => {
        const r = await run("examples/k8s-stack/Pulumi.example.yaml", "examples/k8s-stack");
        expect(r.run.steps.some((s) => s.type === "etcd-ha:index:EtcdCluster" && s.name === "k8s-etcd")).toBe(true);
        expect(r.run.steps.filter((s) => s.type === "command:remote:Command" && /^cp\d-etcd-client-files$/.test(s.name))).toHaveLength(3);
        expect(r.outputs.etcdServers).toBe("https://10.20.0.11:2379,https://10.20.0.12:2379,https://10.20.0.13:2379");
    }, 180_000);

    test("a stack with off-host copies to S3 (snapshots.s3) previews on the real engine with placeholder store keys, a maintenance step on every member", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-preview-s3-"));
        try {
            const doc = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> };
            doc.config["etcd-ha:snapshots"] = { s3: { endpoint: "https://s3.kloud.lan:9000", bucket: "etcd-backups" } };
            const file = path.join(dir, "Pulumi.s3.yaml");
            fs.writeFileSync(file, YAML.stringify(doc));
            const r = await preview(file, { dir: path.join(dir, "work"), print: () => undefined });
            if (!r.ok) throw new Error(`preview failed:\n${r.run.errors.join("\n")}\n${r.run.lines.slice(-30).join("\n")}`);
            expect(r.notes).toEqual(expect.arrayContaining(["etcd-ha:s3AccessKeyId: placeholder", "etcd-ha:s3SecretAccessKey: placeholder"]));
            const maintenance = r.run.steps.filter((x) => x.name.endsWith("-maintenance"));
            expect(maintenance.map((x) => x.op)).toEqual(["create", "create", "create"]);
            figures.push(`  dev stack with snapshots.s3: ok, ${r.run.changes.create ?? 0} to create, ${(r.run.ms / 1000).toFixed(1)}s`);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }, 180_000);

    test("a stack the program refuses fails the preview with the program's message (exit non-zero)", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-preview-bad-"));
        try {
            const doc = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, unknown> };
            doc.config["etcd-ha:clusterName"] = "Not_A_Label";
            const file = path.join(dir, "Pulumi.bad.yaml");
            fs.writeFileSync(file, YAML.stringify(doc));
            // Its own temporary dir, to see that the failed preview removes its scratch workspace too.
            const tmp = path.join(dir, "tmp");
            fs.mkdirSync(tmp);
            const r = spawnSync(path.join(ROOT, "node_modules", ".bin", "ts-node"), ["--transpile-only", path.join(ROOT, "tools", "preview.ts"), "--config-file", file], {
                cwd: ROOT,
                encoding: "utf8",
                timeout: 180_000,
                env: { ...process.env, TMPDIR: tmp },
            });
            expect(r.status).toBe(1);
            expect(r.stdout + r.stderr).toContain("etcd-ha:clusterName");
            expect(r.stdout).toMatch(/Pulumi\.bad\.yaml: FAILED/);
            expect(fs.readdirSync(tmp).filter((f) => f.startsWith("etcd-ha-preview-"))).toEqual([]);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }, 180_000);
});
