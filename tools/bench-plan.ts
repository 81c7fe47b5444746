/**
 * `npm run bench:plan`: the dev stack scaled to 3, 7, 15 and 51 members, in one run. Per size it prints
 *
 *   members=<N> resources=<R> depth=<D> ms=<T> eval_ms=<E>
 *
 * - T: median wall time of the whole offline plan (`plan --json` in a fresh process: start, load and
 *   compile the program, evaluate it under the mock engine, print) — what an operator waits for;
 * - E: median time of one program evaluation in a warm process (module cache and JIT warm), which is
 *   dominated by the Pulumi SDK's per-resource cost (it captures a stack trace per resource and promise).
 *
 * Last lines: `ratio=<T51/T3>` (goal ≤ 3) and `eval_ratio=<E51/E3>`.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import YAML from "yaml";
import { computePlan, loadStack, PROJECT_ROOT, resolveStackFile } from "./planLib";

const SIZES = [3, 7, 15, 51];
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const EVAL_RUNS = Number(process.env.BENCH_EVAL_RUNS ?? 9);

function median(xs: number[]): number {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
}

function members(n: number) {
    return Array.from({ length: n }, (_, i) => ({ name: `etcd${i + 1}`, address: `10.103.0.${101 + i}` }));
}

/** Writes the dev stack file with N members (spread automatically) to a temp dir. */
function scaledStackFile(dir: string, n: number): string {
    const doc = YAML.parse(fs.readFileSync(resolveStackFile("dev"), "utf8"));
    doc.config["etcd-ha:members"] = members(n);
    const file = path.join(dir, `Pulumi.bench-${n}.yaml`);
    fs.writeFileSync(file, YAML.stringify(doc));
    return file;
}

async function main(): Promise<void> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-plan-"));
    const rows: { n: number; resources: number; depth: number; ms: number; evalMs: number }[] = [];
    const warn = console.warn;
    try {
        for (const n of SIZES) {
            // End to end, fresh process each time.
            const file = scaledStackFile(dir, n);
            const times: number[] = [];
            let plan: { resources: unknown[]; depth: number } | undefined;
            for (let r = 0; r < RUNS; r++) {
                const t0 = process.hrtime.bigint();
                const out = execFileSync(
                    process.execPath,
                    [path.join(PROJECT_ROOT, "node_modules/ts-node/dist/bin.js"), "--transpile-only", path.join(PROJECT_ROOT, "tools/plan.ts"), "--config-file", file, "--json"],
                    { cwd: PROJECT_ROOT, stdio: ["ignore", "pipe", "ignore"], timeout: 120000 },
                );
                times.push(Number(process.hrtime.bigint() - t0) / 1e6);
                plan = JSON.parse(out.toString());
            }
            // Warm, in this process (layout warnings for even and >7 sizes are expected: silenced).
            const stack = loadStack(file).stack;
            const evals: number[] = [];
            console.warn = () => undefined;
            for (let r = 0; r <= EVAL_RUNS; r++) {
                const t0 = process.hrtime.bigint();
                const res = await computePlan(stack);
                if (!res.ok) throw new Error(`bench stack with ${n} members is invalid: ${JSON.stringify(res.errors)}`);
                if (r > 0) evals.push(Number(process.hrtime.bigint() - t0) / 1e6); // run 0 warms up
            }
            console.warn = warn;
            rows.push({ n, resources: plan!.resources.length, depth: plan!.depth, ms: median(times), evalMs: median(evals) });
            const last = rows[rows.length - 1];
            console.log(`members=${n} resources=${last.resources} depth=${last.depth} ms=${last.ms.toFixed(0)} eval_ms=${last.evalMs.toFixed(1)}`);
        }
    } finally {
        console.warn = warn;
        fs.rmSync(dir, { recursive: true, force: true });
    }
    const at = (n: number) => rows.find((r) => r.n === n)!;
    console.log(`ratio=${(at(51).ms / at(3).ms).toFixed(2)} (goal: T(51) <= 3 x T(3))`);
    console.log(`eval_ratio=${(at(51).evalMs / at(3).evalMs).toFixed(2)}`);
}

main().catch((e: unknown) => {
    process.stderr.write(`bench:plan: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    process.exitCode = 1;
});
