/**
 * `npm run bench:lab`: lab bootstrap wall time (from `up` start to the health gate passing) for 3 and 5
 * members in one run, each in a fresh lab (own lab dir and address range, torn down afterwards).
 * Prints `members=<N> bootstrap_s=<T>` per size and a last line `ratio=<T5/T3>`.
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

function bootstrap(members: number, prefix: string): number {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `etcd-ha-bench-${members}-`));
    const env = { ...process.env, ETCD_HA_LAB_DIR: dir };
    try {
        const r = run(["up", "--members", String(members), "--prefix", prefix], env, 600_000);
        const m = /bootstrap \(up start → health gate passed\) (\d+\.\d+)s/.exec(r.stdout);
        if (r.status !== 0 || !m) throw new Error(`lab up --members ${members} failed (${r.status}):\n${r.stdout.split("\n").slice(-30).join("\n")}\n${r.stderr}`);
        return Number(m[1]);
    } finally {
        run(["down"], env, 120_000);
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

const t3 = bootstrap(3, "127.66.3");
console.log(`members=3 bootstrap_s=${t3.toFixed(1)}`);
const t5 = bootstrap(5, "127.66.4");
console.log(`members=5 bootstrap_s=${t5.toFixed(1)}`);
console.log(`ratio=${(t5 / t3).toFixed(2)}`);
