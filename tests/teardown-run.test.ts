/**
 * The cluster's teardown step and the members' leave steps, rendered as the program sends them
 * (`teardownScripts`, `leaveScript`, wrapped for root and run by `/bin/sh -c`) and run for real against
 * 3-member etcd clusters (Debian's etcd 3.4, plain HTTP) on 127.77.41–44.x: only the paths are swapped for
 * scratch ones, etcdctl is a wrapper that drops the TLS flags, and `systemctl` is a stub that records its
 * calls and stops the member's etcd by its PID (checked against the process's command line). Shown:
 * - destroy: the teardown's delete marks the cluster, then the three leaves run at once and all end within
 *   seconds, each member stopped, its member/ dir wiped, nothing removed through the others;
 * - scale-in 3 → 1 without the marker: both leaving members are removed through the others, in turns;
 * - a destroy without the marker (the teardown could not write it): the three leaves still end, the last
 *   member seeing that it is the last, instead of waiting for its turn through members that are gone;
 * - a broken cluster: the teardown's delete warns and exits 0 (a member down; no quorum), a member that was
 *   down reads the marker on another member, and the create clears the marker, or fails when it cannot.
 * Every etcd started here is stopped by its PID (by the stub, or in afterAll).
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { teardownMarkerKey, turnBounds } from "../components/etcd/rolling";
import { leaveScript, wrapScript } from "../components/etcd/scripts";
import { teardownScripts } from "../components/etcd/teardown";
import { cleanEnv, ETCD, ETCDCTL, LocalEtcd } from "./helpers/localEtcd";
import { needTool } from "./helpers/tools";

const CLUSTER = "tdn";
const MARKER = teardownMarkerKey(CLUSTER);

let root = "";
const started: LocalEtcd[] = [];

beforeAll(() => {
    needTool("shellcheck");
    for (const f of [ETCD, ETCDCTL]) if (!fs.existsSync(f)) throw new Error(`${f} is not installed: run \`bash tools/install-os-deps.sh\` (Debian's etcd-server, etcd-client)`);
    root = fs.mkdtempSync(path.join(os.tmpdir(), "teardown-run-"));
});

afterAll(async () => {
    await Promise.all(started.map((m) => m.stop()));
    if (root) fs.rmSync(root, { recursive: true, force: true });
}, 60_000);

/** One member: its etcd, and the scratch paths its steps use. */
interface Member {
    etcd: LocalEtcd;
    name: string;
    dir: string;
    dataDir: string;
    bin: string;
    log: string;
}

/** Starts a 3-member cluster on 127.77.<net>.1-3 (default election settings), with each member's scratch dir. */
async function cluster(net: number): Promise<Member[]> {
    const addrs = [1, 2, 3].map((i) => `127.77.${net}.${i}`);
    const initial = addrs.map((a, i) => `m${i + 1}=http://${a}:2380`).join(",");
    const ms = addrs.map((addr, i) => {
        const dir = path.join(root, `c${net}-m${i + 1}`);
        for (const d of ["bin", "pki", "state", "etc"]) fs.mkdirSync(path.join(dir, d), { recursive: true });
        const bin = path.join(dir, "bin");
        const log = path.join(dir, "systemctl.log");
        // etcdctl without the TLS flags the scripts pass (these members speak plain HTTP).
        fs.writeFileSync(
            path.join(bin, "etcdctl"),
            `#!/bin/bash\nargs=()\nfor a in "$@"; do case "$a" in --cacert=* | --cert=* | --key=*) ;; *) args+=("$a") ;; esac; done\nexec ${ETCDCTL} "\${args[@]}"\n`,
            { mode: 0o755 },
        );
        // systemctl: records the call; stopping etcd ends this member's etcd by its PID (if the PID is still
        // that etcd, with this data dir), TERM then KILL, bounded.
        fs.writeFileSync(
            path.join(bin, "systemctl"),
            `#!/bin/bash
printf '%s\\n' "$*" >> "$STUB_LOG"
case " $* " in
  *" stop "* | *" --now "*)
    pid=$(cat "$STUB_PIDFILE" 2>/dev/null || true)
    if [ -n "$pid" ] && tr '\\0' '\\n' 2>/dev/null < "/proc/$pid/cmdline" | grep -qxF -- "--data-dir=$STUB_DATA_DIR"; then
      kill -TERM "$pid" 2>/dev/null || true
      for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi ;;
esac
exit 0
`,
            { mode: 0o755 },
        );
        fs.writeFileSync(path.join(bin, "journalctl"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
        // What the config step writes on a member: the etcdctl environment (every member), the unit.
        fs.writeFileSync(path.join(dir, "etc", "etcdctl.env"), `ETCDCTL_API=3\nETCDCTL_ENDPOINTS=${addrs.map((a) => `http://${a}:2379`).join(",")}\n`);
        fs.writeFileSync(path.join(dir, "etc", "etcd.service"), "[Unit]\n");
        fs.writeFileSync(path.join(dir, "state", "etcd.started"), "unit=x\n");
        fs.writeFileSync(path.join(dir, "etc", "bootstrap.env"), "ETCD_INITIAL_CLUSTER_STATE=new\n");
        const dataDir = path.join(dir, "data");
        return { etcd: new LocalEtcd({ addr, dataDir, initialCluster: initial }), name: `m${i + 1}`, dir, dataDir, bin, log };
    });
    started.push(...ms.map((m) => m.etcd));
    await Promise.all(ms.map((m) => m.etcd.start(`teardown-run-${net}-${process.pid}`)));
    for (const m of ms) fs.writeFileSync(path.join(m.dataDir, "NOTES.txt"), "not etcd's\n");
    return ms;
}

/** Replaces parameter lines (`name='…'`) of a rendered script; each must be there exactly once. */
function withParams(script: string, params: Record<string, string>): string {
    let out = script;
    for (const [k, v] of Object.entries(params)) {
        const re = new RegExp(`^${k}='[^'\\n]*'$`, "gm");
        expect([k, (out.match(re) ?? []).length]).toEqual([k, 1]);
        out = out.replace(re, `${k}='${v}'`);
    }
    return out;
}

/** The member's leave step, as EtcdMember renders it, on this member's scratch paths. */
function leave(m: Member): string {
    const body = leaveScript({
        name: m.name,
        peerUrl: m.etcd.endpoint.replace(/:2379$/, ":2380"),
        clientUrl: m.etcd.endpoint,
        dataDir: m.dataDir,
        clusterName: CLUSTER,
        turn: turnBounds(3),
        intervalSeconds: 1,
    });
    return withParams(body, {
        bin_dir: m.bin,
        pki_dir: path.join(m.dir, "pki"),
        unit_path: path.join(m.dir, "etc", "etcd.service"),
        stamp: path.join(m.dir, "state", "etcd.started"),
        bootstrap_env: path.join(m.dir, "etc", "bootstrap.env"),
        replaced_marker: path.join(m.dir, "state", "replaced"),
        release_marker: path.join(m.dir, "state", "release"),
        etcdctl_env: path.join(m.dir, "etc", "etcdctl.env"),
    });
}

/** The teardown step's create or delete, run from `on`'s scratch paths. */
function teardown(ms: Member[], on: Member, which: "create" | "delete", bounds: { ackWaitSeconds?: number; clearWaitSeconds?: number } = {}): string {
    return withParams(teardownScripts({ clusterName: CLUSTER, endpoints: ms.map((m) => m.etcd.endpoint), ...bounds })[which], { bin_dir: on.bin, pki_dir: path.join(on.dir, "pki") });
}

interface Ran {
    code: number | null;
    stdout: string;
    stderr: string;
    ms: number;
}

/**
 * Kills, by PID, every process of the session a step was started in (its own: `detached`), the lock holders
 * too (`timeout` puts them in a process group of their own, not in a session of their own).
 */
function killSession(sid: number): void {
    const ps = spawnSync("ps", ["-eo", "pid=,sid="], { encoding: "utf8" });
    for (const line of ps.stdout.split("\n")) {
        const [pid, s] = line.trim().split(/\s+/).map(Number);
        if (s === sid && pid > 1) {
            try {
                process.kill(pid, "SIGKILL");
            } catch {
                // already gone
            }
        }
    }
}

/** Runs a step as the remote command does (`/bin/sh -c` on the command text for root), bounded. */
function run(m: Member, body: string, timeoutMs: number): Promise<Ran> {
    const pidfile = path.join(m.dir, "etcd.pid");
    fs.writeFileSync(pidfile, m.etcd.proc?.pid !== undefined && m.etcd.proc.exitCode === null && m.etcd.proc.signalCode === null ? String(m.etcd.proc.pid) : "");
    const t0 = Date.now();
    const proc: ChildProcess = spawn("/bin/sh", ["-c", wrapScript(body, "root")], {
        env: { ...cleanEnv(), PATH: `${m.bin}:${process.env.PATH}`, STUB_LOG: m.log, STUB_PIDFILE: pidfile, STUB_DATA_DIR: m.dataDir },
        stdio: ["ignore", "pipe", "pipe"],
        detached: true,
    });
    let stdout = "";
    let stderr = "";
    proc.stdout!.on("data", (d) => (stdout += d));
    proc.stderr!.on("data", (d) => (stderr += d));
    return new Promise((resolve) => {
        const timer = setTimeout(() => {
            stderr += `\n(test: killed after ${timeoutMs} ms)`;
            killSession(proc.pid!);
        }, timeoutMs);
        proc.once("close", (code) => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr, ms: Date.now() - t0 });
        });
    });
}

/** Fails with the step's output when it did not exit 0. */
function ok(r: Ran, what: string): void {
    if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
}

const etcdGone = (m: Member) => m.etcd.proc!.exitCode !== null || m.etcd.proc!.signalCode !== null;
const systemctlCalls = (m: Member) => (fs.existsSync(m.log) ? fs.readFileSync(m.log, "utf8").split("\n").filter(Boolean) : []);
const memberNames = (m: Member) =>
    m.etcd
        .ctl(["member", "list"])
        .stdout.split("\n")
        .filter(Boolean)
        .map((l) => l.split(", ")[2])
        .sort();
const localGet = (m: Member, key: string) => m.etcd.ctl(["get", "--consistency=s", "--print-value-only", key]);

/** The leave's checks of a member that left: etcd stopped and disabled, member/ wiped, the rest kept and named. */
function expectLeft(m: Member, r: Ran): void {
    expect([m.name, etcdGone(m)]).toEqual([m.name, true]);
    expect(systemctlCalls(m)).toEqual(["disable --now etcd"]);
    expect(fs.readdirSync(m.dataDir).sort()).toEqual(["NOTES.txt"]);
    expect(fs.existsSync(path.join(m.dir, "state", "etcd.started"))).toBe(false);
    expect(fs.existsSync(path.join(m.dir, "etc", "bootstrap.env"))).toBe(false);
    const lines = r.stdout.split("\n");
    expect(lines).toContain(`kept in ${m.dataDir} (not etcd's member data): NOTES.txt`);
    expect(lines).toContain(`stopped etcd on ${m.name} and wiped its data (${m.dataDir}/member)`);
    const kept = lines.find((l) => l.startsWith("kept on this host:"))!;
    for (const p of [path.join(m.dir, "etc", "etcd.service"), path.join(m.bin, "etcdctl"), path.join(m.dir, "pki"), path.join(m.dir, "etc", "etcdctl.env"), path.join(m.dir, "state")]) expect(kept).toContain(` ${p}`);
}

describe("destroy: the teardown marks the cluster, then every member leaves at once", () => {
    let ms: Member[] = [];
    beforeAll(async () => {
        ms = await cluster(41);
    }, 60_000);

    it("the create clears a marker an unfinished destroy left, and says when there is none", async () => {
        expect(ms[1].etcd.ctl(["put", MARKER, "left by an earlier destroy"]).status).toBe(0);
        const cleared = await run(ms[0], teardown(ms, ms[0], "create"), 30_000);
        ok(cleared, "teardown create");
        expect(cleared.stdout.trim()).toBe(`cluster ${CLUSTER}: cleared the teardown marker an unfinished destroy left (${MARKER}: left by an earlier destroy)`);
        for (const m of ms) expect(localGet(m, MARKER).stdout).toBe("");
        const again = await run(ms[0], teardown(ms, ms[0], "create"), 30_000);
        ok(again, "teardown create (again)");
        expect(again.stdout.trim()).toBe(`cluster ${CLUSTER}: no teardown marker (${MARKER}): pulumi destroy sets it before the members leave`);
        expect(again.stderr).toBe("");
    }, 60_000);

    it("the delete writes the marker under a lease and returns once every member reads it locally", async () => {
        const r = await run(ms[0], teardown(ms, ms[0], "delete"), 60_000);
        ok(r, "teardown delete");
        expect(r.stderr).toBe("");
        expect(r.stdout.trim()).toBe(`cluster ${CLUSTER} is being destroyed: every member (3) sees the teardown marker ${MARKER}; each leaves by stopping etcd and wiping its data, without being removed through the others`);
        const values = ms.map((m) => localGet(m, MARKER).stdout.trim());
        expect(values[0]).toMatch(new RegExp(`^pulumi destroy of cluster ${CLUSTER} from \\S+ at \\d{4}-\\d\\d-\\d\\dT[\\d:]+Z \\(\\d+\\.\\d+\\)$`));
        expect(new Set(values).size).toBe(1);
        // Bound to a lease of TEARDOWN_MARKER_TTL_SECONDS.
        // The lease ID is a uint64 in the JSON (too large for a JS number): read it as text.
        const lease = BigInt(/"lease":(\d+)/.exec(ms[0].etcd.ctl(["get", MARKER, "-w", "json"]).stdout)![1]);
        expect(lease).toBeGreaterThan(0n);
        const ttl = ms[0].etcd.ctl(["lease", "timetolive", lease.toString(16)]).stdout;
        expect(ttl).toMatch(/granted with TTL\(1800s\), remaining\((\d+)s\)/);
        expect(Number(/remaining\((\d+)s\)/.exec(ttl)![1])).toBeGreaterThan(1700);
    }, 90_000);

    it("the three leaves, run at once, all end within seconds: each member stopped, its data wiped, none removed through the others", async () => {
        const t0 = Date.now();
        const rs = await Promise.all(ms.map((m) => run(m, leave(m), 120_000)));
        const wall = Date.now() - t0;
        rs.forEach((r, i) => ok(r, `leave ${ms[i].name}`));
        console.log(`teardown-run: three concurrent leaves after the teardown marker: ${wall} ms (each: ${rs.map((r) => r.ms).join(", ")} ms)`);
        // The leader stops after its followers (etcd's own handover on the way out would wait up to 7 s).
        expect(wall).toBeLessThan(5_000);
        rs.forEach((r, i) => {
            const m = ms[i];
            expect(r.stderr).toBe("");
            expect(r.stdout).toMatch(new RegExp(`^the whole cluster is being destroyed \\(pulumi destroy of cluster ${CLUSTER} from .*\\): ${m.name} stops without being removed through the others$`, "m"));
            expect(r.stdout).not.toMatch(/my turn|removed m\d/);
            expectLeft(m, r);
        });
    }, 150_000);
});

describe("scale-in 3 → 1 (no marker): the leaving members are removed through the others, in turns", () => {
    let ms: Member[] = [];
    beforeAll(async () => {
        ms = await cluster(42);
    }, 60_000);

    it("the teardown's create runs on the live cluster (nothing to clear); m2 and m3 leave at once; m1 stays, alone and healthy", async () => {
        ok(await run(ms[0], teardown(ms, ms[0], "create"), 30_000), "teardown create");
        const rs = await Promise.all([ms[1], ms[2]].map((m) => run(m, leave(m), 240_000)));
        rs.forEach((r, i) => {
            const m = ms[i + 1];
            ok(r, `leave ${m.name}`);
            expect(r.stderr).toBe("");
            expect(r.stdout).toMatch(new RegExp(`^${m.name}: my turn to change the cluster from \\S+; every other member is healthy \\(\\d voters, quorum \\d\\)$`, "m"));
            expect(r.stdout).toMatch(new RegExp(`^removed ${m.name} \\([0-9a-f]+\\); the remaining cluster is healthy after \\d+ check\\(s\\)$`, "m"));
            expect(r.stdout).not.toContain("being destroyed");
            expectLeft(m, r);
        });
        // One turn at a time: the second removal began after the first turn ended.
        const at = (r: Ran, re: RegExp) => Date.parse(re.exec(r.stdout)![1]);
        const turns = rs.map((r) => ({ began: at(r, /my turn to change the cluster from (\S+);/), ended: at(r, /turn ended at (\S+)$/m) })).sort((a, b) => a.began - b.began);
        expect(turns[1].began).toBeGreaterThanOrEqual(turns[0].ended);
        expect(memberNames(ms[0])).toEqual(["m1"]);
        expect(ms[0].etcd.ctl(["endpoint", "health"]).status).toBe(0);
        expect(etcdGone(ms[0])).toBe(false);
        // Nothing of the turns is left in etcd.
        expect(ms[0].etcd.ctl(["get", "--prefix", `/etcd-ha/${CLUSTER}/`, "--keys-only"]).stdout.trim()).toBe("");
    }, 300_000);
});

describe("a destroy without the marker: the leaves end on their own", () => {
    let ms: Member[] = [];
    beforeAll(async () => {
        ms = await cluster(43);
    }, 60_000);

    it("three leaves at once: two are removed in turns, the last sees it is the last instead of waiting for a turn through members that are gone", async () => {
        const t0 = Date.now();
        const rs = await Promise.all(ms.map((m) => run(m, leave(m), 240_000)));
        const wall = Date.now() - t0;
        rs.forEach((r, i) => ok(r, `leave ${ms[i].name}`));
        console.log(`teardown-run: three concurrent leaves without the marker: ${wall} ms (each: ${rs.map((r) => r.ms).join(", ")} ms)`);
        // The turn bound is 660 s: the leaves end long before it.
        expect(wall).toBeLessThan(120_000);
        const removed = rs.filter((r) => /^removed m\d \([0-9a-f]+\); the remaining cluster is healthy/m.test(r.stdout));
        const last = rs.filter((r, i) => r.stdout.split("\n").includes(`${ms[i].name} is the last member of its cluster: nothing to remove it from`));
        expect([removed.length, last.length]).toEqual([2, 1]);
        rs.forEach((r, i) => {
            expect(r.stderr).toBe("");
            expectLeft(ms[i], r);
        });
    }, 300_000);
});

describe("a broken cluster: the teardown warns and never fails the destroy", () => {
    let ms: Member[] = [];
    beforeAll(async () => {
        ms = await cluster(44);
    }, 60_000);

    it("one member down: the marker is written, the member that does not answer is named, exit 0; that member's leave reads the marker on another member", async () => {
        await ms[2].etcd.stop();
        const r = await run(ms[0], teardown(ms, ms[0], "delete", { ackWaitSeconds: 4 }), 60_000);
        ok(r, "teardown delete");
        expect(r.stdout).toBe("");
        expect(r.stderr.trim()).toBe(
            `warning: cluster ${CLUSTER}: wrote the teardown marker ${MARKER}, but after 4s these members do not answer it: m3 (${ms[2].etcd.endpoint}); each member's leave falls back to removing it through the others in turns`,
        );
        for (const m of ms.slice(0, 2)) expect(localGet(m, MARKER).stdout).toMatch(/^pulumi destroy of cluster /);
        // m3's etcd is down: its leave asks the first other member that answers.
        const l = await run(ms[2], leave(ms[2]), 60_000);
        ok(l, "leave m3");
        expect(l.stdout).toMatch(/^the whole cluster is being destroyed \(pulumi destroy of cluster .*\): m3 stops without being removed through the others$/m);
        expect(systemctlCalls(ms[2])).toEqual(["disable --now etcd"]);
        expect(fs.readdirSync(ms[2].dataDir).sort()).toEqual(["NOTES.txt"]);
        // The create (pulumi up after this unfinished destroy) clears it: a later scale-in removes as it should.
        const c = await run(ms[0], teardown(ms, ms[0], "create"), 30_000);
        ok(c, "teardown create");
        expect(c.stdout).toMatch(/^cluster tdn: cleared the teardown marker an unfinished destroy left/);
        expect(localGet(ms[1], MARKER).stdout).toBe("");
    }, 120_000);

    it("no quorum: the delete warns and exits 0 within its bound; the create fails, naming the marker, once its wait ends", async () => {
        await ms[1].etcd.stop();
        const r = await run(ms[0], teardown(ms, ms[0], "delete"), 60_000);
        ok(r, "teardown delete");
        expect(r.stdout).toBe("");
        expect(r.stderr).toMatch(new RegExp(`^warning: cluster ${CLUSTER}: could not write the teardown marker ${MARKER} \\(no quorum, or no member answers: .*\\); each member's leave falls back to removing it through the others in turns\\n$`));
        expect(r.ms).toBeLessThan(40_000);
        const c = await run(ms[0], teardown(ms, ms[0], "create", { clearWaitSeconds: 4 }), 60_000);
        expect(c.code).toBe(1);
        expect(c.stderr).toMatch(new RegExp(`^cluster ${CLUSTER}: could not clear the teardown marker ${MARKER} within 4s, the cluster does not answer: `));
        expect(c.ms).toBeLessThan(20_000);
    }, 120_000);
});
