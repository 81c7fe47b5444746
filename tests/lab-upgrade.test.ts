/**
 * The upgrade path, for real: a lab cluster born on Debian's etcd 3.4.23 is upgraded by config changes
 * (`etcd-ha:etcd.version`) to 3.5.21, to the newest 3.5 the Go module proxy serves, then to the newest 3.6,
 * each under a continuous writer: the pre-upgrade snapshot first, then one member at a time (install,
 * restart, health), 0 acknowledged writes lost; the binaries, the servers and the cluster version are
 * read back after each step. Every refusal the rules make is shown on the live cluster with nothing
 * changed (processes, units, binaries, the release marker, snapshots): a jump that skips a minor
 * (3.4 -> 3.6), 3.6 from a 3.5 below the minimum patch (3.5.21 -> 3.6), and a downgrade (3.6 -> 3.5).
 * The writer is the Go one (etcd's client, as kube-apiserver uses it), which also counts leader changes.
 * The refused runs go through the lab CLI (`npm run lab -- up --version X`), as an operator would run them.
 * After each refusal a member is restarted by hand (its unit must still fit its binary) and the next run
 * with the running release changes nothing.
 *
 * Needs `bash tools/etcd-build.sh 3.5 3.6 3.5.21` (npm test's pretest and .ci/run build them).
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import { formatFigures, verifyAcknowledged } from "../tools/lab/faults/writer";
import { inHost, LabHost } from "../tools/lab/hosts";
import { MIN_35_FOR_36 } from "../components/etcd/upgrade";
import { versionFeatures } from "../components/etcd/version";
import { expectRolling, expectSnapshotFirst, failedErrors, labCli, labSuite } from "./helpers/labSuite";

/** The release the suite's runs ask for (what the cluster should be on after the last successful run). */
let current = "3.4";
const suite = labSuite({ name: "upgrade", prefix: "127.66.6", figuresTitle: "upgrade figures (3.4 -> 3.5 -> 3.6, refusals):", defaults: () => ({ version: current }) });
const { lab, figures, log, hosts, up } = suite;
const endpoints = () => hosts().map((h) => `https://${h.address}:2379`);

/** The version `etcd --version` reports for the binary the unit runs. */
const binaryVersion = (h: LabHost) => /^etcd Version: (\S+)$/m.exec(inHost(h, ["/usr/local/bin/etcd", "--version"]))![1];

/** `GET /version` of a member: the server's and the cluster's version. */
function versions(h: LabHost): { etcdserver: string; etcdcluster: string } {
    const t = suite.tls();
    const r = spawnSync("curl", ["-sS", "--max-time", "5", "--cacert", t.cacert, "--cert", t.cert, "--key", t.key, `https://${h.address}:2379/version`], { encoding: "utf8", timeout: 15_000 });
    if (r.status !== 0) throw new Error(`GET /version on ${h.name} failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as { etcdserver: string; etcdcluster: string };
}

/**
 * Waits (bounded) until every member reports cluster version `want`: etcd decides it a few seconds after
 * start (3.0.0 before that) and raises it once every member runs the new minor.
 */
async function expectClusterVersion(want: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (let i = 0; i < 60 && Date.now() < deadline && !hosts().every((h) => versions(h).etcdcluster === want); i++) await new Promise((r) => setTimeout(r, 500));
    for (const h of hosts()) expect(versions(h).etcdcluster).toBe(want);
}

/** What a refused run must leave exactly as it was, per host. */
function fingerprint(h: LabHost) {
    const sum = (f: string) => inHost(h, ["sh", "-c", `sha256sum ${f} | cut -d' ' -f1`]).trim();
    return {
        pid: lab.etcdPid(h),
        binary: binaryVersion(h),
        unit: sum("/etc/systemd/system/etcd.service"),
        etcdctlEnv: sum("/etc/etcd/etcdctl.env"),
        marker: inHost(h, ["cat", "/var/lib/etcd-ha/release"]).trim(),
        releases: inHost(h, ["ls", "-A", "/var/lib/etcd-ha/releases"]).trim(),
        snapshots: inHost(h, ["sh", "-c", "ls -A /var/backups/etcd 2>/dev/null || true"]).trim(),
    };
}

/** Waits (bounded) until every member answers /health. */
async function healthy(): Promise<void> {
    const deadline = Date.now() + 60_000;
    for (let i = 0; i < 120 && Date.now() < deadline; i++) {
        if (lab.status().members.every((m) => m.healthy)) return;
        await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error(`the lab cluster is not healthy: ${JSON.stringify(lab.status().members)}`);
}

/**
 * A refused version change on the live cluster: the run fails with `reason`, nothing on any host changed,
 * a member restarted by hand comes back on its own unit and binary, and the next run with the running
 * release changes nothing.
 */
async function expectRefused(version: string, reason: RegExp): Promise<string> {
    const before = hosts().map(fingerprint);
    const t0 = Date.now();
    // As an operator runs it, in a process of its own: a failed run of the mock runtime leaves unhandled
    // rejections that the language host (and the lab CLI) collect from the process, which jest's sandboxed
    // `process` never sees.
    const r = labCli(suite.dir, ["up", "--version", version], 180_000);
    const seconds = (Date.now() - t0) / 1000;
    log.push(...r.stdout.split("\n"), ...r.stderr.split("\n"));
    expect(r.status).toBe(1);
    const message = r.stderr;
    expect(message).toMatch(reason);
    expect(message).toContain("etcd-upgrade-snapshot");
    expect(hosts().map(fingerprint)).toEqual(before);
    // The units still fit the binaries: a restart by hand (as after a crash or a reboot) comes back.
    const h = hosts()[2];
    inHost(h, ["systemctl", "restart", "etcd"]);
    expect(inHost(h, ["systemctl", "is-active", "etcd"]).trim()).toBe("active");
    await healthy();
    // The next run with the running release: nothing to do.
    const settle = await up();
    expect(settle.steps.filter((s) => s.op !== "same" && s.op !== "component").map((s) => `${s.op} ${s.name}`)).toEqual([]);
    expect(hosts().map((x) => fingerprint(x).binary)).toEqual(before.map((b) => b.binary));
    // The last matching line: the first quotes the whole script, the guard's messages included.
    return `${message.split("\n").filter((l) => reason.test(l)).pop()?.trim() ?? message} (refused in ${seconds.toFixed(1)}s)`;
}

/**
 * An allowed upgrade to `release` under a continuous writer (configured with every member, as
 * kube-apiserver is): checks the order of the steps, what runs afterwards and that no acknowledged write is
 * lost. Returns the version the members run now.
 */
async function upgrade(release: string, kind: "minor" | "patch", prefix: string): Promise<string> {
    const from = binaryVersion(hosts()[0]);
    const pidsBefore = hosts().map((h) => lab.etcdPid(h));
    const logFrom = log.length;
    current = release;
    const { report, result } = await suite.underGoWriter(endpoints(), prefix, () => up());
    const lines = log.slice(logFrom);
    const to = binaryVersion(hosts()[0]);
    expect(to).not.toBe(from);
    if (/^\d+\.\d+\.\d+$/.test(release)) expect(to).toBe(release);
    else expect(to.startsWith(`${release}.`)).toBe(true);

    // The guard's verdict and the pre-upgrade snapshot, before any member stages the release.
    const dots = (v: string) => v.replace(/\./g, "\\.");
    expectSnapshotFirst({ steps: result.steps, lines }, hosts().map((h) => h.name), new RegExp(`^etcd ${dots(from)} installed, ${kind} upgrade to ${dots(to)}$`), ["binaries", "config"]);
    // One member at a time (turns taken at run time), the leader last, handing over first.
    const turns = expectRolling(lines, hosts().map((h) => h.name));
    expect(String(result.outputs.health)).toMatch(/^healthy: 3\/3 members/);

    // Every member: the new binary, a new process running the new release's flag set, the new server
    // version; the cluster version follows.
    const f = versionFeatures(to);
    for (const [i, h] of hosts().entries()) {
        expect(binaryVersion(h)).toBe(to);
        const pid = lab.etcdPid(h)!;
        expect(pid).not.toBe(pidsBefore[i]);
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        expect(argv.includes("--feature-gates=InitialCorruptCheck=true,CompactHashCheck=true")).toBe(f.featureGates);
        expect(argv.includes("--experimental-initial-corrupt-check=true")).toBe(!f.featureGates);
        expect(argv.includes("--tls-min-version=TLS1.2")).toBe(f.tlsMinVersion);
        expect(versions(h).etcdserver).toBe(to);
        expect(lines.some((l) => l.includes(`etcd-${h.name}-start | installed etcd ${to}`))).toBe(true);
    }
    await expectClusterVersion(`${to.split(".").slice(0, 2).join(".")}.0`);

    const v = await verifyAcknowledged(report, endpoints(), suite.tls(), prefix);
    // Where the largest gap was: the acknowledged put that ended it (its own latency shows a stalled put).
    const gapEnd = report.records.find((r) => r.outcome === "ok" && r.endMs === report.largestGapEndMs)!;
    figures.push(`  largest gap ends at +${((gapEnd.endMs - report.startMs) / 1000).toFixed(1)} s with put ${gapEnd.seq} (latency ${(gapEnd.endMs - gapEnd.startMs).toFixed(0)} ms); leaders: ${report.leaders.map((l) => `${l.endpoint ?? l.id}@+${((l.atMs - report.startMs) / 1000).toFixed(1)}s`).join(", ")}`);
    figures.push(
        formatFigures(`upgrade ${from} -> ${to} (${kind}, 3 rolling restarts)`, report, { lost: v.lost.length, leader_changes: report.leaderChanges, handovers: turns.filter((t) => t.handedOver).length, run_s: result.programSeconds.toFixed(1) }),
        `  failed puts: ${failedErrors(report)}`,
    );
    expect(v.lost).toEqual([]);
    expect(report.acknowledged).toBeGreaterThan(50);
    expect(report.leaders.length).toBeGreaterThan(0);
    // At most a leader election per restart.
    expect(report.failed).toBeLessThanOrEqual(3);
    // Planned restarts cause no election: the only leader change is the leader's own handover.
    expect(report.leaderChanges).toBeLessThanOrEqual(turns.filter((t) => t.handedOver).length);
    return to;
}

describe("upgrade path 3.4 -> 3.5 -> 3.6 on a live lab cluster", () => {
    test("the cluster starts on Debian's etcd 3.4", async () => {
        for (const h of hosts()) expect(binaryVersion(h)).toBe(lab.debianEtcdVersion());
        await expectClusterVersion("3.4.0");
    });

    test("3.4 -> 3.6 is refused (skips a minor): nothing changes", async () => {
        figures.push(`refused 3.4 -> 3.6: ${await expectRefused("3.6", /etcd upgrades one minor version at a time; upgrade to 3\.5\.x first/)}`);
    }, 240_000);

    test("3.4.23 -> 3.5.21 under a writer: snapshot first, one member at a time, 0 lost", async () => {
        await upgrade("3.5.21", "minor", "/up/3.5.21/");
    }, 300_000);

    test(`3.5.21 -> 3.6 is refused (below ${MIN_35_FOR_36}): nothing changes, and the old units still start`, async () => {
        figures.push(`refused 3.5.21 -> 3.6: ${await expectRefused("3.6", new RegExp(`upgrading to 3\\.6 needs every member on ${MIN_35_FOR_36.replace(/\./g, "\\.")} or later first`))}`);
    }, 240_000);

    test("3.5.21 -> newest 3.5 (patch), then -> newest 3.6 (minor), each under a writer, 0 lost", async () => {
        await upgrade("3.5", "patch", "/up/3.5/");
        await upgrade("3.6", "minor", "/up/3.6/");
    }, 600_000);

    test("3.6 -> 3.5 is refused (a downgrade): nothing changes", async () => {
        figures.push(`refused 3.6 -> 3.5: ${await expectRefused("3.5", /etcd cannot go back from 3\.6 to 3\.5 by swapping binaries/)}`);
    }, 240_000);
});
