/**
 * The lab's engine stand-in: the `newResource` of `pulumi.runtime.setMocks`, creating each resource for
 * real the way the engine and the providers would (engine-fidelity.md):
 * - `command:remote:Command`: `create` over real SSH with the resource's own connection, stdin and
 *   environment (ssh.ts); a non-zero exit fails the run with the command's name, host and output;
 * - `command:remote:CopyToRemote`: a real SFTP copy;
 * - `tls:*` / `random:*`: real keys, certificates and random values (providers/);
 * - Proxmox resources: an error (the lab runs `hosts` mode);
 * - component resources: recorded, nothing to create.
 *
 * Steps run as the SDK registers them (so dependencies are honoured exactly as the engine would see
 * them), at most 4 × CPUs at a time. After the first failure no new step starts. With a previous state,
 * a resource whose inputs are unchanged is not touched and keeps its outputs (the engine's "same" step);
 * changed inputs (updates, replacements) come with the day-2 engine and are refused here.
 */
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as pulumi from "@pulumi/pulumi";
import { createRandom, RANDOM_TYPES } from "../providers/random";
import { createTls, TLS_TYPES } from "../providers/tls";
import { isSecretWrapper, reveal, wrapSecret } from "./secrets";
import { changedKeys } from "./steps";
import { CopySource, dial, execCommand, execError, parseConnection, sftpCopy, trimOneNewline } from "./ssh";

export const COMMAND = "command:remote:Command";
export const COPY = "command:remote:CopyToRemote";

/** One resource as the lab state keeps it (secrets still wrapped; the state file seals them). */
export interface StateResource {
    type: string;
    name: string;
    custom: boolean;
    id?: string;
    inputs: Record<string, unknown>;
    outputs: Record<string, unknown>;
}

/** What happened to one resource in this run. */
export interface StepRecord {
    type: string;
    name: string;
    op: "create" | "same" | "component";
    startMs: number;
    endMs: number;
    host?: string;
}

export interface LabEngineOptions {
    /** Resources of the previous run, by `type::name` (secrets wrapped). */
    previous?: Map<string, StateResource>;
    /** Run every Command's `create` again even when unchanged (proves the scripts are idempotent on live members). */
    rerunCommands?: boolean;
    /** Progress and streamed command output. */
    log: (line: string) => void;
    /** Most steps at once; default 4 × CPUs (the CLI's default --parallel). */
    parallel?: number;
}

const COMMAND_KEYS = new Set(["connection", "create", "update", "delete", "triggers", "environment", "stdin", "logging", "addPreviousOutputInEnv"]);
const COPY_KEYS = new Set(["connection", "source", "remotePath", "triggers"]);

export const keyOf = (type: string, name: string) => `${type}::${name}`;


/**
 * Inputs as plain data: assets become `{asset, path|text, hash}` (the engine compares assets by content
 * hash), so the state can record them and a later run can compare them.
 */
export async function describeAssets(v: unknown): Promise<unknown> {
    if (v instanceof pulumi.asset.FileAsset) {
        const p = await (v as unknown as { path: Promise<string> }).path;
        return { asset: "file", path: p, hash: createHash("sha256").update(fs.readFileSync(p)).digest("hex") };
    }
    if (v instanceof pulumi.asset.StringAsset) {
        const t = await (v as unknown as { text: Promise<string> }).text;
        return { asset: "string", text: t, hash: createHash("sha256").update(t).digest("hex") };
    }
    if (v instanceof pulumi.asset.Asset || v instanceof pulumi.asset.Archive) throw new Error("the lab engine stand-in supports FileAsset and StringAsset sources only");
    if (Array.isArray(v)) return Promise.all(v.map(describeAssets));
    if (typeof v === "object" && v !== null) {
        const out: Record<string, unknown> = {};
        for (const [k, x] of Object.entries(v)) out[k] = await describeAssets(x);
        return out;
    }
    return v;
}

class Semaphore {
    private active = 0;
    private readonly queue: (() => void)[] = [];
    constructor(private readonly limit: number) {}
    async run<T>(fn: () => Promise<T>): Promise<T> {
        if (this.active >= this.limit) await new Promise<void>((r) => this.queue.push(r));
        this.active++;
        try {
            return await fn();
        } finally {
            this.active--;
            this.queue.shift()?.();
        }
    }
}

/** Resolves what an asset input holds (the SDK keeps promises inside asset objects). */
async function copySource(v: unknown): Promise<CopySource> {
    if (v instanceof pulumi.asset.FileAsset) return { kind: "file", path: await (v as unknown as { path: Promise<string> }).path };
    if (v instanceof pulumi.asset.StringAsset) return { kind: "text", text: await (v as unknown as { text: Promise<string> }).text };
    throw new Error("either asset or archive must be set (the lab supports FileAsset and StringAsset sources)");
}

export class LabEngine {
    readonly resources = new Map<string, StateResource>();
    readonly steps: StepRecord[] = [];
    /** When the engine started (epoch ms). */
    readonly startedAt = Date.now();
    private readonly sem: Semaphore;
    private failure: Error | undefined;

    constructor(private readonly opts: LabEngineOptions) {
        this.sem = new Semaphore(opts.parallel ?? 4 * os.cpus().length);
    }

    /** The first failure of the run, if any. */
    get failed(): Error | undefined {
        return this.failure;
    }

    /** Milliseconds since the engine started. */
    elapsed(): number {
        return Date.now() - this.startedAt;
    }

    private stamp(): string {
        return `[${(this.elapsed() / 1000).toFixed(1).padStart(6)}s]`;
    }

    /** The `newResource` mock. */
    readonly newResource = async (args: pulumi.runtime.MockResourceArgs): Promise<pulumi.runtime.MockResourceResult> => {
        const inputs = args.inputs as Record<string, unknown>;
        const key = keyOf(args.type, args.name);
        if (!args.custom) {
            this.resources.set(key, { type: args.type, name: args.name, custom: false, inputs, outputs: inputs });
            const t = this.elapsed();
            this.steps.push({ type: args.type, name: args.name, op: "component", startMs: t, endMs: t });
            return { id: undefined, state: inputs };
        }
        if (this.failure) throw new Error(`${args.name}: not started: the deployment stopped after an earlier failure`);
        if (args.type.startsWith("proxmoxve:")) {
            return this.fail(new Error(`${args.type} ${args.name}: Proxmox resources are not used by the lab (hosts mode); the stack must not create VMs`));
        }
        const described = (await describeAssets(inputs)) as Record<string, unknown>;
        return this.sem.run(async () => {
            if (this.failure) throw new Error(`${args.name}: not started: the deployment stopped after an earlier failure`);
            const prev = this.opts.previous?.get(key);
            const startMs = this.elapsed();
            const changed = prev ? changedKeys(prev.inputs, described) : [];
            if (prev && changed.length === 0 && !(this.opts.rerunCommands && args.type === COMMAND)) {
                this.resources.set(key, prev);
                this.steps.push({ type: args.type, name: args.name, op: "same", startMs, endMs: startMs });
                this.opts.log(`${this.stamp()} = ${args.type} ${args.name} unchanged`);
                return { id: prev.id, state: prev.outputs };
            }
            if (prev && args.type !== COMMAND) {
                return this.fail(new Error(`${args.type} ${args.name}: inputs changed (${changed.join(", ")}); updates and replacements come with the day-2 engine: run \`npm run lab -- down\`, then \`up\``));
            }
            try {
                const { id, state, host } = await this.create(args.type, args.name, inputs, prev);
                const endMs = this.elapsed();
                this.resources.set(key, { type: args.type, name: args.name, custom: true, id, inputs: described, outputs: (await describeAssets(state)) as Record<string, unknown> });
                this.steps.push({ type: args.type, name: args.name, op: "create", startMs, endMs, host });
                this.opts.log(`${this.stamp()} + ${args.type} ${args.name} ${prev ? "re-run" : "created"}${host ? ` on ${host}` : ""} (${((endMs - startMs) / 1000).toFixed(2)}s)`);
                return { id, state };
            } catch (e) {
                return this.fail(e as Error);
            }
        });
    };

    private fail(e: Error): never {
        if (!this.failure) {
            this.failure = e;
            this.opts.log(`${this.stamp()} ! ${e.message}`);
        }
        throw e;
    }

    private async create(type: string, name: string, inputs: Record<string, unknown>, prev: StateResource | undefined): Promise<{ id: string; state: Record<string, unknown>; host?: string }> {
        if (type === COMMAND) return this.createCommand(name, inputs, prev);
        if (type === COPY) return this.createCopy(name, inputs);
        if (TLS_TYPES.includes(type)) {
            const r = await createTls(type, name, reveal(inputs) as Record<string, unknown>);
            return { id: r.id, state: mergeOutputs(inputs, r.outputs, r.secretOutputs) };
        }
        if (RANDOM_TYPES.includes(type)) {
            const r = createRandom(type, name, reveal(inputs) as Record<string, unknown>);
            return { id: r.id, state: mergeOutputs(inputs, r.outputs, r.secretOutputs) };
        }
        throw new Error(`${type} ${name}: the lab engine stand-in has no provider for this type`);
    }

    private async createCommand(name: string, inputs: Record<string, unknown>, prev: StateResource | undefined) {
        const plain = reveal(inputs) as Record<string, unknown>;
        const unknown = Object.keys(plain).filter((k) => !COMMAND_KEYS.has(k));
        if (unknown.length > 0) throw new Error(`${COMMAND} ${name}: unknown input(s) ${unknown.join(", ")}`);
        const conn = parseConnection(plain.connection);
        const logging = (plain.logging as string | undefined) ?? "stdoutAndStderr";
        if (!["stdout", "stderr", "stdoutAndStderr", "none"].includes(logging)) throw new Error(`${COMMAND} ${name}: logging must be stdout, stderr, stdoutAndStderr or none`);
        const id = prev?.id ?? `${name}${randomBytes(4).toString("hex")}`;
        if (typeof plain.create !== "string" || plain.create === "") return { id, state: { ...inputs, stdout: "", stderr: "" }, host: conn.host };
        const env = plain.environment as Record<string, string> | undefined;
        const client = await dial(conn, { onRetry: (m) => this.opts.log(`${this.stamp()}   ${name}: ${m}`) });
        let r;
        try {
            r = await execCommand(client, plain.create, {
                stdin: typeof plain.stdin === "string" ? plain.stdin : undefined,
                environment: env,
                onLine: (stream, line) => {
                    if (logging === "stdoutAndStderr" || logging === stream) this.opts.log(`    ${name} | ${line}`);
                },
            });
        } finally {
            client.end();
        }
        const err = execError(plain.create, r);
        if (err !== undefined) throw new Error(`${COMMAND} ${name} on ${conn.host}: ${err}`);
        return { id, state: { ...inputs, stdout: trimOneNewline(r.stdout), stderr: trimOneNewline(r.stderr) }, host: conn.host };
    }

    private async createCopy(name: string, inputs: Record<string, unknown>) {
        const plain = reveal(inputs) as Record<string, unknown>;
        const unknown = Object.keys(plain).filter((k) => !COPY_KEYS.has(k));
        if (unknown.length > 0) throw new Error(`${COPY} ${name}: unknown input(s) ${unknown.join(", ")}`);
        const conn = parseConnection(plain.connection);
        if (typeof plain.remotePath !== "string") throw new Error(`${COPY} ${name}: remotePath is required`);
        const source = await copySource(inputs.source);
        const client = await dial(conn, { onRetry: (m) => this.opts.log(`${this.stamp()}   ${name}: ${m}`) });
        try {
            await sftpCopy(client, source, plain.remotePath);
        } finally {
            client.end();
        }
        return { id: randomBytes(8).toString("hex"), state: { ...inputs }, host: conn.host };
    }
}

/** Provider outputs merged over the inputs: echoed secret inputs stay secret, secret outputs are wrapped. */
export function mergeOutputs(inputs: Record<string, unknown>, outputs: Record<string, unknown>, secretOutputs: readonly string[]): Record<string, unknown> {
    const state: Record<string, unknown> = { ...inputs };
    for (const [k, v] of Object.entries(outputs)) {
        state[k] = secretOutputs.includes(k) || isSecretWrapper(inputs[k]) ? wrapSecret(v) : v;
    }
    return state;
}
