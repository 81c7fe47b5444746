/**
 * The real Pulumi engine for the lab and the offline preview: finds (or builds, tools/pulumi-build.sh) the
 * CLI, gives each caller an environment of its own (a file backend and a passphrase secrets provider in a
 * folder of the caller's), runs `pulumi` commands with their progress on the terminal as it happens, and
 * reads the engine's event log while the command runs, so every step is known with its wall-clock times.
 */
import { spawn, spawnSync } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { PROJECT_ROOT } from "./hosts";

/** Where the engine comes from: `bin` holds `pulumi` (and its language host), `home` is the Pulumi home. */
export interface Engine {
    bin: string;
    home: string;
    /** Built by tools/pulumi-build.sh (plugins installed in `home`, nothing downloaded), or the user's own CLI. */
    built: boolean;
}

let cached: Engine | undefined;

/**
 * The engine: the user's `pulumi` on PATH when there is one (ETCD_HA_PULUMI=build builds anyway), else the
 * CLI and plugins built by tools/pulumi-build.sh (cold: about 15 min; then cached outside the repository).
 */
export function engine(): Engine {
    if (cached) return cached;
    const r = spawnSync("bash", [path.join(PROJECT_ROOT, "tools", "pulumi-build.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 3_000_000 });
    const fields = Object.fromEntries((r.stdout ?? "").trim().split("\n").map((l) => [l.slice(0, l.indexOf(" ")), l.slice(l.indexOf(" ") + 1)]));
    if (r.status !== 0 || !fields.bin || !fields.home) {
        throw new Error(`the Pulumi engine is not available (exit ${r.status ?? r.signal}): run \`bash tools/pulumi-build.sh\` to see why`);
    }
    cached = { bin: fields.bin, home: fields.home, built: fs.existsSync(path.join(fields.bin, "..", ".done")) };
    return cached;
}

/**
 * The environment every `pulumi` command of one workspace runs with: the engine's home, a file backend and
 * the passphrase of `dir` (made on first use, 0600), no update check, the program transpiled without a type
 * check (`tsc --noEmit` checks types in CI), and with a built engine no plugin download.
 */
export function pulumiEnv(dir: string): Record<string, string> {
    const e = engine();
    const passphrase = path.join(dir, "passphrase");
    fs.mkdirSync(path.join(dir, "backend"), { recursive: true, mode: 0o700 });
    if (!fs.existsSync(passphrase)) fs.writeFileSync(passphrase, randomBytes(24).toString("base64url") + "\n", { mode: 0o600 });
    return {
        PULUMI_HOME: e.home,
        PULUMI_BACKEND_URL: `file://${path.join(dir, "backend")}`,
        PULUMI_CONFIG_PASSPHRASE_FILE: passphrase,
        PULUMI_SKIP_UPDATE_CHECK: "true",
        PULUMI_NODEJS_TRANSPILE_ONLY: "true",
        ...(e.built ? { PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true" } : {}),
        PATH: `${e.bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    };
}

/** The child environment: the caller's, without anything of another Pulumi setup, plus `env`. */
function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^PULUMI_/.test(k) || k === "PULUMI_ACCESS_TOKEN"));
    return { ...base, ...env, SSH_AUTH_SOCK: "" };
}

/** `pulumi ARGS` to completion, output captured (for short commands: stack init, config, export). */
export function pulumiSync(args: string[], env: Record<string, string>, opts: { input?: string; cwd?: string; timeoutMs?: number } = {}) {
    const r = spawnSync(path.join(engine().bin, "pulumi"), args, {
        cwd: opts.cwd ?? PROJECT_ROOT,
        env: childEnv(env),
        input: opts.input,
        encoding: "utf8",
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 256 * 1024 * 1024,
    });
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "", error: r.error };
}

/** `pulumi ARGS`, which must succeed; returns stdout. */
export function pulumiOk(args: string[], env: Record<string, string>, opts: { input?: string; cwd?: string; timeoutMs?: number } = {}): string {
    const r = pulumiSync(args, env, opts);
    if (r.status !== 0) throw new Error(`pulumi ${args.join(" ")} failed (exit ${r.status ?? r.error?.message}):\n${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
}

/** Whether STACK of PROJECT exists in the file backend of `env` (pulumiEnv). */
export function stackExists(env: Record<string, string>, stack: string, project = "etcd-ha"): boolean {
    const backend = (env.PULUMI_BACKEND_URL ?? "").replace(/^file:\/\//, "");
    return fs.existsSync(path.join(backend, ".pulumi", "stacks", project, `${stack}.json`));
}

/**
 * `pulumi stack init STACK` (passphrase secrets) in the backend of `env`, unless the stack exists. `stack init`
 * has no `--config-file` and writes `Pulumi.<stack>.yaml` beside the project file, so it runs in a scratch
 * folder of `dir` with a project file of the same name: nothing is written into the repository. The stack's
 * config file (passed to every later command with `--config-file`) gets its own salt from `config set`.
 */
export function stackInit(dir: string, stack: string, env: Record<string, string>, project = "etcd-ha"): void {
    if (stackExists(env, stack, project)) return;
    const scratch = fs.mkdtempSync(path.join(dir, ".init-"));
    try {
        fs.writeFileSync(path.join(scratch, "Pulumi.yaml"), `name: ${project}\nruntime: nodejs\n`);
        pulumiOk(["stack", "init", stack, "--secrets-provider", "passphrase", "--no-select"], env, { cwd: scratch });
    } finally {
        fs.rmSync(scratch, { recursive: true, force: true });
    }
}

/** The engine's step kinds as the lab reports them. */
export type StepOp = "create" | "same" | "update" | "replace" | "delete" | "read" | "refresh" | "component";

/** What happened to one resource in a run, from the engine's events, with wall-clock times. */
export interface StepRecord {
    type: string;
    name: string;
    urn: string;
    op: StepOp;
    /** The engine's own op (create-replacement, delete-replaced, …). */
    engineOp: string;
    /**
     * ms since the command started: the step began (resourcePreEvent) and ended (resOutputsEvent; for a step that
     * failed or never ended, when the command ended).
     */
    startMs: number;
    endMs: number;
    ended: boolean;
    /** For updates and replacements: the inputs that differed. */
    changed?: string[];
    failed?: boolean;
}

/** One run of `pulumi up|destroy|preview`. */
export interface RunResult {
    status: number | null;
    steps: StepRecord[];
    /** The summary event's resource changes (`create`, `same`, `update`, …). */
    changes: Record<string, number>;
    /**
     * The stack's outputs as the engine reported them (in a preview, values unknown until `up` are the engine's
     * unknown sentinel, UNKNOWN).
     */
    stackOutputs?: Record<string, unknown>;
    /** Every line the run printed (the CLI's progress and the command output lines). */
    lines: string[];
    /** The engine's error diagnostics (`<resource>: <message>` for a resource's). */
    errors: string[];
    ms: number;
}

interface EngineEvent {
    resourcePreEvent?: { metadata: { op: string; urn: string; type: string; provider?: string; diffs?: string[] }; planning?: boolean };
    resOutputsEvent?: { metadata: { op: string; urn: string; type: string; new?: { outputs?: Record<string, unknown> } }; planning?: boolean };
    resOpFailedEvent?: { metadata: { op: string; urn: string; type: string } };
    diagnosticEvent?: { urn?: string; message: string; severity: string; ephemeral?: boolean };
    summaryEvent?: { resourceChanges?: Record<string, number> };
}

const OPS: Record<string, StepOp> = {
    create: "create",
    same: "same",
    update: "update",
    replace: "replace",
    "create-replacement": "replace",
    delete: "delete",
    "delete-replaced": "delete",
    "discard-replaced": "delete",
    read: "read",
    "read-replacement": "read",
    refresh: "refresh",
};

/** How the engine writes a value unknown until `up` in its events. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** The resource name at the end of a URN (`urn:pulumi:stack::project::type$type::name`). */
export const urnName = (urn: string) => urn.slice(urn.lastIndexOf("::") + 2);

/** Custom resources have a provider (components and the stack have none); providers themselves are not steps. */
const isCustom = (m: { type: string; provider?: string }) => !!m.provider && !m.type.startsWith("pulumi:providers:");

/**
 * Runs `pulumi ARGS` (up, destroy, preview) with `--event-log`, printing the CLI's progress and every command's
 * output lines (`<resource> | <line>`) through `print` as they come, and returns every step with its times.
 * Bounded by `timeoutMs` (the command is interrupted, then killed).
 */
export async function pulumiRun(
    args: string[],
    env: Record<string, string>,
    opts: { print?: (line: string) => void; cwd?: string; timeoutMs?: number; eventLog: string; bin?: string },
): Promise<RunResult> {
    const print = opts.print ?? ((l: string) => console.log(l));
    const lines: string[] = [];
    const emit = (l: string) => {
        lines.push(l);
        print(l);
    };
    fs.rmSync(opts.eventLog, { force: true });
    const t0 = Date.now();
    const steps = new Map<string, StepRecord>();
    const order: StepRecord[] = [];
    const errors: string[] = [];
    let changes: Record<string, number> = {};
    let stackOutputs: Record<string, unknown> | undefined;
    let offset = 0;
    let partial = "";
    const readEvents = () => {
        let fd: number;
        try {
            fd = fs.openSync(opts.eventLog, "r");
        } catch {
            return;
        }
        try {
            const buf = Buffer.alloc(1 << 20);
            for (;;) {
                const n = fs.readSync(fd, buf, 0, buf.length, offset);
                if (n <= 0) break;
                offset += n;
                partial += buf.subarray(0, n).toString("utf8");
            }
        } finally {
            fs.closeSync(fd);
        }
        const all = partial.split("\n");
        partial = all.pop() ?? "";
        const now = Date.now() - t0;
        for (const line of all) {
            if (!line.trim()) continue;
            const ev = JSON.parse(line) as EngineEvent;
            if (ev.resourcePreEvent) {
                const m = ev.resourcePreEvent.metadata;
                const op = OPS[m.op] ?? (m.op as StepOp);
                const rec: StepRecord = {
                    type: m.type,
                    name: urnName(m.urn),
                    urn: m.urn,
                    op: isCustom(m) ? op : "component",
                    engineOp: m.op,
                    startMs: now,
                    endMs: now,
                    ended: false,
                    ...(m.diffs && m.diffs.length > 0 ? { changed: m.diffs } : {}),
                };
                // A logical `replace` step between the replacement's create and the old half's delete adds nothing.
                if (m.op === "replace") continue;
                steps.set(`${m.urn}#${m.op}`, rec);
                order.push(rec);
            } else if (ev.resOutputsEvent) {
                const m = ev.resOutputsEvent.metadata;
                const rec = steps.get(`${m.urn}#${m.op}`);
                if (rec) {
                    rec.endMs = now;
                    rec.ended = true;
                }
                if (m.type === "pulumi:pulumi:Stack" && m.new?.outputs) stackOutputs = m.new.outputs;
            } else if (ev.resOpFailedEvent) {
                const rec = steps.get(`${ev.resOpFailedEvent.metadata.urn}#${ev.resOpFailedEvent.metadata.op}`);
                if (rec) rec.failed = true;
            } else if (ev.diagnosticEvent) {
                const d = ev.diagnosticEvent;
                const msg = d.message.replace(/\u001b\[[0-9;]*m|<\{%[^%]*%\}>/g, "").replace(/\n$/, "");
                if (d.severity === "error") errors.push(d.urn ? `${urnName(d.urn)}: ${msg}` : msg);
                if (d.ephemeral && d.urn && d.severity === "info") for (const l of msg.split("\n")) emit(`${urnName(d.urn)} | ${l}`);
            } else if (ev.summaryEvent) {
                changes = ev.summaryEvent.resourceChanges ?? {};
            }
        }
    };
    const child = spawn(opts.bin ?? path.join(engine().bin, "pulumi"), [...args, "--event-log", opts.eventLog, "--non-interactive", "--color", "never"], {
        cwd: opts.cwd ?? PROJECT_ROOT,
        // `--event-log` exists only with PULUMI_DEBUG_COMMANDS (the Automation API sets it the same way).
        env: childEnv({ ...env, PULUMI_DEBUG_COMMANDS: "true" }),
        stdio: ["ignore", "pipe", "pipe"],
    });
    // The CLI repeats a resource's latest output line in its progress (`creating (3s) <line>`); those lines are
    // dropped here, since every output line is printed once, whole, as `<resource> | <line>` from the events.
    const progressRepeat = /^ [+~-]{1,2}\s+\S+ \S+ (creating|updating|deleting|replacing|creating replacement|deleting original|reading|refreshing) \(\d+s\) \S/;
    const split = (stream: NodeJS.ReadableStream) => {
        let rest = "";
        stream.setEncoding("utf8");
        stream.on("data", (chunk: string) => {
            const parts = (rest + chunk).split("\n");
            rest = parts.pop() ?? "";
            for (const p of parts) if (!progressRepeat.test(p) && !/^@ (updating|destroying|previewing)\.*$/.test(p)) emit(p);
        });
        stream.on("end", () => rest && emit(rest));
    };
    split(child.stdout!);
    split(child.stderr!);
    const poll = setInterval(readEvents, 100);
    let timedOut = false;
    const limit = setTimeout(() => {
        timedOut = true;
        child.kill("SIGINT");
        setTimeout(() => child.kill("SIGKILL"), 10_000).unref();
    }, opts.timeoutMs ?? 15 * 60_000);
    const status = await new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
    clearInterval(poll);
    clearTimeout(limit);
    readEvents();
    for (const rec of order) if (!rec.ended) rec.endMs = Date.now() - t0;
    if (timedOut) errors.push(`pulumi ${args[0]} did not finish within ${(opts.timeoutMs ?? 15 * 60_000) / 1000}s and was interrupted`);
    return { status: timedOut ? null : status, steps: order, changes, stackOutputs, lines, errors, ms: Date.now() - t0 };
}
