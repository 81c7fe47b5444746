/**
 * Runs the Pulumi program (index.ts) in-process under `pulumi.runtime.setMocks`, the way the engine would
 * run it for `pulumi preview`, and records every resource registration with what the engine receives:
 * type, logical name, parent, dependencies (explicit `dependsOn` and those implied by inputs) and inputs.
 *
 * `newResource` decides what each resource "returns": the plan answers with its inputs; the lab (later)
 * runs remote commands and makes real certificates there.
 */
import * as pulumi from "@pulumi/pulumi";
import { planNewResource } from "./planOutputs";

/** One registration as the engine would see it. */
export interface RecordedResource {
    urn: string;
    type: string;
    name: string;
    /** URN of the parent ("" for the stack). */
    parent: string;
    /** URNs this resource depends on (explicit and implied by inputs), as sent to the engine. */
    dependencies: string[];
    custom: boolean;
    /** Inputs as the mock receives them (secrets arrive wrapped). */
    inputs: Record<string, unknown>;
    /** Resource options as the engine receives them (the mocks never pass these to `newResource`). */
    options: RecordedOptions;
}

/** The resource options carried by the registration request that a second run depends on. */
export interface RecordedOptions {
    deleteBeforeReplace?: boolean;
    ignoreChanges?: string[];
    replaceOnChanges?: string[];
    retainOnDelete?: boolean;
    protect?: boolean;
}

export interface RunOptions {
    /** Absolute path of the program's entry module (index.ts), or the program itself as a function. */
    program: string | (() => unknown);
    project: string;
    stack: string;
    /** Flat config (`namespace:key` → value). */
    config: Record<string, string>;
    secretKeys: string[];
    /** Run as a preview (unknown values stay unknown). Default false. */
    preview?: boolean;
    /** Array to record registrations into (so a caller sees them even when the program throws). */
    record?: RecordedResource[];
    /** Provider stand-in; default echoes inputs as state with id `${name}-id`. */
    newResource?: (args: pulumi.runtime.MockResourceArgs) => Promise<pulumi.runtime.MockResourceResult>;
    /** Receives the stack's outputs as the engine would store them (secrets still marked). */
    onStackOutputs?: (outputs: Record<string, unknown>) => void;
}

export interface RunResult {
    resources: RecordedResource[];
    /** Stack outputs (the program's exports), resolved. */
    outputs: Record<string, unknown>;
}

/** Minimal view of the monitor request object (google-protobuf message). */
interface RegisterRequest {
    getType(): string;
    getName(): string;
    getParent(): string;
    getCustom(): boolean;
    getDependenciesList(): string[];
    getDeletebeforereplace(): boolean;
    getIgnorechangesList(): string[];
    getReplaceonchangesList(): string[];
    getRetainondelete(): boolean;
    getProtect(): boolean;
}
interface OutputsRequest {
    getUrn(): string;
    getOutputs(): { toJavaScript(): Record<string, unknown> } | undefined;
}
interface MonitorLike {
    registerResource(req: RegisterRequest, cb: (...a: unknown[]) => void): unknown;
    registerResourceOutputs(req: OutputsRequest, cb: (...a: unknown[]) => void): unknown;
}

function urnOf(parent: string, type: string, name: string, project: string, stack: string): string {
    // Same scheme as the mock monitor: the parent's type chain joined by `$`.
    let t = type;
    if (parent) t = parent.split("::")[2].split("$").pop() + "$" + type;
    return `urn:pulumi:${stack}::${project}::${t}::${name}`;
}

/** The newest recorded registration of a resource (type and name), if any. */
export function latestRegistration(record: readonly RecordedResource[], type: string, name: string): RecordedResource | undefined {
    for (let i = record.length - 1; i >= 0; i--) if (record[i].type === type && record[i].name === name) return record[i];
    return undefined;
}

function recordedOptions(req: RegisterRequest): RecordedOptions {
    const o: RecordedOptions = {};
    if (req.getDeletebeforereplace()) o.deleteBeforeReplace = true;
    if (req.getIgnorechangesList().length > 0) o.ignoreChanges = req.getIgnorechangesList();
    if (req.getReplaceonchangesList().length > 0) o.replaceOnChanges = req.getReplaceonchangesList();
    if (req.getRetainondelete()) o.retainOnDelete = true;
    if (req.getProtect()) o.protect = true;
    return o;
}

/**
 * Runs the program once under mocks and returns the recorded resources and stack outputs. Throws what the
 * program throws (e.g. a config validation error), after recording whatever registered before it.
 */
export async function runProgram(opts: RunOptions): Promise<RunResult> {
    const resources: RecordedResource[] = opts.record ?? [];
    const newResource = opts.newResource ?? planNewResource;
    // An error the program throws (e.g. invalid config), or the first failed registration, is the run's failure.
    let programError: unknown;
    let inFlight = 0;
    await pulumi.runtime.setMocks(
        {
            newResource: async (args) => {
                // The monitor records the request first; attach the inputs to that record.
                const rec = latestRegistration(resources, args.type, args.name);
                if (rec) rec.inputs = args.inputs as Record<string, unknown>;
                inFlight++;
                try {
                    return await newResource(args);
                } catch (e) {
                    if (programError === undefined) programError = e;
                    throw e;
                } finally {
                    inFlight--;
                }
            },
            call: async (args) => {
                throw new Error(`mock not implemented for invoke ${args.token}: the offline engine cannot answer provider calls`);
            },
        },
        opts.project,
        opts.stack,
        opts.preview ?? false,
    );
    pulumi.runtime.setAllConfig(opts.config, opts.secretKeys);
    const monitor = pulumi.runtime.getMonitor() as unknown as MonitorLike;
    const original = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: RegisterRequest, cb: (...a: unknown[]) => void) => {
        resources.push({
            urn: urnOf(req.getParent(), req.getType(), req.getName(), opts.project, opts.stack),
            type: req.getType(),
            name: req.getName(),
            parent: req.getParent(),
            dependencies: [...new Set(req.getDependenciesList())],
            custom: req.getCustom(),
            inputs: {},
            options: recordedOptions(req),
        });
        return original(req, cb);
    };
    const originalOutputs = monitor.registerResourceOutputs.bind(monitor);
    monitor.registerResourceOutputs = (req: OutputsRequest, cb: (...a: unknown[]) => void) => {
        if (opts.onStackOutputs && req.getUrn().includes("::pulumi:pulumi:Stack::")) opts.onStackOutputs(req.getOutputs()?.toJavaScript() ?? {});
        return originalOutputs(req, cb);
    };
    // A program error is caught inside the stack's init: thrown from there, the SDK would also leave an
    // unhandled rejection behind.
    let outputs: Record<string, unknown> | undefined;
    // As the Node language host does: a registration that fails while nothing awaits it (an unhandled
    // rejection) fails the run instead of the process.
    const onUnhandled = (reason: unknown) => {
        if (programError === undefined) programError = reason;
    };
    process.on("unhandledRejection", onUnhandled);
    const run = async () => {
        try {
            outputs = await pulumi.runtime.runInPulumiStack(async () => {
                try {
                    // As the Node language host does: require the entry module; an exported function is the program.
                    // eslint-disable-next-line @typescript-eslint/no-require-imports
                    const mod: unknown = typeof opts.program === "function" ? opts.program : require(opts.program);
                    return typeof mod === "function" ? await (mod as () => unknown)() : mod;
                } catch (e) {
                    // The program failed (e.g. invalid config): the stack completes empty and the error is
                    // rethrown below, after every registration already started has finished.
                    programError = e;
                    return {};
                }
            });
        } catch (e) {
            if (programError === undefined) programError = e;
        } finally {
            // As the language host does at the end of a program: wait for every registration to finish.
            await pulumi.runtime.disconnect().catch((e: unknown) => {
                if (programError === undefined) programError = e;
            });
        }
    };
    // After a failed registration, the resources that depend on it (and the stack's outputs) never resolve
    // in the mock runtime, where the real engine ends the program: waiting for them would last until the
    // event loop drains and the process exits without a word. So once a failure is recorded and no
    // registration has been in flight for a second, the run is over.
    let finished = false;
    const afterFailure = async () => {
        // Polls every 100 ms while the run lasts (at most a day).
        for (let quiet = 0, i = 0; !finished && quiet < 10 && i < 864_000; i++) {
            await new Promise((r) => setTimeout(r, 100));
            quiet = programError !== undefined && inFlight === 0 ? quiet + 1 : 0;
        }
    };
    await Promise.race([run(), afterFailure()]);
    finished = true;
    // Rejections of this run surface within a turn or two of the event loop; then stop listening.
    await new Promise((r) => setImmediate(r));
    process.off("unhandledRejection", onUnhandled);
    if (programError !== undefined) throw programError;
    return { resources, outputs: (outputs ?? {}) as Record<string, unknown> };
}
