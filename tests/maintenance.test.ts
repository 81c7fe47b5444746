/**
 * The maintenance renderers (components/etcd/maintenance.ts): every rendered script passes `bash -n` and
 * shellcheck with no finding, the units mean what they should, bad settings throw naming the setting — and
 * the scripts really run against Debian's etcd 3.4.23 on loopback 127.77.9.x (plain http, temp data dirs,
 * only the processes this file starts, killed by PID):
 * - member A (127.77.9.1) serves the snapshot runs (retention, sha256, off-host copy and its failure, the
 *   lock, refused snapshots, etcdutl selection) and the defrag runs (one at a time, stop at a failure,
 *   refuse an unreachable member);
 * - member B (127.77.9.2) has a 1 MiB quota and is filled until NOSPACE for the compact/defrag/disarm runbook.
 * 127.77.9.3 has no listener: the unreachable member.
 */
import { execFileSync, spawn, spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseUnit, parseUnitSections } from "../components/etcd/flags";
import {
    ADMIN_CLIENT_TLS,
    DEFAULT_SNAPSHOT_DIR,
    DEFRAG_SCRIPT_PATH,
    DefragSettings,
    OFF_HOST_FAILED_EXIT,
    renderDefragScript,
    renderSnapshotScript,
    renderSnapshotService,
    renderSnapshotTimer,
    SNAPSHOT_SCRIPT_PATH,
    SNAPSHOT_SERVICE,
    SNAPSHOT_TIMER,
    S3Target,
    SnapshotSettings,
} from "../components/etcd/maintenance";
import { ObjectStore, removeObjectStore, startObjectStore } from "./helpers/objectStore";
import { itLintsClean, needTool, runTool } from "./helpers/tools";
import { cleanEnv, ETCDCTL, LocalEtcd } from "./helpers/localEtcd";

const A = "127.77.9.1";
const B = "127.77.9.2";
const UNREACHABLE = "http://127.77.9.3:2379";
const EP_A = `http://${A}:2379`;
const EP_B = `http://${B}:2379`;
/** The snapshot script's summary line: the snapshot's path first. */
const SNAPSHOT_LINE = /^snapshot (\S+) revision \d+ keys \d+ bytes \d+ sha256 [0-9a-f]{64}$/m;




/** Writes a script to `file` (0700) and runs it directly (through its shebang), bounded. */
function runScript(file: string, text: string, args: string[] = [], timeout = 45_000) {
    fs.writeFileSync(file, text, { mode: 0o700 });
    const started = Date.now();
    const r = spawnSync(file, args, { encoding: "utf8", timeout, env: cleanEnv() });
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, seconds: (Date.now() - started) / 1000 };
}

function sha256(file: string): string {
    return createHash("sha256").update(fs.readFileSync(file)).digest("hex");
}

/** A single-member etcd on loopback (plain HTTP, killed by PID), with the readings these tests take. */
class TestEtcd extends LocalEtcd {
    constructor(addr: string, dataDir: string, extra: string[] = []) {
        super({ addr, dataDir, extra, startChecks: 60 });
    }
    revision(): number {
        const out = this.ctl(["endpoint", "status", "-w", "json"]).stdout;
        return Number(/"revision":(\d+)/.exec(out)![1]);
    }
    alarms(): string {
        return this.ctl(["alarm", "list"]).stdout.trim();
    }
}

// ---------------------------------------------------------------------------------------------------------
// Text: syntax, shellcheck, determinism
// ---------------------------------------------------------------------------------------------------------

const SNAP_BASE: SnapshotSettings = { clusterName: "prod", memberName: "etcd1", version: "3.5.21", endpoint: "https://10.0.0.11:2379", retain: 7 };
const DEFRAG_BASE: DefragSettings = { endpoints: ["https://10.0.0.11:2379", "https://10.0.0.12:2379", "https://10.0.0.13:2379"] };

const SCRIPTS: [string, string][] = [
    ["snapshot 3.5 defaults", renderSnapshotScript(SNAP_BASE)],
    ["snapshot 3.4 off-host", renderSnapshotScript({ ...SNAP_BASE, version: "3.4.23", dir: "/srv/etcd-backups", retain: 1, offHostCommand: `rsync -a "$1" "$2" 'backup@vault:/etcd/'\nlogger -t etcd-ha "copied $1"` })],
    ["snapshot 3.6 plain http", renderSnapshotScript({ ...SNAP_BASE, version: "3.6.4", endpoint: "http://127.0.0.1:2379", tls: null, retain: 1000 })],
    [
        "snapshot 3.6 with an S3 store",
        renderSnapshotScript({
            ...SNAP_BASE,
            version: "3.6.4",
            s3: { endpoint: "https://s3.kloud.lan:9000", bucket: "etcd-backups", prefix: "k8s/etcd/", region: "us-east-1", authFile: "/etc/etcd-ha/s3.curlrc", caFile: "/etc/etcd-ha/s3-ca.crt", retainCount: 120, retainDays: 30, attempts: 4, backoffSeconds: 5, requestTimeoutSeconds: 600, budgetSeconds: 3600 },
        }),
    ],
    ["defrag 3 members", renderDefragScript(DEFRAG_BASE)],
    ["defrag 1 member plain http", renderDefragScript({ endpoints: ["http://127.0.0.1:2379"], tls: null, etcdctl: "/usr/bin/etcdctl" })],
];

describe.each(SCRIPTS)("%s script", (_label, script) => {
    it("is a bash file with set -euo pipefail before any command", () => {
        const lines = script.split("\n");
        expect(lines[0]).toBe("#!/bin/bash");
        const firstCommand = lines.findIndex((l, i) => i > 0 && l.trim() !== "" && !l.startsWith("#"));
        expect(lines[firstCommand]).toBe("set -euo pipefail");
    });

    itLintsClean(() => script);

    it("never traces, prints a key, or removes a directory", () => {
        expect(script).not.toMatch(/set -x|set -o xtrace|PRIVATE KEY/);
        expect(script).not.toMatch(/rm -r|rmdir/);
        const code = script.split("\n").filter((l) => !l.trimStart().startsWith("#")).join("\n");
        expect(code).not.toMatch(/\bjq\b|python/);
    });
});

describe("renderers are pure", () => {
    it("render the same text twice", () => {
        expect(renderSnapshotScript(SNAP_BASE)).toBe(renderSnapshotScript({ ...SNAP_BASE }));
        expect(renderDefragScript(DEFRAG_BASE)).toBe(renderDefragScript({ endpoints: [...DEFRAG_BASE.endpoints] }));
        expect(renderSnapshotService(SNAP_BASE)).toBe(renderSnapshotService(SNAP_BASE));
        expect(renderSnapshotTimer({ onCalendar: "daily" })).toBe(renderSnapshotTimer({ onCalendar: "daily" }));
    });
});

describe("snapshot script text", () => {
    it("uses the admin client certificate, BIN_DIR binaries, the default dir and lock by default", () => {
        const s = renderSnapshotScript(SNAP_BASE);
        expect(s).toContain(`--cacert='${ADMIN_CLIENT_TLS.cacert}' --cert='/etc/etcd/pki/admin.crt' --key='/etc/etcd/pki/admin.key'`);
        expect(s).toContain("etcdctl=('/usr/local/bin/etcdctl' --endpoints='https://10.0.0.11:2379'");
        expect(s).toContain(`dir='${DEFAULT_SNAPSHOT_DIR}'`);
        expect(s).toContain("lock='/run/lock/etcd-ha-snapshot.lock'");
        expect(s).toContain("umask 077");
        expect(s).toMatch(/flock -w 600 9/);
    });
    it("verifies with etcdutl from 3.5 when the host has it (etcdctl otherwise), and with etcdctl on 3.4", () => {
        expect(renderSnapshotScript(SNAP_BASE)).toContain("if [ -x '/usr/local/bin/etcdutl' ]; then\n  verify=('/usr/local/bin/etcdutl') verify_tool=etcdutl\nelse\n  verify=('/usr/local/bin/etcdctl') verify_tool=etcdctl\nfi");
        expect(renderSnapshotScript({ ...SNAP_BASE, version: "3.4.23" })).toContain("verify=('/usr/local/bin/etcdctl') verify_tool=etcdctl");
        expect(renderSnapshotScript({ ...SNAP_BASE, version: "3.4.23" })).not.toContain("etcdutl");
    });
    it("renders no TLS flags with tls: null", () => {
        expect(renderSnapshotScript({ ...SNAP_BASE, endpoint: "http://127.0.0.1:2379", tls: null })).not.toMatch(/--cacert|--cert|--key/);
    });
    it("carries the off-host command quoted, and only when set", () => {
        expect(renderSnapshotScript(SNAP_BASE)).toContain('offhost=""');
        expect(renderSnapshotScript({ ...SNAP_BASE, offHostCommand: `cp "$1" /mnt/it's` })).toContain(`offhost='cp "$1" /mnt/it'\\''s'`);
    });
});

// ---------------------------------------------------------------------------------------------------------
// Units
// ---------------------------------------------------------------------------------------------------------

describe("snapshot units", () => {
    it("the service is a low-priority oneshot running the snapshot script, bounded", () => {
        const unit = parseUnit(renderSnapshotService({ ...SNAP_BASE, offHostCommand: "true" }));
        expect(unit.execStart.binary).toBe(SNAPSHOT_SCRIPT_PATH);
        expect(unit.execStart.flags.size).toBe(0);
        const service = Object.fromEntries(unit.sections.Service);
        expect(service).toMatchObject({ Type: "oneshot", Nice: "10", IOSchedulingClass: "idle", NoNewPrivileges: "yes" });
        expect(Number(service.TimeoutStartSec)).toBe(600 + 1800 + 30 + 3600 + 30 + 120);
        const u = Object.fromEntries(unit.sections.Unit);
        expect(u.Description).toBe("etcd-ha snapshot of etcd member etcd1 (cluster prod)");
        expect(u.After).toContain("etcd.service");
        expect(unit.sections.Install).toBeUndefined();
        expect(SNAPSHOT_SERVICE).toBe("etcd-ha-snapshot.service");
        expect(SNAPSHOT_SCRIPT_PATH).toBe("/usr/local/bin/etcd-ha-snapshot");
        expect(DEFRAG_SCRIPT_PATH).toBe("/usr/local/bin/etcd-ha-defrag");
    });

    it.each([
        ["dir", { dir: "/tmp/etcd-backups" }, /snapshot\.dir must not be under \/tmp: the snapshot service sees it as a private, empty dir/],
        ["dir", { dir: "/etc/etcd/backups" }, /snapshot\.dir must not be under \/etc: the snapshot service sees it read-only/],
        ["lockFile", { lockFile: "/var/tmp/snapshot.lock" }, /snapshot\.lockFile must not be under \/var\/tmp/],
    ])("the service refuses a %s its sandbox would hide (%j)", (_label, patch, message) => {
        expect(() => renderSnapshotService({ ...SNAP_BASE, ...patch })).toThrow(message);
        expect(() => renderSnapshotScript({ ...SNAP_BASE, ...patch })).not.toThrow();
    });

    it("the timer starts the service on schedule, catches up missed runs, and is wanted by timers.target", () => {
        const s = parseUnitSections(renderSnapshotTimer({ onCalendar: "*-*-* 02,14:00:00", randomizedDelaySec: 900 }));
        expect(Object.fromEntries(s.Timer)).toEqual({
            OnCalendar: "*-*-* 02,14:00:00",
            RandomizedDelaySec: "900",
            AccuracySec: "1s",
            Persistent: "true",
            Unit: SNAPSHOT_SERVICE,
        });
        expect(s.Install).toEqual([["WantedBy", "timers.target"]]);
        expect(SNAPSHOT_TIMER).toBe("etcd-ha-snapshot.timer");
        expect(Object.fromEntries(parseUnitSections(renderSnapshotTimer({ onCalendar: "daily" })).Timer).RandomizedDelaySec).toBe("0");
    });

    it.each(["daily", "*-*-* 02,14:00:00", "*:0/30", "Mon..Fri 03:15", "Sat *-*-1..7 04:00:00 UTC"])("systemd accepts the calendar expression %s", (cal) => {
        needTool("systemd-analyze", "systemd");
        const text = renderSnapshotTimer({ onCalendar: cal });
        const rendered = Object.fromEntries(parseUnitSections(text).Timer).OnCalendar;
        const r = runTool("systemd-analyze", ["calendar", rendered]);
        expect(r.stderr).toBe("");
        expect(r.status).toBe(0);
    });
});

// ---------------------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------------------

const S3_OK: S3Target = { endpoint: "https://s3.lan:9000", bucket: "etcd-backups", prefix: "etcd/", region: "us-east-1", authFile: "/etc/etcd-ha/s3.curlrc", retainCount: 120, retainDays: 30, attempts: 4, backoffSeconds: 5, requestTimeoutSeconds: 600, budgetSeconds: 3600 };

describe("bad settings throw, naming the setting", () => {
    const snap: [string, Partial<SnapshotSettings> & Record<string, unknown>, RegExp][] = [
        ["retain 0", { retain: 0 }, /snapshot\.retain must be an integer from 1 to 1000/],
        ["retain 1001", { retain: 1001 }, /snapshot\.retain/],
        ["retain 1.5", { retain: 1.5 }, /snapshot\.retain/],
        ["retain NaN", { retain: NaN }, /snapshot\.retain/],
        ["upper-case cluster", { clusterName: "Prod" }, /snapshot\.clusterName must be a DNS label/],
        ["cluster with _", { clusterName: "a_b" }, /snapshot\.clusterName/],
        ["empty member", { memberName: "" }, /snapshot\.memberName/],
        ["member with a slash", { memberName: "../x" }, /snapshot\.memberName/],
        ["relative dir", { dir: "backups" }, /snapshot\.dir must be an absolute path/],
        ["dir with ..", { dir: "/var/backups/../../etc" }, /snapshot\.dir/],
        ["dir with a trailing /", { dir: "/var/backups/etcd/" }, /snapshot\.dir/],
        ["dir with a space", { dir: "/var/my backups" }, /snapshot\.dir/],
        ["dir with $", { dir: "/var/$HOME" }, /snapshot\.dir/],
        ["root dir", { dir: "/" }, /snapshot\.dir/],
        ["endpoint with a path", { endpoint: "https://10.0.0.11:2379/v3" }, /snapshot\.endpoint must be a client URL/],
        ["endpoint without a port", { endpoint: "https://10.0.0.11" }, /snapshot\.endpoint/],
        ["endpoint port 70000", { endpoint: "https://10.0.0.11:70000" }, /snapshot\.endpoint/],
        ["endpoint with a quote", { endpoint: "https://10.0.0.11':2379" }, /snapshot\.endpoint/],
        ["http without tls: null", { endpoint: "http://10.0.0.11:2379" }, /snapshot\.tls is set, so every endpoint must be https/],
        ["tls: null with https", { tls: null }, /snapshot\.tls is null/],
        ["relative key", { tls: { cacert: "/a/ca.crt", cert: "/a/c.crt", key: "c.key" } }, /snapshot\.tls\.key/],
        ["bad version", { version: "latest" }, /snapshot\.version is not an etcd version/],
        ["empty off-host command", { offHostCommand: "  " }, /snapshot\.offHostCommand must be a non-empty/],
        ["off-host command with NUL", { offHostCommand: "cp\0x" }, /snapshot\.offHostCommand must not contain a NUL/],
        ["relative etcdctl", { etcdctl: "etcdctl" }, /snapshot\.etcdctl/],
        ["etcdutl with ;", { etcdutl: "/usr/bin/etcdutl;reboot" }, /snapshot\.etcdutl/],
        ["lock in a relative path", { lockFile: "lock" }, /snapshot\.lockFile/],
        ["negative lock wait", { lockWaitSeconds: -1 }, /snapshot\.lockWaitSeconds/],
        ["zero snapshot timeout", { snapshotTimeoutSeconds: 0 }, /snapshot\.snapshotTimeoutSeconds/],
        ["S3 over http", { s3: { ...S3_OK, endpoint: "http://s3.lan:9000" } }, /snapshot\.s3\.endpoint must be https:\/\/host\[:port\] without a path/],
        ["S3 endpoint with a path", { s3: { ...S3_OK, endpoint: "https://s3.lan/bucket" } }, /snapshot\.s3\.endpoint/],
        ["S3 bucket upper-case", { s3: { ...S3_OK, bucket: "Backups" } }, /snapshot\.s3\.bucket must be an S3 bucket name/],
        ["S3 bucket with ..", { s3: { ...S3_OK, bucket: "a..b" } }, /snapshot\.s3\.bucket/],
        ["S3 prefix without a trailing /", { s3: { ...S3_OK, prefix: "etcd" } }, /snapshot\.s3\.prefix must be empty or path segments/],
        ["S3 prefix with //", { s3: { ...S3_OK, prefix: "a//b/" } }, /snapshot\.s3\.prefix/],
        ["S3 region with a space", { s3: { ...S3_OK, region: "us east" } }, /snapshot\.s3\.region/],
        ["S3 relative auth file", { s3: { ...S3_OK, authFile: "s3.curlrc" } }, /snapshot\.s3\.authFile/],
        ["S3 0 attempts", { s3: { ...S3_OK, attempts: 0 } }, /snapshot\.s3\.attempts must be an integer from 1 to 10/],
        ["S3 retainCount 0", { s3: { ...S3_OK, retainCount: 0 } }, /snapshot\.s3\.retainCount/],
    ];
    it.each(snap)("snapshot: %s", (_label, patch, message) => {
        const s = { ...SNAP_BASE, ...patch } as SnapshotSettings;
        expect(() => renderSnapshotScript(s)).toThrow(message);
        expect(() => renderSnapshotService(s)).toThrow(message);
    });

    const timers: [string, string | number, RegExp][] = [
        ["a newline", "daily\nExecStartPre=/bin/sh -c reboot", /snapshotTimer\.onCalendar/],
        ["a backslash", "daily\\", /snapshotTimer\.onCalendar/],
        ["a % specifier", "%H:00", /snapshotTimer\.onCalendar/],
        ["a quote", "'daily'", /snapshotTimer\.onCalendar/],
        ["a leading space", " daily", /snapshotTimer\.onCalendar/],
        ["empty", "", /snapshotTimer\.onCalendar/],
        ["too long", "*".repeat(257), /snapshotTimer\.onCalendar/],
    ];
    it.each(timers)("timer: onCalendar with %s", (_label, cal, message) => {
        expect(() => renderSnapshotTimer({ onCalendar: String(cal) })).toThrow(message);
    });
    it.each([-1, 1.5, 86401])("timer: randomizedDelaySec %p", (delay) => {
        expect(() => renderSnapshotTimer({ onCalendar: "daily", randomizedDelaySec: delay })).toThrow(/snapshotTimer\.randomizedDelaySec must be an integer from 0 to 86400/);
    });

    const defrag: [string, Partial<DefragSettings>, RegExp][] = [
        ["no endpoints", { endpoints: [] }, /defrag\.endpoints must list 1 to 99/],
        ["a repeated endpoint", { endpoints: ["https://10.0.0.11:2379", "https://10.0.0.11:2379"] }, /defrag\.endpoints must not repeat/],
        ["an endpoint with a space", { endpoints: ["https://10.0.0.11:2379", "https://10.0.0.12:2379 --insecure-skip-tls-verify"] }, /defrag\.endpoints\[1\] must be a client URL/],
        ["mixed schemes", { endpoints: ["https://10.0.0.11:2379", "http://10.0.0.12:2379"] }, /defrag\.tls is set, so every endpoint must be https/],
        ["tls: null with https", { tls: null }, /defrag\.tls is null/],
        ["relative etcdctl", { etcdctl: "bin/etcdctl" }, /defrag\.etcdctl/],
        ["zero health attempts", { healthAttempts: 0 }, /defrag\.healthAttempts must be an integer from 1/],
        ["unbounded health attempts", { healthAttempts: 1e9 }, /defrag\.healthAttempts/],
        ["fractional interval", { healthIntervalSeconds: 0.5 }, /defrag\.healthIntervalSeconds/],
        ["zero defrag timeout", { defragTimeoutSeconds: 0 }, /defrag\.defragTimeoutSeconds/],
        ["zero health timeout", { healthTimeoutSeconds: 0 }, /defrag\.healthTimeoutSeconds/],
        ["zero check timeout", { healthCheckTimeoutSeconds: 0 }, /defrag\.healthCheckTimeoutSeconds/],
    ];
    it.each(defrag)("defrag: %s", (_label, patch, message) => {
        expect(() => renderDefragScript({ ...DEFRAG_BASE, ...patch })).toThrow(message);
    });
});

// ---------------------------------------------------------------------------------------------------------
// The health rule for etcdctl 3.5+ output (not producible with the 3.4 etcdctl on this machine)
// ---------------------------------------------------------------------------------------------------------

describe("defrag health rule", () => {
    const script = renderDefragScript(DEFRAG_BASE);
    const fn = /\nep_ok\(\) \{\n[\s\S]*?\n\}\n/.exec(script)![0];
    const ok = (ep: string, output: string) => runTool("bash", ["-c", `set -euo pipefail\n${fn}\nif ep_ok "$1" "$2"; then echo yes; else echo no; fi`, "x", ep, output]).stdout.trim();
    const ep = "https://10.0.0.11:2379";

    it("accepts a healthy endpoint", () => {
        expect(ok(ep, `${ep} is healthy: successfully committed proposal: took = 1.2ms`)).toBe("yes");
    });
    it("accepts an endpoint unhealthy only because of a NOSPACE alarm (etcdctl 3.5+)", () => {
        expect(ok(ep, `${ep} is unhealthy: failed to commit proposal: Active Alarm(s): NOSPACE `)).toBe("yes");
        expect(ok(ep, `${ep} is unhealthy: failed to commit proposal: Active Alarm(s): NOSPACE NOSPACE `)).toBe("yes");
    });
    it("refuses any other problem, another alarm, or another endpoint's line", () => {
        expect(ok(ep, `${ep} is unhealthy: failed to commit proposal: context deadline exceeded`)).toBe("no");
        expect(ok(ep, `${ep} is unhealthy: failed to commit proposal: Active Alarm(s): NOSPACE CORRUPT `)).toBe("no");
        expect(ok(ep, `${ep} is unhealthy: failed to commit proposal: Active Alarm(s): CORRUPT `)).toBe("no");
        expect(ok(ep, `${ep}0 is healthy: successfully committed proposal: took = 1.2ms`)).toBe("no");
        expect(ok(ep, "")).toBe("no");
    });
});

// ---------------------------------------------------------------------------------------------------------
// Real runs against etcd 3.4
// ---------------------------------------------------------------------------------------------------------

describe("against a real etcd", () => {
    let tmp: string;
    const etcdA = () => members[0];
    const etcdB = () => members[1];
    let members: TestEtcd[] = [];

    beforeAll(async () => {
        needTool("etcd", "etcd-server");
        needTool("etcdctl", "etcd-client");
        needTool("flock", "util-linux");
        needTool("sha256sum", "coreutils");
        const listening = spawnSync("ss", ["-ltnH"], { encoding: "utf8" }).stdout ?? "";
        if (listening.includes("127.77.9.")) throw new Error("127.77.9.x already has listeners; this test needs them free");
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-maintenance-"));
        members = [new TestEtcd(A, path.join(tmp, "data-a")), new TestEtcd(B, path.join(tmp, "data-b"), [`--quota-backend-bytes=${1024 * 1024}`])];
        await Promise.all(members.map((m) => m.start()));
        for (let i = 1; i <= 5; i++) expect(etcdA().ctl(["put", `/app/key${i}`, `value${i}`]).stdout.trim()).toBe("OK");
    });

    afterAll(async () => {
        for (const m of members) await m.stop();
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    describe("snapshot script", () => {
        let dir: string;
        let lock: string;
        const base = (): SnapshotSettings => ({
            clusterName: "prod",
            memberName: "etcd1",
            version: "3.4.23",
            endpoint: EP_A,
            dir,
            retain: 2,
            etcdctl: ETCDCTL,
            tls: null,
            lockFile: lock,
            lockWaitSeconds: 5,
        });
        const SNAP = /^prod_etcd1_\d{8}T\d{6}Z\.db$/;
        const snaps = () => fs.readdirSync(dir).filter((f) => SNAP.test(f)).sort();
        const SUMMARY = /^snapshot (\S+) revision (\d+) keys (\d+) bytes (\d+) sha256 ([0-9a-f]{64})$/m;
        /** Files that are not this member's snapshots, with their content, mode and mtime. */
        const others: Record<string, string> = {
            "notes.txt": "keep me\n",
            "prod_etcd9_20200101T000000Z.db": "another member's snapshot\n",
            "prod_etcd9_20200101T000000Z.db.sha256": "x\n",
            "staging_etcd1_20200101T000000Z.db": "another cluster's snapshot\n",
            "prod_etcd1_latest.db": "not a timestamped name\n",
            "prod_etcd1_pre-upgrade_20200101T000000Z.db": "a tagged (pre-upgrade) snapshot, pruned on its own\n",
            "prod_etcd1_20200101T000000Z.db.bak": "not a .db\n",
            ".prod_etcd9_partial.abcdef": "another member's temp file\n",
        };
        const fingerprint = () =>
            Object.keys(others).map((f) => {
                const st = fs.statSync(path.join(dir, f));
                return [f, fs.readFileSync(path.join(dir, f), "utf8"), st.mode, st.mtimeMs];
            });
        let before: unknown;

        beforeAll(() => {
            dir = path.join(tmp, "backups");
            lock = path.join(tmp, "snapshot.lock");
            fs.mkdirSync(dir, { mode: 0o700 });
            for (const [f, content] of Object.entries(others)) fs.writeFileSync(path.join(dir, f), content);
            // A leftover of a killed run of this member: cleaned up by the next run.
            fs.writeFileSync(path.join(dir, ".prod_etcd1_partial.Zz0123"), "half a snapshot");
            before = fingerprint();
        });

        it("takes a verified snapshot with a matching .sha256, mode 0600 root, and prints one summary line", () => {
            const r = runScript(path.join(tmp, "snap.sh"), renderSnapshotScript(base()));
            expect(r.stderr).toBe("");
            expect(r.status).toBe(0);
            const m = SUMMARY.exec(r.stdout)!;
            expect(m).not.toBeNull();
            const [, file, revision, keys, bytes, sum] = m;
            expect(path.dirname(file)).toBe(dir);
            expect(path.basename(file)).toMatch(SNAP);
            expect(Number(revision)).toBe(etcdA().revision());
            expect(Number(keys)).toBeGreaterThanOrEqual(5);
            const st = fs.statSync(file);
            expect(Number(bytes)).toBe(st.size);
            expect(st.size).toBeGreaterThan(0);
            expect(st.mode & 0o777).toBe(0o600);
            expect(st.uid).toBe(0);
            expect(sha256(file)).toBe(sum);
            expect(fs.readFileSync(`${file}.sha256`, "utf8")).toBe(`${sum}  ${path.basename(file)}\n`);
            expect(fs.statSync(`${file}.sha256`).mode & 0o777).toBe(0o600);
            expect(spawnSync("sha256sum", ["-c", `${path.basename(file)}.sha256`], { cwd: dir, encoding: "utf8" }).status).toBe(0);
            // etcd itself reads it back: the snapshot holds the keys.
            const status = JSON.parse(execFileSync(ETCDCTL, ["snapshot", "status", "-w", "json", file], { encoding: "utf8" }));
            expect(status.revision).toBe(Number(revision));
            expect(r.stdout).toMatch(/^pruned 0 older snapshot\(s\) of prod\/etcd1, keeping the newest 2$/m);
            expect(r.stdout.trim().split("\n")).toHaveLength(2);
            expect(fs.existsSync(path.join(dir, ".prod_etcd1_partial.Zz0123"))).toBe(false);
        });

        it("keeps only the newest 2 of this member over several runs, deleting their .sha256 too, touching nothing else", () => {
            const first = snaps();
            expect(first).toHaveLength(1);
            // An old snapshot of this member (as if left by an earlier retention): pruned with its .sha256.
            const ancient = "prod_etcd1_20000101T000000Z.db";
            fs.writeFileSync(path.join(dir, ancient), "old");
            fs.writeFileSync(path.join(dir, `${ancient}.sha256`), "old");
            const taken: string[] = [];
            for (let i = 0; i < 3; i++) {
                expect(etcdA().ctl(["put", `/app/run${i}`, "x"]).status).toBe(0);
                const r = runScript(path.join(tmp, "snap.sh"), renderSnapshotScript(base()));
                expect(r.stderr).toBe("");
                expect(r.status).toBe(0);
                taken.push(path.basename(SUMMARY.exec(r.stdout)![1]));
                expect(r.stdout).toMatch(/^pruned 1 older snapshot\(s\)/m);
            }
            expect(new Set([...first, ...taken]).size).toBe(4);
            expect(fs.existsSync(path.join(dir, ancient))).toBe(false);
            expect(fs.existsSync(path.join(dir, `${ancient}.sha256`))).toBe(false);
            expect(snaps()).toEqual(taken.slice(-2).sort());
            const sums = fs.readdirSync(dir).filter((f) => /^prod_etcd1_.*\.db\.sha256$/.test(f));
            expect(sums.sort()).toEqual(taken.slice(-2).map((f) => `${f}.sha256`).sort());
            for (const f of snaps()) expect(spawnSync("sha256sum", ["-c", `${f}.sha256`], { cwd: dir }).status).toBe(0);
            expect(fingerprint()).toEqual(before);
            expect(fs.readdirSync(dir).filter((f) => f.includes("partial") && !f.startsWith(".prod_etcd9"))).toEqual([]);
        });

        it("runs the off-host command with the snapshot and its .sha256", () => {
            const remote = path.join(tmp, "remote");
            fs.mkdirSync(remote);
            const r = runScript(path.join(tmp, "snap.sh"), renderSnapshotScript({ ...base(), offHostCommand: `cp -- "$1" "$2" ${remote}/` }));
            expect(r.stderr).toBe("");
            expect(r.status).toBe(0);
            expect(r.stdout).toMatch(/^off-host copy done$/m);
            const file = SUMMARY.exec(r.stdout)![1];
            expect(fs.readdirSync(remote).sort()).toEqual([path.basename(file), `${path.basename(file)}.sha256`]);
            expect(spawnSync("sha256sum", ["-c", `${path.basename(file)}.sha256`], { cwd: remote }).status).toBe(0);
            expect(fingerprint()).toEqual(before);
        });

        it("fails loudly when the off-host command fails, keeping the verified local snapshot", () => {
            const r = runScript(path.join(tmp, "snap.sh"), renderSnapshotScript({ ...base(), offHostCommand: 'echo "cannot reach the vault" >&2; exit 7' }));
            expect(r.status).toBe(OFF_HOST_FAILED_EXIT);
            expect(r.stderr).toContain("cannot reach the vault");
            const file = SUMMARY.exec(r.stdout)![1];
            expect(r.stderr).toContain(`ERROR: the off-host copy command failed (exit 7; 124 is the 3600s timeout): the local snapshot ${file} is kept`);
            expect(r.stdout).not.toContain("off-host copy done");
            expect(snaps()).toContain(path.basename(file));
            expect(spawnSync("sha256sum", ["-c", `${path.basename(file)}.sha256`], { cwd: dir }).status).toBe(0);
            expect(snaps()).toHaveLength(2);
        });

        it("never prints the off-host command", () => {
            const r = runScript(path.join(tmp, "snap.sh"), renderSnapshotScript({ ...base(), offHostCommand: 'SECRET_TOKEN_abc123=1; test -n "$SECRET_TOKEN_abc123"' }));
            expect(r.status).toBe(0);
            expect(r.stdout + r.stderr).not.toContain("SECRET_TOKEN_abc123");
        });

        it("bounds the off-host command in time", () => {
            const r = runScript(path.join(tmp, "snap.sh"), renderSnapshotScript({ ...base(), offHostCommand: "sleep 30", offHostTimeoutSeconds: 1 }));
            expect(r.status).toBe(OFF_HOST_FAILED_EXIT);
            expect(r.stderr).toMatch(/exit 124/);
            expect(r.seconds).toBeLessThan(15);
        });

        it("does not start while another run holds the lock (bounded wait)", async () => {
            const holder = spawn("bash", ["-c", 'exec 9>>"$1"; flock 9; echo locked; read -r _', "holder", lock], { stdio: ["pipe", "pipe", "ignore"] });
            try {
                await new Promise<void>((resolve, reject) => {
                    const timer = setTimeout(() => reject(new Error("the lock holder did not take the lock within 5 s")), 5000);
                    holder.stdout!.on("data", (d: Buffer) => {
                        if (d.toString().includes("locked")) {
                            clearTimeout(timer);
                            resolve();
                        }
                    });
                });
                const count = snaps().length;
                const r = runScript(path.join(tmp, "snap.sh"), renderSnapshotScript({ ...base(), lockWaitSeconds: 1 }));
                expect(r.status).toBe(1);
                expect(r.stderr).toContain(`another etcd-ha snapshot run still holds ${lock} after 1s: not starting a second one`);
                expect(r.seconds).toBeLessThan(10);
                expect(snaps()).toHaveLength(count);
            } finally {
                holder.stdin!.end();
                const exited = new Promise((r) => holder.once("exit", r));
                let timer: NodeJS.Timeout | undefined;
                await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 3000)))]);
                clearTimeout(timer);
                if (holder.exitCode === null && holder.signalCode === null && holder.pid !== undefined) process.kill(holder.pid, "SIGKILL");
            }
        });

        /** A fake etcdctl: `snapshot save` writes `content`; `snapshot status` prints `status` when given; the real etcdctl does the rest. */
        const fakeCtl = (name: string, content: string, status?: string) => {
            const file = path.join(tmp, name);
            const statusCase = status === undefined ? "" : `  *" snapshot status "*) printf '%s\\n' '${status}'; exit 0 ;;\n`;
            fs.writeFileSync(file, `#!/bin/bash\ncase " $* " in\n  *" snapshot save "*) printf '%s' ${JSON.stringify(content)} > "\${!#}"; exit 0 ;;\n${statusCase}esac\nexec ${ETCDCTL} "$@"\n`, {
                mode: 0o700,
            });
            return file;
        };

        it.each([
            ["an empty file", "", undefined],
            ["garbage", "this is not a bolt database ".repeat(200), undefined],
            ["reported without a revision", "x", '{"hash":1,"totalKey":3,"totalSize":4096}'],
            ["reported with no keys", "x", '{"hash":1,"revision":5,"totalKey":0,"totalSize":4096}'],
            ["reported without json", "x", "Snapshot is fine, trust me"],
        ])("refuses a snapshot that is %s, keeping nothing", (_label, content, status) => {
            const listing = fs.readdirSync(dir).sort();
            const r = runScript(path.join(tmp, "snap.sh"), renderSnapshotScript({ ...base(), etcdctl: fakeCtl("fake-etcdctl", content, status) }));
            expect(r.status).toBe(1);
            expect(r.stderr).toMatch(/etcdctl snapshot status (refused|did not verify) the new snapshot[^\n]*: not keeping it/);
            expect(r.stdout).toBe("");
            expect(fs.readdirSync(dir).sort()).toEqual(listing);
        });

        it("keeps the snapshot of a new cluster that has had no write (revision 0, as real etcd reports it)", () => {
            const r = runScript(path.join(tmp, "snap.sh"), renderSnapshotScript({ ...base(), etcdctl: fakeCtl("fake-etcdctl-new", "x", '{"hash":1,"revision":0,"totalKey":5,"totalSize":32768}') }));
            expect(r.stderr).toBe("");
            expect(r.status).toBe(0);
            expect(r.stdout).toMatch(/^snapshot \S+ revision 0 keys 5 bytes 1 sha256 [0-9a-f]{64}$/m);
        });

        it("verifies with etcdutl for a 3.5 member", () => {
            const log = path.join(tmp, "etcdutl.log");
            const etcdutl = path.join(tmp, "fake-etcdutl");
            // Stands in for etcdutl: records its arguments, then lets the real (3.4) etcdctl read the file.
            fs.writeFileSync(etcdutl, `#!/bin/bash\nprintf '%s\\n' "$*" >> ${log}\nexec ${ETCDCTL} "$@"\n`, { mode: 0o700 });
            const r = runScript(path.join(tmp, "snap.sh"), renderSnapshotScript({ ...base(), version: "3.5.21", etcdutl }));
            expect(r.stderr).toBe("");
            expect(r.status).toBe(0);
            expect(fs.readFileSync(log, "utf8")).toMatch(new RegExp(`^snapshot status -w json ${dir.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/\\.prod_etcd1_partial\\.\\w{6}\\n$`));
        });

        it("the pre-upgrade snapshot of a 3.4 member bound for 3.5 (no etcdutl on the host yet) verifies with etcdctl", () => {
            const r = runScript(path.join(tmp, "snap.sh"), renderSnapshotScript({ ...base(), version: "3.5.21", etcdutl: path.join(tmp, "no-etcdutl-here"), tag: "pre-upgrade" }));
            expect(r.stderr).toBe("");
            expect(r.status).toBe(0);
            expect(r.stdout).toMatch(/^snapshot \S+_pre-upgrade_\d{8}T\d{6}Z\.db revision \d+ keys \d+ bytes \d+ sha256 [0-9a-f]{64}$/m);
        });

        it("fails within its bounds when the member is unreachable, keeping nothing", () => {
            const listing = fs.readdirSync(dir).sort();
            // etcdctl 3.4 keeps retrying an unreachable member past --dial-timeout: the script's own bound ends it.
            const r = runScript(path.join(tmp, "snap.sh"), renderSnapshotScript({ ...base(), endpoint: UNREACHABLE, snapshotTimeoutSeconds: 3 }));
            expect(r.status).toBe(1);
            expect(r.stderr).toMatch(new RegExp(`^etcdctl snapshot save from ${UNREACHABLE.replace(/\./g, "\\.")} (timed out after 3s|failed \\(exit \\d+\\)): no snapshot taken$`, "m"));
            expect(r.seconds).toBeLessThan(15);
            expect(fs.readdirSync(dir).sort()).toEqual(listing);
        });

        it("creates a missing snapshot dir 0700", () => {
            const fresh = path.join(tmp, "new", "backups");
            const r = runScript(path.join(tmp, "snap.sh"), renderSnapshotScript({ ...base(), dir: fresh, retain: 1 }));
            expect(r.status).toBe(0);
            expect(fs.statSync(fresh).mode & 0o777).toBe(0o700);
            expect(fs.readdirSync(fresh).filter((f) => SNAP.test(f))).toHaveLength(1);
        });

        it("left the other files alone through every run", () => {
            expect(fingerprint()).toEqual(before);
        });
    });

    describe("snapshot script with an S3 store (a real versitygw over TLS)", () => {
        let dir: string;
        let store: ObjectStore;
        const BUCKET = "etcd-backups";
        const s3 = (over: Partial<S3Target> = {}): S3Target => ({
            endpoint: store.endpoint,
            bucket: BUCKET,
            prefix: "etcd/",
            region: store.region,
            authFile: store.authFile,
            caFile: store.caFile,
            retainCount: 3,
            retainDays: 30,
            attempts: 2,
            backoffSeconds: 1,
            requestTimeoutSeconds: 10,
            budgetSeconds: 120,
            ...over,
        });
        const settings = (over: Partial<S3Target> = {}): SnapshotSettings => ({
            clusterName: "prod",
            memberName: "etcd1",
            version: "3.4.23",
            endpoint: EP_A,
            dir,
            retain: 5,
            etcdctl: ETCDCTL,
            tls: null,
            lockFile: path.join(tmp, "s3-snapshot.lock"),
            lockWaitSeconds: 5,
            s3: s3(over),
        });
        const run = (over: Partial<S3Target> = {}) => runScript(path.join(tmp, "snap-s3.sh"), renderSnapshotScript(settings(over)), [], 120_000);
        /** The bucket's objects under `etcd/` (the store keeps each as a file), sorted. */
        const objects = () => {
            const root = path.join(store.dataDir, BUCKET);
            const out: string[] = [];
            const walk = (d: string) => {
                for (const e of fs.readdirSync(d, { withFileTypes: true })) {
                    const p = path.join(d, e.name);
                    if (e.isDirectory()) walk(p);
                    else out.push(path.relative(root, p));
                }
            };
            walk(root);
            return out.sort();
        };
        const mine = () => objects().filter((o) => /^etcd\/prod\/prod_etcd1_\d{8}T\d{6}Z\.db$/.test(o));
        const UPLOADED = /^uploaded s3:\/\/etcd-backups\/(etcd\/prod\/prod_etcd1_\d{8}T\d{6}Z\.db) sha256 ([0-9a-f]{64}) \(read back\)$/gm;

        beforeAll(async () => {
            dir = path.join(tmp, "backups-s3");
            fs.mkdirSync(dir, { mode: 0o700 });
            store = await startObjectStore("127.66.8.2", 9443, BUCKET);
        }, 1_500_000);
        afterAll(() => removeObjectStore(store));

        it("uploads the new snapshot, reads it back, and marks it: the store holds the same bytes", () => {
            const r = run();
            expect(r.stderr).toBe("");
            expect(r.status).toBe(0);
            const up = [...r.stdout.matchAll(UPLOADED)];
            expect(up).toHaveLength(1);
            const [, key, sum] = up[0];
            const local = path.join(dir, path.basename(key));
            expect(sha256(local)).toBe(sum);
            expect(sha256(path.join(store.dataDir, BUCKET, key))).toBe(sum);
            expect(fs.readFileSync(`${local}.s3`, "utf8")).toBe(`s3://${BUCKET}/${key} ${sum}\n`);
            expect(r.stdout).toMatch(/^off-host: 1 uploaded, 0 deleted from s3:\/\/etcd-backups\/etcd\/prod\/prod_etcd1_, keeping the newest 3 of at most 30 days$/m);
            // Nothing of the keys in the script or its output.
            expect(renderSnapshotScript(settings())).not.toContain(store.secret);
            expect(r.stdout + r.stderr).not.toContain(store.secret);
        });

        it("with the store down: exit 3 after every try, the snapshot kept locally, nothing deleted; the next run backfills it", async () => {
            const before = objects();
            store.stop();
            let down: ReturnType<typeof run>;
            try {
                down = run();
            } finally {
                // Started again whatever happened, for the tests after this one.
                await store.start();
            }
            expect(down.status).toBe(OFF_HOST_FAILED_EXIT);
            expect(down.stderr).toMatch(/try 1 of 2 failed; trying again in 1s/);
            expect(down.stderr).toMatch(/^ERROR: the off-host copy of prod_etcd1_\d{8}T\d{6}Z\.db to s3:\/\/etcd-backups\/etcd\/prod\/ failed after 2 try\(s\)/m);
            const missed = SNAPSHOT_LINE.exec(down.stdout)![1];
            expect(fs.existsSync(missed)).toBe(true);
            expect(fs.existsSync(`${missed}.s3`)).toBe(false);
            expect(objects()).toEqual(before);
            // Back up: the missed snapshot and the new one, oldest first.
            const again = run();
            expect(again.stderr).toBe("");
            expect(again.status).toBe(0);
            const keys = [...again.stdout.matchAll(UPLOADED)].map((m) => m[1]);
            expect(keys).toHaveLength(2);
            expect(keys[0]).toBe(`etcd/prod/${path.basename(missed)}`);
            expect(keys[0] < keys[1]).toBe(true);
            for (const k of keys) expect(fs.existsSync(path.join(dir, `${path.basename(k)}.s3`))).toBe(true);
        }, 180_000);

        it("keeps the newest retainCount of this member in the bucket and drops older than retainDays; other names untouched", () => {
            const put = (key: string) => {
                fs.mkdirSync(path.dirname(path.join(store.dataDir, BUCKET, key)), { recursive: true });
                fs.writeFileSync(path.join(store.dataDir, BUCKET, key), key);
            };
            const foreign = ["etcd/prod/prod_etcd9_20200101T000000Z.db", "etcd/staging/staging_etcd1_20200101T000000Z.db", "etcd/prod/prod_etcd1_pre-upgrade_20200101T000000Z.db", "etcd/prod/notes.txt"];
            for (const k of foreign) put(k);
            const ancient = "etcd/prod/prod_etcd1_20200101T000000Z.db";
            put(ancient);
            const r = run();
            expect(r.stderr).toBe("");
            expect(r.status).toBe(0);
            const uploaded = [...r.stdout.matchAll(UPLOADED)].map((m) => m[1]);
            expect(uploaded).toHaveLength(1);
            // 3 of this member's before this run + the ancient one + the new one: the ancient one is past 30 days
            // and the oldest recent one past the count.
            expect(r.stdout).toMatch(/^off-host: 1 uploaded, 2 deleted from/m);
            expect(mine()).toHaveLength(3);
            expect(mine()).not.toContain(ancient);
            expect(mine()[2]).toBe(uploaded[0]);
            for (const k of foreign) expect(objects()).toContain(k);
            // Locally: retain 5, and each marker goes with its snapshot.
            const local = fs.readdirSync(dir);
            const dbs = local.filter((f) => /^prod_etcd1_\d{8}T\d{6}Z\.db$/.test(f));
            expect(local.filter((f) => f.endsWith(".s3")).map((f) => f.slice(0, -3)).sort()).toEqual(dbs.sort());

            // By age alone: with room for 10, only the object past 30 days goes.
            put(ancient);
            const aged = run({ retainCount: 10 });
            expect(aged.status).toBe(0);
            expect(aged.stdout).toMatch(/^off-host: 1 uploaded, 1 deleted from/m);
            expect(mine()).not.toContain(ancient);
            expect(mine()).toHaveLength(4);
        }, 120_000);
    });

    describe("defrag script", () => {
        const settings = (endpoints: string[], extra: Partial<DefragSettings> = {}): DefragSettings => ({
            endpoints,
            tls: null,
            etcdctl: ETCDCTL,
            healthAttempts: 5,
            healthIntervalSeconds: 1,
            healthTimeoutSeconds: 20,
            healthCheckTimeoutSeconds: 2,
            ...extra,
        });
        /** Puts ~800 KB and deletes it, so there is free space for a defrag to give back. */
        const churn = (m: TestEtcd) => {
            const value = "v".repeat(8000);
            const ops = Array.from({ length: 100 }, (_, i) => `put /churn/${i} ${value}`).join("\n");
            expect(m.ctl(["txn"], `\n${ops}\n\n\n`).status).toBe(0);
            expect(m.ctl(["del", "--prefix", "/churn/"]).stdout.trim()).toBe("100");
        };
        /** An etcdctl wrapper that logs each call's subcommand and endpoints, failing `defrag` on `failOn`. */
        const loggingCtl = (name: string, failOn?: string) => {
            const file = path.join(tmp, name);
            const log = `${file}.log`;
            fs.writeFileSync(
                file,
                `#!/bin/bash
ep=""; cmd=""
for a in "$@"; do
  case $a in
    --endpoints=*) ep=\${a#--endpoints=} ;;
    --*) ;;
    *) cmd="$cmd $a" ;;
  esac
done
printf '%s %s\\n' "\${cmd# }" "$ep" >> ${log}
if [ "\${cmd# }" = defrag ] && [ "$ep" = ${JSON.stringify(failOn ?? "")} ]; then
  echo "Failed to defragment etcd member[$ep] (injected by the test)" >&2
  exit 1
fi
exec ${ETCDCTL} "$@"
`,
                { mode: 0o700 },
            );
            return { file, log: () => fs.readFileSync(log, "utf8").trim().split("\n") };
        };
        const SIZE_LINE = (ep: string) => new RegExp(`^\\[1/1\\] defragmented ${ep.replace(/\./g, "\\.")}: db size (\\d+) bytes \\(in use \\d+\\) -> (\\d+) bytes \\(in use \\d+\\)$`, "m");

        it("compacts to the current revision and defragments the one member, printing the db size before and after", () => {
            churn(etcdA());
            const rev = etcdA().revision();
            const r = runScript(path.join(tmp, "defrag.sh"), renderDefragScript(settings([EP_A])), ["--compact"]);
            expect(r.stderr).toBe("");
            expect(r.status).toBe(0);
            expect(r.stdout).toContain(`compacted to revision ${rev}`);
            expect(r.stdout).toMatch(new RegExp(`^\\[1/1\\] defragmenting ${EP_A.replace(/\./g, "\\.")}: db size \\d+ bytes \\(in use \\d+\\)$`, "m"));
            const [, before, after] = SIZE_LINE(EP_A).exec(r.stdout)!;
            expect(Number(after)).toBeLessThan(Number(before));
            expect(r.stdout).toContain(`defragmented 1 member(s) one at a time: ${EP_A}`);
            expect(r.stdout).toContain("no NOSPACE alarm active");
            // The data is intact.
            expect(etcdA().ctl(["get", "/app/key3", "--print-value-only"]).stdout.trim()).toBe("value3");
        });

        it("defragments two members strictly one at a time, checking the whole list's health before and after each", () => {
            const ctl = loggingCtl("log-etcdctl");
            const r = runScript(path.join(tmp, "defrag.sh"), renderDefragScript(settings([EP_A, EP_B], { etcdctl: ctl.file })));
            expect(r.stderr).toBe("");
            expect(r.status).toBe(0);
            const both = `${EP_A},${EP_B}`;
            expect(ctl.log()).toEqual([
                `endpoint health ${both}`,
                `endpoint status -w json ${EP_A}`,
                `defrag ${EP_A}`,
                `endpoint health ${both}`,
                `endpoint status -w json ${EP_A}`,
                `endpoint status -w json ${EP_B}`,
                `defrag ${EP_B}`,
                `endpoint health ${both}`,
                `endpoint status -w json ${EP_B}`,
                `alarm list ${both}`,
            ]);
            expect(r.stdout).toMatch(/^\[2\/2\] defragmented http:\/\/127\.77\.9\.2:2379: db size \d+ bytes/m);
        });

        it("stops at the first failed defrag, naming the member and what was done", () => {
            const ctl = loggingCtl("failing-etcdctl", EP_A);
            const r = runScript(path.join(tmp, "defrag.sh"), renderDefragScript(settings([EP_A, EP_B], { etcdctl: ctl.file })));
            expect(r.status).toBe(1);
            expect(r.stderr).toContain(`defrag of ${EP_A} failed; stopping before the other members (defragmented so far: none):`);
            expect(r.stderr).toContain("injected by the test");
            expect(ctl.log().filter((l) => l.startsWith("defrag"))).toEqual([`defrag ${EP_A}`]);
        });

        it("refuses to start, within its bounds, when one endpoint is unreachable", () => {
            const r = runScript(path.join(tmp, "defrag.sh"), renderDefragScript(settings([EP_A, UNREACHABLE], { healthAttempts: 2 })));
            expect(r.status).toBe(1);
            expect(r.stderr).toMatch(new RegExp(`before defragmenting: not every endpoint is healthy after 2 attempt\\(s\\) in \\d+s; unhealthy: ${UNREACHABLE.replace(/\./g, "\\.")}\\n`));
            expect(r.stderr).toContain("refusing to defragment: the cluster must be healthy first; nothing was changed");
            expect(r.stdout).not.toContain("defragmenting");
            expect(r.seconds).toBeLessThan(25);
        });

        /** An etcdctl that answers `alarm list` with `alarmList` (or fails it when null) and logs `alarm disarm` instead of running it. */
        const alarmCtl = (name: string, alarmList: string[] | null) => {
            const file = path.join(tmp, name);
            const list = alarmList === null ? `echo "Error: injected alarm list failure" >&2; exit 1` : `printf '%s\\n' ${alarmList.map((l) => JSON.stringify(l)).join(" ")}; exit 0`;
            fs.writeFileSync(file, `#!/bin/bash\ncase " $* " in\n  *" alarm list "*) ${list} ;;\n  *" alarm disarm "*) echo disarm >> ${file}.log; exit 0 ;;\nesac\nexec ${ETCDCTL} "$@"\n`, { mode: 0o700 });
            return { file, disarmed: () => fs.existsSync(`${file}.log`) };
        };

        it("never disarms when another alarm (CORRUPT) is active besides NOSPACE", () => {
            const ctl = alarmCtl("corrupt-etcdctl", ["memberID:1 alarm:NOSPACE ", "memberID:2 alarm:CORRUPT "]);
            const r = runScript(path.join(tmp, "defrag.sh"), renderDefragScript(settings([EP_A], { etcdctl: ctl.file })), ["--alarm-disarm"]);
            expect(r.status).toBe(1);
            expect(r.stderr).toBe(
                "WARNING: alarms other than NOSPACE are active; investigate them (this script never disarms them):\nmemberID:2 alarm:CORRUPT \nnot disarming NOSPACE: alarm disarm would clear the other alarms too\n",
            );
            expect(ctl.disarmed()).toBe(false);
        });

        it("warns about another alarm even when there is no NOSPACE alarm", () => {
            const ctl = alarmCtl("corrupt-only-etcdctl", ["memberID:2 alarm:CORRUPT "]);
            const r = runScript(path.join(tmp, "defrag.sh"), renderDefragScript(settings([EP_A], { etcdctl: ctl.file })), ["--alarm-disarm"]);
            expect(r.status).toBe(0);
            expect(r.stderr).toContain("WARNING: alarms other than NOSPACE are active");
            expect(r.stdout).toContain("no NOSPACE alarm active");
            expect(ctl.disarmed()).toBe(false);
        });

        it("fails loudly when the alarms cannot be read after defragmenting", () => {
            const ctl = alarmCtl("no-alarms-etcdctl", null);
            const r = runScript(path.join(tmp, "defrag.sh"), renderDefragScript(settings([EP_A], { etcdctl: ctl.file })));
            expect(r.status).toBe(1);
            expect(r.stdout).toContain(`defragmented 1 member(s) one at a time: ${EP_A}`);
            expect(r.stderr).toContain("every member is defragmented, but etcdctl alarm list failed, so the alarms are unknown:\nError: injected alarm list failure");
            expect(r.stdout).not.toContain("no NOSPACE alarm active");
        });

        it("refuses an unknown argument", () => {
            const r = runScript(path.join(tmp, "defrag.sh"), renderDefragScript(settings([EP_A])), ["--cluster"]);
            expect(r.status).toBe(2);
            expect(r.stderr).toMatch(/^unknown argument: --cluster\nUsage: etcd-ha-defrag \[--compact\] \[--alarm-disarm\]/);
        });

        describe("NOSPACE runbook", () => {
            beforeAll(() => {
                const value = "n".repeat(8000);
                const ops = Array.from({ length: 50 }, (_, i) => `put /fill/${i} ${value}`).join("\n");
                let filled = false;
                for (let round = 0; round < 20 && !filled; round++) {
                    const r = etcdB().ctl(["txn"], `\n${ops}\n\n\n`);
                    if (r.status !== 0) {
                        expect(r.stderr).toContain("database space exceeded");
                        filled = true;
                    }
                }
                expect(filled).toBe(true);
                expect(etcdB().alarms()).toMatch(/^memberID:\d+ alarm:NOSPACE$/);
            });

            it("without --alarm-disarm: defragments, leaves the alarm and says how to clear it", () => {
                const r = runScript(path.join(tmp, "defrag.sh"), renderDefragScript(settings([EP_B])));
                expect(r.status).toBe(0);
                expect(r.stderr).toContain("a NOSPACE alarm is still active: re-run with --compact --alarm-disarm once there is room");
                expect(etcdB().alarms()).toContain("alarm:NOSPACE");
            });

            it("--compact --alarm-disarm: compacts, defragments, disarms, and writes work again", () => {
                const rev = etcdB().revision();
                const r = runScript(path.join(tmp, "defrag.sh"), renderDefragScript(settings([EP_B])), ["--compact", "--alarm-disarm"]);
                expect(r.stderr).toBe("");
                expect(r.status).toBe(0);
                expect(r.stdout).toContain(`compacted to revision ${rev}`);
                const [, before, after] = SIZE_LINE(EP_B).exec(r.stdout)!;
                expect(Number(after)).toBeLessThan(Number(before));
                expect(r.stdout).toContain("disarmed the NOSPACE alarm; alarm list is clear");
                expect(etcdB().alarms()).toBe("");
                expect(etcdB().ctl(["put", "/after", "ok"]).stdout.trim()).toBe("OK");
            });

            it("with no alarm left, --alarm-disarm has nothing to do and a second compaction is harmless", () => {
                const r = runScript(path.join(tmp, "defrag.sh"), renderDefragScript(settings([EP_B])), ["--compact", "--alarm-disarm"]);
                expect(r.stderr).toBe("");
                expect(r.status).toBe(0);
                expect(r.stdout).toMatch(/compacted to revision \d+|already compacted at or past revision \d+/);
                expect(r.stdout).toContain("no NOSPACE alarm active");
            });
        });
    });
});
