/**
 * `npm run preview -- --stack NAME | --config-file FILE [--project DIR] [--keep DIR]`: the real `pulumi preview`
 * of a stack, offline, as a pull request's reviewer needs it: the real engine and the real proxmoxve, tls,
 * random and command plugins check every input, and the stack outputs that follow from config are shown.
 * `--project` previews another project's program (default this one), e.g. examples/k8s-stack, which
 * imports EtcdCluster as a consumer does.
 *
 * Offline: the stack file is copied into a scratch workspace (a file backend and a passphrase of its own);
 * its `secure:` values (encrypted for someone else's secrets provider) are dropped and every secret key gets
 * a placeholder (an API token of zeros, throwaway SSH keys); each Proxmox API endpoint is pointed at
 * 127.0.0.1 on a port where nothing listens. As root (CI), the preview runs in a network namespace of its
 * own with only loopback, so nothing can leave the machine whatever the stack says. The stack file itself
 * is never changed.
 *
 * Exits non-zero on any error the engine or a provider reports (a Proxmox input our validation let through
 * but the provider refuses is a bug in that validation).
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import YAML from "yaml";
import { SECRET_KEYS, SecretKey } from "../components/config/schema";
import { resolveStackFile, PROJECT_ROOT } from "./planLib";
import { engine, pulumiEnv, pulumiOk, pulumiRun, RunResult, stackInit } from "./lab/pulumi";

/** Where nothing listens: the Proxmox API endpoints of a previewed stack point here. */
export const DEAD_ENDPOINT = "https://127.0.0.1:9/";
export const PLACEHOLDER_API_TOKEN = "preview@pve!offline=00000000-0000-0000-0000-000000000000";

type Doc = { config?: Record<string, unknown>; [k: string]: unknown };

/**
 * The stack file as the offline preview runs it (pure): no secrets-provider fields, no `secure:` values, every
 * Proxmox endpoint at DEAD_ENDPOINT. Returns the document and what was changed, one note each.
 */
export function offlineStack(doc: Doc): { doc: Doc; notes: string[] } {
    const notes: string[] = [];
    const out: Doc = {};
    for (const [k, v] of Object.entries(doc)) if (!["encryptionsalt", "secretsprovider", "encryptedkey"].includes(k)) out[k] = v;
    const config: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(doc.config ?? {})) {
        if (typeof v === "object" && v !== null && "secure" in v) {
            notes.push(`${k}: the stack's secret is not used (a placeholder is)`);
            continue;
        }
        config[k] = v;
    }
    const px = config["etcd-ha:proxmox"];
    if (typeof px === "object" && px !== null && "endpoint" in px) {
        config["etcd-ha:proxmox"] = { ...px, endpoint: DEAD_ENDPOINT };
        notes.push(`etcd-ha:proxmox.endpoint → ${DEAD_ENDPOINT} (nothing listens there)`);
    }
    const hv = config["etcd-ha:hypervisors"];
    if (Array.isArray(hv)) {
        config["etcd-ha:hypervisors"] = hv.map((h: unknown, i) => {
            if (typeof h === "object" && h !== null && "endpoint" in h) {
                notes.push(`etcd-ha:hypervisors[${i}].endpoint → ${DEAD_ENDPOINT}`);
                return { ...h, endpoint: DEAD_ENDPOINT };
            }
            return h;
        });
    }
    out.config = config;
    return { doc: out, notes };
}

/**
 * The secret keys a stack needs and the placeholder for each (SSH keys made in `dir`): this project's secret
 * keys; another project (an example consumer) gets `<project>:sshPrivateKey`.
 */
function placeholders(doc: Doc, dir: string, project: string): Record<string, string> {
    const key = (name: string) => {
        const f = path.join(dir, name);
        if (!fs.existsSync(f)) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "etcd-ha-preview-placeholder", "-f", f]);
        return fs.readFileSync(f, "utf8");
    };
    if (project !== "etcd-ha") return { [`${project}:sshPrivateKey`]: key("member_ed25519") };
    const px = doc.config?.["etcd-ha:proxmox"] as { ssh?: { agent?: boolean } } | undefined;
    const values: Partial<Record<SecretKey, string>> = {
        proxmoxApiToken: PLACEHOLDER_API_TOKEN,
        proxmoxSshPrivateKey: key("hypervisor_ed25519"),
        sshPrivateKey: key("member_ed25519"),
    };
    // Off-host copies to S3 need the store's keys (placeholders: nothing is uploaded in a preview).
    const snapshots = doc.config?.["etcd-ha:snapshots"] as { s3?: unknown } | undefined;
    if (snapshots?.s3 !== undefined) {
        values.s3AccessKeyId = "preview-placeholder-access-key";
        values.s3SecretAccessKey = "preview-placeholder-secret-key";
    }
    const out: Record<string, string> = {};
    for (const k of Object.keys(SECRET_KEYS) as SecretKey[]) {
        // Keys with no placeholder (an adopted CA, a store the stack has not) stay unset.
        if (values[k] === undefined) continue;
        if (k === "proxmoxSshPrivateKey" && px?.ssh?.agent) continue;
        out[`etcd-ha:${k}`] = values[k]!;
    }
    return out;
}

/** Whether this process may make a network namespace (root with unshare). */
function canIsolate(): boolean {
    return process.getuid?.() === 0 && spawnSync("unshare", ["--net", "true"]).status === 0;
}

export interface PreviewResult {
    ok: boolean;
    run: RunResult;
    notes: string[];
    /** The preview's stack outputs (a value unknown until `up` is UNKNOWN). */
    outputs: Record<string, unknown>;
    isolated: boolean;
}

/** The offline preview of one stack file (see the file comment). `dir` is the scratch workspace. */
export async function preview(file: string, opts: { dir?: string; print?: (l: string) => void; project?: string } = {}): Promise<PreviewResult> {
    const projectDir = opts.project ?? PROJECT_ROOT;
    const project = (YAML.parse(fs.readFileSync(path.join(projectDir, "Pulumi.yaml"), "utf8")) as { name: string }).name;
    const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-preview-"));
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stack = path.basename(file).replace(/^Pulumi\.(.+)\.yaml$/, "$1");
    const { doc, notes } = offlineStack((YAML.parse(fs.readFileSync(file, "utf8")) ?? {}) as Doc);
    const configFile = path.join(dir, `Pulumi.${stack}.yaml`);
    fs.writeFileSync(configFile, YAML.stringify(doc, { lineWidth: 0 }));
    const env = pulumiEnv(dir);
    const stackArgs = ["--stack", stack, "--config-file", configFile];
    stackInit(dir, stack, env, project);
    for (const [k, v] of Object.entries(placeholders(doc, dir, project))) {
        pulumiOk(["config", "set", "--secret", k, ...stackArgs], env, { input: v, cwd: projectDir });
        notes.push(`${k}: placeholder`);
    }
    const isolated = canIsolate();
    const eventLog = path.join(dir, "events.jsonl");
    const args = ["preview", "--diff", ...stackArgs];
    let run: RunResult;
    if (isolated) {
        // `unshare --net` runs pulumi in a namespace whose only interface is its own loopback.
        const pulumiBin = path.join(engine().bin, "pulumi");
        const wrapper = path.join(dir, "pulumi-netns");
        fs.writeFileSync(wrapper, `#!/bin/sh\nexec unshare --net sh -c 'ip link set lo up && exec "$0" "$@"' ${JSON.stringify(pulumiBin)} "$@"\n`, { mode: 0o755 });
        run = await pulumiRun(args, env, { print: opts.print, eventLog, timeoutMs: 10 * 60_000, bin: wrapper, cwd: projectDir });
    } else {
        run = await pulumiRun(args, env, { print: opts.print, eventLog, timeoutMs: 10 * 60_000, cwd: projectDir });
    }
    const outputs = run.stackOutputs ?? {};
    return { ok: run.status === 0 && run.errors.length === 0, run, notes, outputs, isolated };
}

async function main(argv: string[]): Promise<void> {
    const at = (n: string) => (argv.includes(n) ? argv[argv.indexOf(n) + 1] : undefined);
    const stack = at("--stack");
    const configFile = at("--config-file");
    if ((stack === undefined) === (configFile === undefined)) {
        console.error("usage: npm run preview -- --stack NAME | --config-file FILE [--project DIR] [--keep DIR]");
        process.exit(2);
    }
    const file = configFile !== undefined ? path.resolve(configFile) : resolveStackFile(stack!);
    const keep = at("--keep");
    const dir = keep !== undefined ? path.resolve(keep) : fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-preview-"));
    try {
        const project = at("--project");
        const r = await preview(file, { dir, ...(project !== undefined ? { project: path.resolve(project) } : {}) });
        for (const n of r.notes) console.log(`preview: ${n}`);
        console.log(`preview: ${path.relative(PROJECT_ROOT, file) || file}: ${r.ok ? "ok" : "FAILED"} in ${(r.run.ms / 1000).toFixed(1)}s${r.isolated ? " (network namespace with loopback only)" : ""}`);
        if (!r.ok) {
            for (const e of r.run.errors) console.error(`preview: error: ${e}`);
            // Not process.exit: the scratch dir below goes first.
            process.exitCode = 1;
        }
    } finally {
        if (keep === undefined) fs.rmSync(dir, { recursive: true, force: true });
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).catch((e: unknown) => {
        console.error(`preview: ${e instanceof Error ? e.message : String(e)}`);
        process.exit(1);
    });
}
