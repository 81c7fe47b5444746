/**
 * `npm run plan -- --stack <name> [--json]` / `npm run plan -- --config-file <path> [--json]`
 *
 * Offline plan: runs index.ts under Pulumi's mock runtime (no CLI, no Proxmox, no credentials) and prints
 * the member table, quorum and fault tolerance, warnings and the resource tree. The plan goes to stdout,
 * progress and notes to stderr. Exit 0: planned; 1: invalid config; 2: usage or internal error.
 */
import * as path from "path";
import { computePlan, loadStack, renderErrors, renderPlan, resolveStackFile } from "./planLib";

const USAGE = "usage: npm run plan -- (--stack <name> | --config-file <path>) [--json]";

interface Args {
    stack?: string;
    configFile?: string;
    json: boolean;
}

function parseArgs(argv: string[]): Args {
    const a: Args = { json: false };
    for (let i = 0; i < argv.length; i++) {
        const k = argv[i];
        if (k === "--json") a.json = true;
        else if (k === "--stack" || k === "-s") a.stack = argv[++i];
        else if (k === "--config-file") a.configFile = argv[++i];
        else if (k.startsWith("--stack=")) a.stack = k.slice(8);
        else if (k.startsWith("--config-file=")) a.configFile = k.slice(14);
        else if (k === "--help" || k === "-h") throw new UsageError(USAGE, 0);
        else throw new UsageError(`unknown argument ${JSON.stringify(k)}\n${USAGE}`);
    }
    if (!a.stack && !a.configFile) throw new UsageError(`give --stack or --config-file\n${USAGE}`);
    if (a.stack === undefined && a.configFile === undefined) throw new UsageError(USAGE);
    return a;
}

class UsageError extends Error {
    constructor(msg: string, readonly code = 2) {
        super(msg);
    }
}

async function main(): Promise<number> {
    let args: Args;
    try {
        args = parseArgs(process.argv.slice(2));
    } catch (e) {
        const u = e as UsageError;
        (u.code === 0 ? process.stdout : process.stderr).write(u.message + "\n");
        return u.code ?? 2;
    }
    const file = args.configFile ? path.resolve(args.configFile) : resolveStackFile(args.stack!);
    const { stack, notes } = loadStack(file);
    if (args.stack) stack.stack = args.stack;
    process.stderr.write(`plan: evaluating ${path.relative(process.cwd(), file) || file} (stack ${stack.stack}) under the mock engine\n`);
    for (const n of notes) process.stderr.write(`plan: note: ${n}\n`);
    const t0 = process.hrtime.bigint();
    const outcome = await computePlan(stack, notes);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (!outcome.ok) {
        if (args.json) process.stdout.write(JSON.stringify({ errors: outcome.errors }, null, 2) + "\n");
        else process.stdout.write(renderErrors(outcome.errors));
        const registered = outcome.recorded.filter((r) => r.type !== "pulumi:pulumi:Stack").length;
        process.stderr.write(`plan: configuration invalid (${outcome.errors.length} problems); ${registered} resource(s) registered besides the stack\n`);
        return 1;
    }
    process.stderr.write(`plan: ${outcome.plan.resources.length} resources in ${ms.toFixed(0)} ms\n`);
    if (args.json) process.stdout.write(JSON.stringify(outcome.plan, null, 2) + "\n");
    else process.stdout.write(renderPlan(outcome.plan));
    return 0;
}

main().then(
    (code) => {
        process.exitCode = code;
    },
    (e: unknown) => {
        process.stderr.write(`plan: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
        process.exitCode = 2;
    },
);
