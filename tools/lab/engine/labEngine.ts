/**
 * The lab's engine stand-in: the `newResource` of `pulumi.runtime.setMocks`, applying each resource for
 * real the way the engine and the providers would (engine-fidelity.md):
 * - `command:remote:Command`: `create`/`update`/`delete` over real SSH with the resource's own
 *   connection, stdin and environment (ssh.ts); a non-zero exit fails the run with the command's name,
 *   host and output;
 * - `command:remote:CopyToRemote`: a real SFTP copy;
 * - `tls:*` / `random:*`: real keys, certificates and random values (providers/);
 * - Proxmox resources: an error (the lab runs `hosts` mode);
 * - component resources: recorded, nothing to create.
 *
 * First runs create. Second runs compare each registered resource with the saved state and take the
 * engine's step (steps.ts `decideStep`): unchanged → same (nothing runs, old outputs returned); changed
 * → update (a Command runs `update`, else `create`, with the new inputs) or replace (only `triggers` for
 * commands; provider rules for tls/random, including the certificate renewal window). Replacements are
 * create-before-delete: the new instance is created in place, the old one deleted at the end of the run;
 * `deleteBeforeReplace` deletes the old one first. Resources gone from the program, and old halves of
 * replacements, are deleted by `finish()` after every registration, in reverse dependency layers, from
 * their stored state only. Resource options come from the registration request (the mocks do not pass
 * them to `newResource`). After the first failure no new step starts and no delete runs; undone deletes
 * stay pending in the state for the next run.
 *
 * Not emulated (see the README's lab section): preview, refresh, `protect`, `deletedWith`, cascading
 * replacement of dependents under `deleteBeforeReplace`, pending-operation recovery after a kill.
 */
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as pulumi from "@pulumi/pulumi";
import { createRandom, RANDOM_TYPES } from "../providers/random";
import { createTls, TLS_TYPES } from "../providers/tls";
import { isSecretWrapper, reveal, wrapSecret } from "./secrets";
import { changedKeys, decideStep, deleteLayers, StepDecision } from "./steps";
import { latestRegistration, RecordedResource } from "../../engine/mockHost";
import { CopySource, dial, execCommand, execError, parseConnection, SshConnection, sftpCopy, trimOneNewline } from "./ssh";

export const COMMAND = "command:remote:Command";
export const COPY = "command:remote:CopyToRemote";

/** The resource options the engine honours on second runs (read from the registration request). */
export interface ResourceOptions {
    deleteBeforeReplace?: boolean;
    ignoreChanges?: string[];
    replaceOnChanges?: string[];
    retainOnDelete?: boolean;
}

/** One resource as the lab state keeps it (secrets still wrapped; the state file seals them). */
export interface StateResource {
    type: string;
    name: string;
    custom: boolean;
    id?: string;
    inputs: Record<string, unknown>;
    outputs: Record<string, unknown>;
    /** The URN and the URNs it depended on when it was last applied (deletes run in reverse of these). */
    urn?: string;
    dependencies?: string[];
    options?: ResourceOptions;
}

/** What the registration request told the engine about a resource. */
export interface Registration {
    urn: string;
    dependencies: string[];
    options: ResourceOptions;
}

export type StepOp = "create" | "same" | "update" | "replace" | "delete" | "component";

/** What happened to one resource in this run. */
export interface StepRecord {
    type: string;
    name: string;
    op: StepOp;
    startMs: number;
    endMs: number;
    host?: string;
    /** For updates and replacements: the inputs that differed (and `readyForRenewal`). */
    changed?: string[];
}

export interface LabEngineOptions {
    /** Resources of the previous run, by `type::name` (secrets wrapped). */
    previous?: Map<string, StateResource>;
    /** Deletes an earlier run left undone (it failed before or during its deletes). */
    pendingDeletes?: StateResource[];
    /** The registration of a resource of this run (URN, dependencies, options); the mocks do not pass options. */
    registration?: (type: string, name: string) => Registration | undefined;
    /** Run every unchanged Command's `update`/`create` again (proves the scripts are idempotent on live members). */
    rerunCommands?: boolean;
    /** The clock the tls provider's renewal check reads (default Date.now); tests move it forward. */
    now?: () => number;
    /** Progress and streamed command output. */
    log: (line: string) => void;
    /** Most steps at once; default 4 × CPUs (the CLI's default --parallel). */
    parallel?: number;
}

const COMMAND_KEYS = new Set(["connection", "create", "update", "delete", "triggers", "environment", "stdin", "logging", "addPreviousOutputInEnv"]);
const COPY_KEYS = new Set(["connection", "source", "remotePath", "triggers"]);

export const keyOf = (type: string, name: string) => `${type}::${name}`;

/** The `registration` lookup over a run's recorded registrations (the newest with that type and name). */
export function registrationFrom(record: readonly RecordedResource[]): (type: string, name: string) => Registration | undefined {
    return (type, name) => {
        const r = latestRegistration(record, type, name);
        return r && { urn: r.urn, dependencies: r.dependencies, options: r.options };
    };
}


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
    /** The state this run leaves: every resource registered (or kept) by it. */
    readonly resources = new Map<string, StateResource>();
    readonly steps: StepRecord[] = [];
    /** When the engine started (epoch ms). */
    readonly startedAt = Date.now();
    /** Old halves of create-before-delete replacements made in this run (deleted by `finish`). */
    private readonly condemned: StateResource[] = [];
    /** Deletes still undone when the run ended (written back to the state as pending). */
    private remaining: StateResource[] = [];
    private readonly registered = new Set<string>();
    private readonly sem: Semaphore;
    private failure: Error | undefined;

    constructor(private readonly opts: LabEngineOptions) {
        this.sem = new Semaphore(opts.parallel ?? 4 * os.cpus().length);
        this.remaining = [...(opts.pendingDeletes ?? [])];
    }

    /** The first failure of the run, if any. */
    get failed(): Error | undefined {
        return this.failure;
    }

    /** Deletes not done (yet): pending from earlier runs and condemned in this one. */
    get pendingDeletes(): StateResource[] {
        return [...this.remaining, ...this.condemned];
    }

    /** Milliseconds since the engine started. */
    elapsed(): number {
        return Date.now() - this.startedAt;
    }

    private stamp(): string {
        return `[${(this.elapsed() / 1000).toFixed(1).padStart(6)}s]`;
    }

    private record(step: StepRecord, line: string): void {
        this.steps.push(step);
        this.opts.log(`${this.stamp()} ${line}`);
    }

    /** The `newResource` mock. */
    readonly newResource = async (args: pulumi.runtime.MockResourceArgs): Promise<pulumi.runtime.MockResourceResult> => {
        const inputs = args.inputs as Record<string, unknown>;
        const key = keyOf(args.type, args.name);
        this.registered.add(key);
        const reg = this.opts.registration?.(args.type, args.name);
        const meta = reg ? { urn: reg.urn, dependencies: reg.dependencies, options: reg.options } : {};
        if (!args.custom) {
            this.resources.set(key, { type: args.type, name: args.name, custom: false, inputs, outputs: inputs, ...meta });
            const t = this.elapsed();
            this.steps.push({ type: args.type, name: args.name, op: "component", startMs: t, endMs: t });
            return { id: undefined, state: inputs };
        }
        if (this.failure) throw new Error(`${args.name}: not started: the deployment stopped after an earlier failure`);
        if (args.type.startsWith("proxmoxve:")) {
            return this.fail(new Error(`${args.type} ${args.name}: Proxmox resources are not used by the lab (hosts mode); the stack must not create VMs`));
        }
        const prev = this.opts.previous?.get(key);
        // ignoreChanges: the engine keeps the old value of those inputs (at create there is none to keep).
        const ignore = (reg?.options.ignoreChanges ?? []).map((p) => p.split(/[.[]/)[0]);
        const effective = prev ? withIgnored(inputs, prev.inputs, ignore) : inputs;
        const described = (await describeAssets(effective)) as Record<string, unknown>;
        return this.sem.run(async () => {
            if (this.failure) throw new Error(`${args.name}: not started: the deployment stopped after an earlier failure`);
            const startMs = this.elapsed();
            let decision: StepDecision | undefined;
            if (prev) {
                try {
                    decision = decideStep(args.type, prev, described, { ignoreChanges: ignore, nowMs: (this.opts.now ?? Date.now)() });
                } catch (e) {
                    return this.fail(e as Error);
                }
                const forced = (reg?.options.replaceOnChanges ?? []).map((p) => p.split(/[.[]/)[0]).filter((k) => decision!.changed.includes(k) && !decision!.replaceKeys.includes(k));
                if (forced.length > 0) decision = { kind: "replace", changed: decision.changed, replaceKeys: [...decision.replaceKeys, ...forced] };
                if (decision.kind === "same" && !(this.opts.rerunCommands && args.type === COMMAND)) {
                    this.resources.set(key, { ...prev, ...meta });
                    this.record({ type: args.type, name: args.name, op: "same", startMs, endMs: startMs }, `= ${args.type} ${args.name} unchanged`);
                    return { id: prev.id, state: prev.outputs };
                }
            }
            const op: StepOp = !prev ? "create" : decision!.kind === "replace" ? "replace" : "update";
            try {
                let result: { id: string; state: Record<string, unknown>; host?: string };
                if (op === "update") {
                    result = await this.update(args.type, args.name, effective, prev!);
                } else {
                    if (op === "replace" && (reg?.options.deleteBeforeReplace ?? false)) {
                        this.opts.log(`${this.stamp()} - ${args.type} ${args.name} deleting before its replacement (deleteBeforeReplace)`);
                        await this.delete(prev!);
                    }
                    result = await this.create(args.type, args.name, effective);
                    if (op === "replace" && !(reg?.options.deleteBeforeReplace ?? false)) this.condemned.push(prev!);
                }
                const endMs = this.elapsed();
                this.resources.set(key, { type: args.type, name: args.name, custom: true, id: result.id, inputs: described, outputs: (await describeAssets(result.state)) as Record<string, unknown>, ...meta });
                const why = decision && decision.changed.length + decision.replaceKeys.length > 0 ? ` [${[...new Set([...decision.replaceKeys, ...decision.changed])].join(", ")}]` : "";
                this.record(
                    { type: args.type, name: args.name, op, startMs, endMs, host: result.host, changed: decision ? [...new Set([...decision.replaceKeys, ...decision.changed])] : undefined },
                    `${op === "create" ? "+" : op === "update" ? "~" : "+-"} ${args.type} ${args.name} ${op === "create" ? "created" : op === "update" ? (decision!.kind === "same" ? "re-run" : "updated") : "replaced"}${why}${result.host ? ` on ${result.host}` : ""} (${((endMs - startMs) / 1000).toFixed(2)}s)`,
                );
                return { id: result.id, state: result.state };
            } catch (e) {
                // A failed update keeps the old state; a failed create leaves no entry (engine-fidelity §5.4).
                if (prev && op === "update") this.resources.set(key, prev);
                return this.fail(e as Error);
            }
        });
    };

    /**
     * The end of a successful program run: deletes the resources the program no longer registers and the
     * old halves of replacements, in reverse dependency layers (each layer in parallel, the next after
     * it), from their stored state. Does nothing after a failure. Returns the failure of a delete, if any.
     */
    async finish(): Promise<Error | undefined> {
        if (this.failure) return this.failure;
        const gone = [...(this.opts.previous?.values() ?? [])].filter((r) => !this.registered.has(keyOf(r.type, r.name)));
        const condemned = [...this.remaining, ...this.condemned, ...gone.filter((r) => r.custom)];
        this.condemned.length = 0;
        this.remaining = [...condemned];
        if (condemned.length === 0) return undefined;
        const ids = condemned.map((r, i) => `${r.urn ?? keyOf(r.type, r.name)}#${i}`);
        const byUrn = new Map<string, string[]>();
        condemned.forEach((r, i) => byUrn.set(r.urn ?? keyOf(r.type, r.name), [...(byUrn.get(r.urn ?? keyOf(r.type, r.name)) ?? []), ids[i]]));
        const layers = deleteLayers(condemned.map((r, i) => ({ urn: ids[i], dependencies: (r.dependencies ?? []).flatMap((d) => byUrn.get(d) ?? []) })));
        for (const layer of layers) {
            await Promise.all(
                layer.map((id) =>
                    this.sem.run(async () => {
                        if (this.failure) return;
                        const r = condemned[ids.indexOf(id)];
                        try {
                            await this.delete(r);
                            this.remaining = this.remaining.filter((x) => x !== r);
                        } catch (e) {
                            this.fail(e as Error, false);
                        }
                    }),
                ),
            );
            if (this.failure) return this.failure;
        }
        return undefined;
    }

    private fail(e: Error, raise = true): never {
        if (!this.failure) {
            this.failure = e;
            this.opts.log(`${this.stamp()} ! ${e.message}`);
        }
        if (raise) throw e;
        return undefined as never;
    }

    /** Deletes one resource from its stored state: a Command runs its old `delete`; other types have nothing to run. */
    private async delete(r: StateResource): Promise<void> {
        const startMs = this.elapsed();
        let host: string | undefined;
        let ran = false;
        if (r.type === COMMAND && !r.options?.retainOnDelete) {
            const plain = reveal(r.inputs) as Record<string, unknown>;
            host = parseConnection(plain.connection).host;
            if (typeof plain.delete === "string" && plain.delete !== "") {
                await this.runCommand(r.name, plain, plain.delete, r.outputs);
                ran = true;
            }
        }
        const endMs = this.elapsed();
        this.record(
            { type: r.type, name: r.name, op: "delete", startMs, endMs, host },
            `- ${r.type} ${r.name} deleted${ran ? ` (ran its delete command on ${host}, ${((endMs - startMs) / 1000).toFixed(2)}s)` : ""}`,
        );
    }

    private async create(type: string, name: string, inputs: Record<string, unknown>): Promise<{ id: string; state: Record<string, unknown>; host?: string }> {
        if (type === COMMAND) return this.applyCommand(name, inputs, undefined);
        if (type === COPY) return this.copy(name, inputs, undefined);
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

    /** An in-place update: only inputs that do not force a replacement changed. */
    private async update(type: string, name: string, inputs: Record<string, unknown>, prev: StateResource): Promise<{ id: string; state: Record<string, unknown>; host?: string }> {
        if (type === COMMAND) return this.applyCommand(name, inputs, prev);
        if (type === COPY) return this.copy(name, inputs, prev);
        if (TLS_TYPES.includes(type) || RANDOM_TYPES.includes(type)) {
            // Only earlyRenewalHours (tls) or null-only keepers changes (random) get here: outputs are kept.
            const state: Record<string, unknown> = { ...prev.outputs };
            for (const [k, v] of Object.entries(inputs)) state[k] = v;
            return { id: prev.id ?? name, state };
        }
        throw new Error(`${type} ${name}: the lab engine stand-in has no provider for this type`);
    }

    /**
     * Create (no `prev`) runs `create`; update runs `update`, else `create`, with the new inputs and the
     * previous stdout/stderr in PULUMI_COMMAND_* (engine-fidelity §1.2, §1.4).
     */
    private async applyCommand(name: string, inputs: Record<string, unknown>, prev: StateResource | undefined) {
        const plain = reveal(inputs) as Record<string, unknown>;
        const unknown = Object.keys(plain).filter((k) => !COMMAND_KEYS.has(k));
        if (unknown.length > 0) throw new Error(`${COMMAND} ${name}: unknown input(s) ${unknown.join(", ")}`);
        const conn = parseConnection(plain.connection);
        const logging = (plain.logging as string | undefined) ?? "stdoutAndStderr";
        if (!["stdout", "stderr", "stdoutAndStderr", "none"].includes(logging)) throw new Error(`${COMMAND} ${name}: logging must be stdout, stderr, stdoutAndStderr or none`);
        const id = prev?.id ?? `${name}${randomBytes(4).toString("hex")}`;
        const script = prev && typeof plain.update === "string" && plain.update !== "" ? plain.update : plain.create;
        if (typeof script !== "string" || script === "") {
            const old = prev ? (reveal(prev.outputs) as Record<string, unknown>) : {};
            return { id, state: { ...inputs, stdout: old.stdout ?? "", stderr: old.stderr ?? "" }, host: conn.host };
        }
        const r = await this.runCommand(name, plain, script, prev?.outputs, conn);
        return { id, state: { ...inputs, stdout: trimOneNewline(r.stdout), stderr: trimOneNewline(r.stderr) }, host: conn.host };
    }

    /** Runs one command over SSH with the resource's connection, stdin, environment and logging; throws the provider's error. */
    private async runCommand(name: string, plain: Record<string, unknown>, script: string, previousOutputs: Record<string, unknown> | undefined, conn: SshConnection = parseConnection(plain.connection)) {
        const logging = (plain.logging as string | undefined) ?? "stdoutAndStderr";
        const previous: Record<string, string> = {};
        if (previousOutputs && plain.addPreviousOutputInEnv !== false) {
            const old = reveal(previousOutputs) as Record<string, unknown>;
            if (typeof old.stdout === "string" && old.stdout !== "") previous.PULUMI_COMMAND_STDOUT = old.stdout;
            if (typeof old.stderr === "string" && old.stderr !== "") previous.PULUMI_COMMAND_STDERR = old.stderr;
        }
        const client = await dial(conn, { onRetry: (m) => this.opts.log(`${this.stamp()}   ${name}: ${m}`) });
        let r;
        try {
            r = await execCommand(client, script, {
                stdin: typeof plain.stdin === "string" ? plain.stdin : undefined,
                environment: plain.environment as Record<string, string> | undefined,
                optionalEnvironment: previous,
                onWarning: (m) => this.opts.log(`${this.stamp()}   ${name}: warning: ${m}`),
                onLine: (stream, line) => {
                    if (logging === "stdoutAndStderr" || logging === stream) this.opts.log(`    ${name} | ${line}`);
                },
            });
        } finally {
            client.end();
        }
        const err = execError(script, r);
        if (err !== undefined) throw new Error(`${COMMAND} ${name} on ${conn.host}: ${err}`);
        return r;
    }

    /** CopyToRemote: copies on create; on update only when the source's hash or remotePath changed. Never deletes. */
    private async copy(name: string, inputs: Record<string, unknown>, prev: StateResource | undefined) {
        const plain = reveal(inputs) as Record<string, unknown>;
        const unknown = Object.keys(plain).filter((k) => !COPY_KEYS.has(k));
        if (unknown.length > 0) throw new Error(`${COPY} ${name}: unknown input(s) ${unknown.join(", ")}`);
        const conn = parseConnection(plain.connection);
        if (typeof plain.remotePath !== "string") throw new Error(`${COPY} ${name}: remotePath is required`);
        const id = prev?.id ?? randomBytes(8).toString("hex");
        if (prev) {
            const described = (await describeAssets(inputs)) as Record<string, unknown>;
            if (changedKeys(prev.inputs, described).every((k) => k !== "source" && k !== "remotePath")) return { id, state: { ...inputs }, host: conn.host };
        }
        const source = await copySource(inputs.source);
        const client = await dial(conn, { onRetry: (m) => this.opts.log(`${this.stamp()}   ${name}: ${m}`) });
        try {
            await sftpCopy(client, source, plain.remotePath);
        } finally {
            client.end();
        }
        return { id, state: { ...inputs }, host: conn.host };
    }
}

/** The new inputs with every ignored key set back to its old value (or dropped when it had none). */
export function withIgnored(inputs: Record<string, unknown>, old: Record<string, unknown>, ignore: readonly string[]): Record<string, unknown> {
    if (ignore.length === 0) return inputs;
    const out: Record<string, unknown> = { ...inputs };
    for (const k of ignore) {
        if (k in old) out[k] = old[k];
        else delete out[k];
    }
    return out;
}

/** Provider outputs merged over the inputs: echoed secret inputs stay secret, secret outputs are wrapped. */
export function mergeOutputs(inputs: Record<string, unknown>, outputs: Record<string, unknown>, secretOutputs: readonly string[]): Record<string, unknown> {
    const state: Record<string, unknown> = { ...inputs };
    for (const [k, v] of Object.entries(outputs)) {
        state[k] = secretOutputs.includes(k) || isSecretWrapper(inputs[k]) ? wrapSecret(v) : v;
    }
    return state;
}
