/**
 * `npm run bench:lab`: lab bootstrap wall time (from `up` start to the health gate passing) for 3 and 5
 * members in one run, each in a fresh lab (own lab dir and address range, torn down afterwards). The
 * sizes alternate, ROUNDS times each (default 3, `--rounds N`), and the median is reported, because one
 * bootstrap on this shared 2-core machine varies by ±20 %. Prints every sample, then
 * `members=<N> bootstrap_s=<median>` per size and a last line `ratio=<T5/T3>`.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..", "..");
const CLI = path.join(ROOT, "tools", "lab", "cli.ts");
const TS_NODE = path.join(ROOT, "node_modules", ".bin", "ts-node");

function run(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number) {
    return spawnSync(TS_NODE, ["--transpile-only", CLI, ...args], { cwd: ROOT, env, encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
}

function bootstrap(members: number, prefix: string): { total: number; program: number } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `etcd-ha-bench-${members}-`));
    const env = { ...process.env, ETCD_HA_LAB_DIR: dir };
    try {
        const r = run(["up", "--members", String(members), "--prefix", prefix], env, 600_000);
        const m = /pulumi up (\d+\.\d+)s; bootstrap \(up start → health gate passed\) (\d+\.\d+)s/.exec(r.stdout);
        if (r.status !== 0 || !m) throw new Error(`lab up --members ${members} failed (${r.status}):\n${r.stdout.split("\n").slice(-30).join("\n")}\n${r.stderr}`);
        return { program: Number(m[1]), total: Number(m[2]) };
    } finally {
        run(["down"], env, 120_000);
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const i = process.argv.indexOf("--rounds");
const rounds = i > 0 ? Number(process.argv[i + 1]) : 3;
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 9) throw new Error("--rounds must be 1..9");
const samples: Record<number, number[]> = { 3: [], 5: [] };
for (let r = 0; r < rounds; r++) {
    for (const [n, prefix] of [[3, "127.66.3"], [5, "127.66.4"]] as const) {
        const b = bootstrap(n, prefix);
        samples[n].push(b.total);
        console.log(`sample round=${r + 1} members=${n} bootstrap_s=${b.total.toFixed(1)} program_s=${b.program.toFixed(1)}`);
    }
}
const t3 = median(samples[3]);
const t5 = median(samples[5]);
console.log(`members=3 bootstrap_s=${t3.toFixed(1)}`);
console.log(`members=5 bootstrap_s=${t5.toFixed(1)}`);
console.log(`ratio=${(t5 / t3).toFixed(2)}`);
