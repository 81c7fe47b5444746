/**
 * The rolling-operation helpers (components/etcd/sh/rolling.sh) run for real, against a 3-member etcd cluster
 * (Debian's etcd 3.4, plain HTTP) on 127.77.6.1-3: the status lines, the cluster lock (two holders never
 * overlap, a bounded wait fails with its message, a failed holder releases at once, a killed one within its
 * hold bound), the leadership handover (only from the leader, to a caught-up voter, confirmed by every
 * member; nothing from a member that does not answer), the turns members take to change a live cluster (never
 * overlapping, the leader last, refused while another member is down, nothing left in etcd afterwards, a wait
 * that the caller's check ends early), and the catch-up wait of a member that was stopped while the cluster
 * moved on. Every etcd started here is stopped by its PID in afterAll.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { cleanEnv, ETCDCTL, LocalEtcd } from "./helpers/localEtcd";
import { itLintsClean, needTool } from "./helpers/tools";

const ROLLING = path.join(__dirname, "..", "components", "etcd", "sh", "rolling.sh");
const ADDRS = ["127.77.6.1", "127.77.6.2", "127.77.6.3"];
const CLUSTER = ADDRS.map((a, i) => `m${i + 1}=http://${a}:2380`).join(",");

let dir = "";
let members: LocalEtcd[] = [];
const eps = () => members.map((m) => m.endpoint).join(",");

/** A bash script with the helpers sourced, as the member scripts will run them. */
function script(body: string): string {
    return `set -euo pipefail
export ETCDCTL_API=3
etcd_ha_ctl=(${ETCDCTL} --dial-timeout=2s --command-timeout=5s)
# shellcheck source=/dev/null
source ${JSON.stringify(ROLLING)}
trap etcd_ha_lock_release EXIT
${body}
`;
}

function run(body: string, timeout = 60_000) {
    return spawnSync("bash", ["-c", script(body)], { encoding: "utf8", timeout, env: cleanEnv() });
}

/** Starts the script in the background; resolves with its output when it ends. */
function background(body: string): { proc: ChildProcess; out: () => string; done: Promise<{ code: number | null; stdout: string; stderr: string }>; exited: Promise<void> } {
    // Its own process group, so what it leaves behind when killed can be ended too.
    const proc = spawn("bash", ["-c", script(body)], { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    proc.stdout!.on("data", (d) => (stdout += d));
    proc.stderr!.on("data", (d) => (stderr += d));
    const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => proc.once("close", (code) => resolve({ code, stdout, stderr })));
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    return { proc, out: () => stdout, done, exited };
}

/** Waits (at most 20 s) until a background script has printed `text`. */
async function printed(b: { out: () => string }, text: string): Promise<void> {
    for (let i = 0; i < 400 && !b.out().includes(text); i++) await new Promise((r) => setTimeout(r, 50));
    expect(b.out()).toContain(text);
}

interface StatusLine {
    endpoint: string;
    id: string;
    leader: string;
    applied: number;
    learner: string;
}
function status(): StatusLine[] {
    const r = run(`etcd_ha_status ${JSON.stringify(eps())}`);
    expect(r.status).toBe(0);
    return r.stdout
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => {
            const [endpoint, id, leader, applied, learner] = l.split(" ");
            return { endpoint, id, leader, applied: Number(applied), learner };
        });
}

/** Stops a member that is not the leader (it hands leadership over first if it leads). */
async function stopFollower(m: LocalEtcd): Promise<void> {
    const s = status();
    if (s.find((l) => l.endpoint === m.endpoint)!.id === s[0].leader) expect(run(`etcd_ha_handover ${m.endpoint} ${JSON.stringify(eps())} 10`).status).toBe(0);
    await m.stop();
}

beforeAll(async () => {
    needTool("shellcheck");
    if (!fs.existsSync(ETCDCTL)) throw new Error("etcdctl is not installed: run `apt-get install -y etcd-client etcd-server`");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "rolling-run-"));
    members = ADDRS.map((addr, i) => new LocalEtcd({ addr, dataDir: path.join(dir, `m${i + 1}`), initialCluster: CLUSTER, extra: ["--heartbeat-interval=50", "--election-timeout=500"] }));
    await Promise.all(members.map((m) => m.start(`rolling-run-${process.pid}`)));
}, 60_000);

afterAll(async () => {
    await Promise.all(members.map((m) => m.stop()));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe("rolling.sh", () => {
    itLintsClean(() => fs.readFileSync(ROLLING, "utf8"));

    it("status: one line per member, every member naming the same leader, which is one of them", () => {
        const s = status();
        expect(s.map((l) => l.endpoint)).toEqual(members.map((m) => m.endpoint));
        expect(new Set(s.map((l) => l.leader)).size).toBe(1);
        expect(s.map((l) => l.id)).toContain(s[0].leader);
        for (const l of s) {
            expect(l.id).toMatch(/^[0-9a-f]+$/);
            expect(l.applied).toBeGreaterThan(0);
            expect(l.learner).toBe("false");
        }
    });

    it("lock: two holders never overlap; the second waits for the first", async () => {
        const hold = (tag: string) =>
            background(`etcd_ha_lock_acquire /etcd-ha/test/lock ${JSON.stringify(eps())} 20 60
echo "${tag} start $(date +%s.%N)"
sleep 1
echo "${tag} end $(date +%s.%N)"
etcd_ha_lock_release`);
        const a = hold("a");
        const b = hold("b");
        const [ra, rb] = await Promise.all([a.done, b.done]);
        expect([ra.code, rb.code]).toEqual([0, 0]);
        const t = (out: string, tag: string, what: string) => Number(new RegExp(`^${tag} ${what} (\\S+)$`, "m").exec(out)![1]);
        const spans = [
            [t(ra.stdout, "a", "start"), t(ra.stdout, "a", "end")],
            [t(rb.stdout, "b", "start"), t(rb.stdout, "b", "end")],
        ].sort((x, y) => x[0] - y[0]);
        expect(spans[1][0]).toBeGreaterThanOrEqual(spans[0][1]);
        expect(ra.stdout + rb.stdout).toMatch(/took the cluster lock \/etcd-ha\/test\/lock \(\/etcd-ha\/test\/lock\/[0-9a-f]+\)/);
    }, 60_000);

    it("lock: a bounded wait fails with its message; a holder that fails releases at once, one killed outright within its hold bound", async () => {
        const holder = background(`etcd_ha_lock_acquire /etcd-ha/test/lock2 ${JSON.stringify(eps())} 20 60
echo held
sleep 3`);
        await printed(holder, "held");
        const waited = run(`etcd_ha_lock_acquire /etcd-ha/test/lock2 ${JSON.stringify(eps())} 1 60`);
        expect(waited.status).toBe(1);
        expect(waited.stderr).toContain("could not take the cluster lock /etcd-ha/test/lock2 within 1s");
        expect((await holder.done).code).toBe(0);
        // A holder that fails (set -e): its EXIT trap releases the lock at once.
        const t0 = Date.now();
        const failing = run(`etcd_ha_lock_acquire /etcd-ha/test/lock3 ${JSON.stringify(eps())} 5 60
false`);
        expect(failing.status).toBe(1);
        const next = run(`etcd_ha_lock_acquire /etcd-ha/test/lock3 ${JSON.stringify(eps())} 2 60; echo got`);
        expect(next.stdout).toContain("got");
        expect(Date.now() - t0).toBeLessThan(10_000);
        // A holder killed outright (no trap runs) keeps the lock only until its hold bound (3 s) ends its etcdctl.
        const killed = background(`etcd_ha_lock_acquire /etcd-ha/test/lock4 ${JSON.stringify(eps())} 5 3
echo held
sleep 30`);
        await printed(killed, "held");
        process.kill(killed.proc.pid!, "SIGKILL");
        await killed.exited;
        const t1 = Date.now();
        const after = run(`etcd_ha_lock_acquire /etcd-ha/test/lock4 ${JSON.stringify(eps())} 15 60; echo got`);
        expect(after.stdout).toContain("got");
        expect(Date.now() - t1).toBeLessThan(8_000);
        // Its `sleep 30` is still there: end the group it was started in.
        process.kill(-killed.proc.pid!, "SIGKILL");
        await killed.done;
    }, 60_000);

    it("handover: a follower does nothing; the leader hands over to another voter, and every member names it", () => {
        const before = status();
        const leader = before.find((l) => l.id === l.leader)!;
        const follower = before.find((l) => l.id !== l.leader)!;
        const noop = run(`etcd_ha_handover ${follower.endpoint} ${JSON.stringify(eps())} 10`);
        expect(noop.status).toBe(0);
        expect(noop.stdout).toBe("");
        expect(status()[0].leader).toBe(leader.id);
        const moved = run(`etcd_ha_handover ${leader.endpoint} ${JSON.stringify(eps())} 10`);
        expect(moved.stderr).toBe("");
        expect(moved.status).toBe(0);
        const m = /^handed leadership to ([0-9a-f]+) \((\S+), applied index \d+\)$/m.exec(moved.stdout)!;
        expect(m).not.toBeNull();
        expect(m[1]).not.toBe(leader.id);
        const after = status();
        expect(after.every((l) => l.leader === m[1])).toBe(true);
        expect(after.find((l) => l.id === m[1])!.endpoint).toBe(m[2]);
    });

    it("handover: a leader that misses the status bound is asked again while its port listens, then hands over", () => {
        const leader = status().find((l) => l.id === l.leader)!;
        const misses = path.join(dir, "status-misses");
        fs.writeFileSync(misses, "");
        // etcdctl as the scripts call it, except that the first two \`endpoint status\` calls get no answer (as
        // from a member that misses the 2 s bound on a loaded machine). Counted in a file: the helpers call it in
        // subshells.
        const r = run(`slow_ctl() {
  if [[ " $* " == *" endpoint status "* ]] && [ "$(wc -l < ${JSON.stringify(misses)})" -lt 2 ]; then
    echo miss >> ${JSON.stringify(misses)}
    return 1
  fi
  ${ETCDCTL} "$@"
}
etcd_ha_ctl=(slow_ctl --dial-timeout=2s --command-timeout=5s)
etcd_ha_handover ${leader.endpoint} ${JSON.stringify(eps())} 10`);
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        expect(fs.readFileSync(misses, "utf8")).toBe("miss\nmiss\n");
        const m = /^handed leadership to ([0-9a-f]+) /m.exec(r.stdout)!;
        expect(m).not.toBeNull();
        expect(status().every((l) => l.leader === m[1] && m[1] !== leader.id)).toBe(true);
    });

    it("handover: a member that does not answer has nothing to hand over", () => {
        const r = run(`etcd_ha_handover http://127.77.6.9:2379 ${JSON.stringify(eps())} 5`);
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        expect(r.stdout).toBe("");
    });

    it("turns: every member asks at once; the turns never overlap, the leader's comes last, and nothing is left in etcd", async () => {
        const leader = status().find((l) => l.id === l.leader)!.endpoint;
        const asks = members.map((m, i) => {
            const others = members.filter((o) => o !== m).map((o) => o.endpoint).join(",");
            return background(`etcd_ha_turn_begin /etcd-ha/turns m${i + 1} ${m.endpoint} ${others} 60 120
sleep 1
etcd_ha_turn_end`);
        });
        const outs = await Promise.all(asks.map((a) => a.done));
        const turns = outs.map((o, i) => {
            expect(o.stderr).toBe("");
            expect(o.code).toBe(0);
            const began = new RegExp(`^m${i + 1}: my turn to change the cluster from (\\S+); every other member is healthy \\(3 voters, quorum 2\\)$`, "m").exec(o.stdout)!;
            const ended = new RegExp(`^m${i + 1}: turn ended at (\\S+)$`, "m").exec(o.stdout)!;
            return { endpoint: members[i].endpoint, began: Date.parse(began[1]), ended: Date.parse(ended[1]) };
        });
        turns.sort((a, b) => a.began - b.began);
        for (let i = 1; i < turns.length; i++) expect(turns[i].began).toBeGreaterThanOrEqual(turns[i - 1].ended);
        expect(turns[turns.length - 1].endpoint).toBe(leader);
        // The lock's keys and every pending marker are gone (lock released, markers' leases revoked).
        const left = spawnSync(ETCDCTL, [`--endpoints=${eps()}`, "get", "/etcd-ha/turns/", "--prefix", "--keys-only"], { encoding: "utf8", env: { ...cleanEnv(), ETCDCTL_API: "3" } });
        expect(left.stdout.trim()).toBe("");
    }, 90_000);

    it("turns: a marker left by a step that stopped asking holds the leader back for 10 rounds only", () => {
        const leader = status().find((l) => l.id === l.leader)!.endpoint;
        const others = members.filter((m) => m.endpoint !== leader).map((m) => m.endpoint).join(",");
        const t0 = Date.now();
        const r = run(`lease=$("\${etcd_ha_ctl[@]}" --endpoints=${others} lease grant 120 | sed -n 's/^lease \\([0-9a-f]*\\) granted.*/\\1/p')
"\${etcd_ha_ctl[@]}" --endpoints=${others} put --lease="$lease" /etcd-ha/stale/pending/ghost http://127.77.6.9:2379 >/dev/null
etcd_ha_turn_begin /etcd-ha/stale leader ${leader} ${others} 120 120
echo "pending others: $etcd_ha_pending_others"
etcd_ha_turn_end
"\${etcd_ha_ctl[@]}" --endpoints=${others} lease revoke "$lease" >/dev/null`, 90_000);
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        expect(r.stdout).toContain("pending others: http://127.77.6.9:2379");
        // 3 s for the other markers to appear, then 10 rounds of giving the lock back for 2 s.
        expect(Date.now() - t0).toBeGreaterThanOrEqual(20_000);
        expect(Date.now() - t0).toBeLessThan(60_000);
    }, 90_000);

    it("turns: with another member down, the turn is refused once its health bound ends, naming that member; nothing is left held", async () => {
        const m2 = members[1];
        await stopFollower(m2);
        try {
            const others = [members[1], members[2]].map((m) => m.endpoint).join(",");
            const t0 = Date.now();
            const r = run(`etcd_ha_turn_begin /etcd-ha/refused m1 ${members[0].endpoint} ${others} 60 120 4
echo "not reached"`);
            expect(r.status).not.toBe(0);
            expect(r.stdout).not.toContain("not reached");
            expect(r.stderr).toContain(`m1: not every other member is healthy, refusing to change the cluster (fix or replace them first): ${m2.endpoint}`);
            expect(Date.now() - t0).toBeLessThan(30_000);
            // The lock is free at once (the next holder takes it within 5 s), and the marker's lease is revoked.
            const next = run(`etcd_ha_lock_acquire /etcd-ha/refused/rolling ${others} 5 10`);
            expect(next.status).toBe(0);
            const left = spawnSync(ETCDCTL, [`--endpoints=${members[0].endpoint}`, "get", "/etcd-ha/refused/pending/", "--prefix", "--keys-only"], { encoding: "utf8", env: { ...cleanEnv(), ETCDCTL_API: "3" } });
            expect(left.stdout.trim()).toBe("");
        } finally {
            await m2.start(`rolling-run-${process.pid}`);
        }
    }, 90_000);

    it("turns: a check that succeeds while the turn is awaited ends the wait without a turn and leaves nothing held; one that fails changes nothing", async () => {
        const holder = background(`etcd_ha_lock_acquire /etcd-ha/check/rolling ${JSON.stringify(eps())} 20 60
echo held
sleep 12`);
        await printed(holder, "held");
        const t0 = Date.now();
        const r = run(`calls=0
done_waiting() { calls=$((calls + 1)); [ "$calls" -ge 2 ]; }
etcd_ha_turn_check=done_waiting
etcd_ha_turn_begin /etcd-ha/check m1 ${members[0].endpoint} ${JSON.stringify(eps())} 60 120
echo "abandoned=$etcd_ha_turn_abandoned calls=$calls"`);
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        // Asked once, waited for the lock, asked again: no turn taken.
        expect(r.stdout.trim()).toBe("abandoned=yes calls=2");
        expect(Date.now() - t0).toBeLessThan(10_000);
        const left = spawnSync(ETCDCTL, [`--endpoints=${eps()}`, "get", "/etcd-ha/check/pending/", "--prefix", "--keys-only"], { encoding: "utf8", env: { ...cleanEnv(), ETCDCTL_API: "3" } });
        expect(left.stdout.trim()).toBe("");
        expect((await holder.done).code).toBe(0);
        // A check that never succeeds: the turn comes as without one.
        const taken = run(`never() { return 1; }
etcd_ha_turn_check=never
etcd_ha_turn_begin /etcd-ha/check m1 ${members[0].endpoint} ${JSON.stringify(eps())} 60 120
echo "abandoned=$etcd_ha_turn_abandoned"
etcd_ha_turn_end`);
        expect(taken.stderr).toBe("");
        expect(taken.status).toBe(0);
        expect(taken.stdout).toMatch(/^m1: my turn to change the cluster from \S+; every other member is healthy \(3 voters, quorum 2\)\nabandoned=\nm1: turn ended at \S+\n$/);
    }, 90_000);

    it("caught up: a member stopped while 300 keys were written waits until it has applied what the leader had", async () => {
        const m3 = members[2];
        await stopFollower(m3);
        const others = members.slice(0, 2).map((m) => m.endpoint).join(",");
        // Three transactions of 100 puts (etcd's default --max-txn-ops is 128): no compares, the puts, no else.
        const put = spawnSync("bash", ["-c", `set -euo pipefail; for b in 0 1 2; do { echo; for i in $(seq $((b * 100 + 1)) $((b * 100 + 100))); do echo "put /caught/$i v$i"; done; echo; echo; } | ${ETCDCTL} --endpoints=${others} txn >/dev/null; done`], { env: { ...cleanEnv(), ETCDCTL_API: "3" }, timeout: 120_000, encoding: "utf8" });
        expect(put.stderr).toBe("");
        expect(put.status).toBe(0);
        await m3.start(`rolling-run-${process.pid}`);
        const r = run(`etcd_ha_caught_up ${m3.endpoint} ${JSON.stringify(eps())} 30`);
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
        const c = /^caught up: applied index (\d+) \(the leader's was (\d+)\)$/m.exec(r.stdout)!;
        expect(Number(c[1])).toBeGreaterThanOrEqual(Number(c[2]));
        const got = spawnSync(ETCDCTL, [`--endpoints=${m3.endpoint}`, "get", "/caught/", "--prefix", "--keys-only", "--consistency=s"], { encoding: "utf8", env: { ...cleanEnv(), ETCDCTL_API: "3" } });
        expect(got.stdout.split("\n").filter(Boolean)).toHaveLength(300);
    }, 90_000);
});
