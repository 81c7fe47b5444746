/**
 * Upgrade rules and snapshot restore.
 *  - checkUpgrade over a table of (installed, wanted) versions;
 *  - the bash upgrade guard reaches the same verdict, with the same message, for every row (run against a
 *    fake `etcd` that prints `etcd Version: X`);
 *  - the rendered scripts parse with `bash -n` and pass shellcheck with no finding;
 *  - a real restore: Debian's etcd 3.4 runs a one-member plain-HTTP cluster on 127.77.8.1 in a temp dir,
 *    1000 keys are written and a snapshot is saved, then the rendered restore script (wrapped as in
 *    production and run by `/bin/sh -c`, with a stub systemctl) restores it with a new token; etcd comes back
 *    on the restored dir with every key and a new cluster ID. A re-run changes nothing; a wrong sha256 or a
 *    running etcd is refused with nothing touched.
 */
import { execFileSync, spawnSync } from "child_process";
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { configScript, wrapScript, unwrapScript } from "../components/etcd/scripts";
import { checkUpgrade, MIN_35_FOR_36, upgradeGuardShell, UpgradeKind } from "../components/etcd/upgrade";
import { BUMP_REVISION_SINCE, DEFAULT_BUMP_REVISION, restoreScript, restoreSupport, stopForRestoreScript, RestoreOptions } from "../components/etcd/restore";
import { itLintsClean, needTool, runTool } from "./helpers/tools";
import { LocalEtcd } from "./helpers/localEtcd";


/** Expected verdicts: a kind, or a pattern the refusal must match. */
const TABLE: [from: string, to: string, expected: UpgradeKind | RegExp][] = [
    ["3.5.21", "3.5.21", "same"],
    ["3.5.1", "3.5.1", "same"],
    ["3.5.21", "3.5.22", "patch"],
    ["3.4.23", "3.4.34", "patch"],
    ["3.6.0", "3.6.15", "patch"],
    ["3.5.0", "3.5.21", "patch"],
    ["3.5.09", "3.5.10", "patch"],
    ["3.5.22", "3.5.21", "patch-downgrade"],
    ["3.6.5", "3.6.4", "patch-downgrade"],
    ["3.4.23", "3.5.21", "minor"],
    ["3.5.32", "3.6.5", "minor"],
    ["3.5.34", "3.6.0", "minor"],
    ["3.6.15", "3.7.0", "minor"],
    ["3.4.23", "3.6.5", /one minor version at a time; upgrade to 3\.5\.x first/],
    ["3.3.27", "3.5.21", /upgrade to 3\.4\.x first/],
    ["3.5.21", "3.6.5", /needs every member on 3\.5\.32 or later first; set etcd-ha:etcd\.version to 3\.5\.32/],
    ["3.5.31", "3.6.0", /3\.5\.32 or later/],
    ["3.6.5", "3.5.34", /cannot go back from 3\.6 to 3\.5 .*snapshot restore/],
    ["3.5.21", "3.4.23", /cannot go back from 3\.5 to 3\.4/],
    ["3.4.23", "3.5.1", /known-bad etcd release \(etcd 3\.5\.0-3\.5\.2/],
    ["3.5.10", "3.5.2", /known-bad/],
    ["3.5.21", "4.0.0", /changing the major version is not supported/],
    ["2.3.8", "3.0.0", /changing the major version is not supported/],
];

describe("checkUpgrade", () => {
    it.each(TABLE)("%s -> %s", (from, to, expected) => {
        const v = checkUpgrade(from, to);
        if (typeof expected === "string") {
            expect(v).toEqual({ ok: true, kind: expected });
        } else {
            expect(v.ok).toBe(false);
            if (!v.ok) {
                expect(v.reason).toMatch(expected);
                expect(v.reason).toContain("etcd-ha:etcd.version");
            }
        }
    });
    it("requires the current etcd guide's minimum before 3.6", () => {
        expect(MIN_35_FOR_36).toBe("3.5.32");
    });
    it("throws on a malformed version", () => {
        expect(() => checkUpgrade("3.5", "3.5.21")).toThrow(/not an etcd version/);
    });
});

describe("upgrade guard in bash", () => {
    let dir: string;
    beforeAll(() => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-guard-"));
    });
    afterAll(() => {
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    /** Runs the guard (as production would: wrapped, through /bin/sh -c) against a fake etcd printing `out`. */
    function guard(to: string, fakeEtcd: string | undefined) {
        const bin = path.join(dir, `etcd-${Math.random().toString(36).slice(2)}`);
        if (fakeEtcd !== undefined) fs.writeFileSync(bin, fakeEtcd, { mode: 0o755 });
        const r = runTool("/bin/sh", ["-c", wrapScript(`${upgradeGuardShell(to, bin)}\necho GUARD-PASSED\n`, "root")]);
        return { ...r, bin };
    }
    const fake = (version: string) => `#!/bin/sh\nprintf 'etcd Version: %s\\nGit SHA: 0123abc\\nGo Version: go1.22.0\\nGo OS/Arch: linux/amd64\\n' '${version}'\n`;
    const KIND_TEXT: Record<string, UpgradeKind> = { "same version": "same", "patch upgrade": "patch", "patch-downgrade": "patch-downgrade", "minor upgrade": "minor" };

    it.each(TABLE)("agrees with checkUpgrade for %s -> %s", (from, to) => {
        const want = checkUpgrade(from, to);
        const r = guard(to, fake(from));
        if (want.ok) {
            expect(r.stderr).toBe("");
            expect(r.status).toBe(0);
            const m = /^upgrade check: etcd (\S+) installed, (same version|patch upgrade|patch-downgrade|minor upgrade)/m.exec(r.stdout);
            expect(m).not.toBeNull();
            expect(KIND_TEXT[m![2]]).toBe(want.kind);
            expect(r.stdout).toMatch(/GUARD-PASSED\n$/);
        } else {
            expect(r.status).toBe(1);
            expect(r.stderr).toBe(`${want.reason}\n`);
            expect(r.stdout).not.toContain("GUARD-PASSED");
        }
    });
    it("passes a fresh install (no binary)", () => {
        const r = guard("3.5.21", undefined);
        expect(r.status).toBe(0);
        expect(r.stdout).toContain(`upgrade check: no etcd at ${r.bin}, fresh install of etcd 3.5.21`);
        expect(r.stdout).toContain("GUARD-PASSED");
    });
    it("refuses a binary whose version it cannot read", () => {
        for (const body of ["#!/bin/sh\necho 'etcd Version: 3.5.0-rc.1'\n", "#!/bin/sh\necho broken >&2\nexit 2\n", "not a program\n"]) {
            const r = guard("3.5.21", body);
            expect(r.status).toBe(1);
            expect(r.stderr).toMatch(/cannot read the version of the installed .*refusing to replace it with etcd 3\.5\.21/);
            expect(r.stdout).not.toContain("GUARD-PASSED");
        }
    });
    it("defaults to the installed binary path", () => {
        expect(upgradeGuardShell("3.5.21")).toContain("local bin='/usr/local/bin/etcd'");
    });
    it("keeps the config step from writing a unit for a release the member may not move to", () => {
        // The config step runs the same guard before any write: a refused 3.4 -> 3.6 leaves the old unit.
        const target = path.join(dir, "etcd.service");
        const bin = path.join(dir, "etcd-config-guard");
        fs.writeFileSync(target, "old unit\n", { mode: 0o600 });
        const files = [{ path: target, mode: "0600", owner: "root:root", content: "[Service]\nExecStart=/usr/local/bin/etcd --feature-gates=x\n" }];
        fs.writeFileSync(bin, fake("3.4.23"), { mode: 0o755 });
        const refused = runTool("/bin/sh", ["-c", wrapScript(configScript(files, { guard: upgradeGuardShell("3.6.5", bin) }), "root")]);
        expect(refused.status).toBe(1);
        expect(refused.stderr).toBe(`${(checkUpgrade("3.4.23", "3.6.5") as { reason: string }).reason}\n`);
        expect(fs.readFileSync(target, "utf8")).toBe("old unit\n");
        expect(fs.readdirSync(dir).filter((f) => f.startsWith("etcd.service."))).toEqual([]);
        fs.writeFileSync(bin, fake("3.5.32"), { mode: 0o755 });
        const allowed = runTool("/bin/sh", ["-c", wrapScript(configScript(files, { guard: upgradeGuardShell("3.6.5", bin) }), "root")]);
        expect(allowed.status).toBe(0);
        expect(allowed.stdout).toContain(`changed: ${target}`);
        expect(fs.readFileSync(target, "utf8")).toBe(files[0].content);
    });
});

describe("restoreSupport", () => {
    it("uses etcdctl on 3.4 and etcdutl from 3.5; bump and mark-compacted from 3.5.10", () => {
        expect(restoreSupport("3.4.23")).toEqual({ tool: "etcdctl", bumpRevision: false, markCompacted: false });
        expect(restoreSupport("3.5.9")).toEqual({ tool: "etcdutl", bumpRevision: false, markCompacted: false });
        expect(restoreSupport(BUMP_REVISION_SINCE)).toEqual({ tool: "etcdutl", bumpRevision: true, markCompacted: true });
        expect(restoreSupport("3.6.5")).toEqual({ tool: "etcdutl", bumpRevision: true, markCompacted: true });
    });
});

const SHA = "a".repeat(64);
const BASE: RestoreOptions = {
    version: "3.5.21",
    memberName: "etcd1",
    peerUrl: "https://10.0.0.1:2380",
    initialCluster: "etcd1=https://10.0.0.1:2380,etcd2=https://10.0.0.2:2380,etcd3=https://10.0.0.3:2380",
    token: "etcd-restore-20260901",
    dataDir: "/var/lib/etcd",
    snapshotPath: "/var/tmp/etcd-ha/restore.db",
    sha256: SHA,
    restoreId: `${SHA.slice(0, 16)}-etcd-restore-20260901`,
};

describe("restoreScript rendering", () => {
    it("passes bump-revision and mark-compacted from 3.5.10 only", () => {
        expect(restoreScript(BASE)).toContain(`--bump-revision ${DEFAULT_BUMP_REVISION} \\\n  --mark-compacted`);
        expect(restoreScript(BASE)).toContain("'/usr/local/bin/etcdutl'");
        const v34 = restoreScript({ ...BASE, version: "3.4.23" });
        expect(v34).not.toContain("--bump-revision");
        expect(v34).toContain("'/usr/local/bin/etcdctl'");
        expect(v34).toContain("export ETCDCTL_API=3");
        expect(restoreScript({ ...BASE, bumpRevision: 0 })).not.toContain("--bump-revision");
        expect(() => restoreScript({ ...BASE, version: "3.5.9", bumpRevision: 5 })).toThrow(/cannot bump the revision/);
    });
    it("checks the sha256 and that etcd is stopped before touching anything", () => {
        const s = restoreScript(BASE);
        const first = (text: string) => s.indexOf(text);
        expect(first("sha256sum --check")).toBeGreaterThan(0);
        for (const later of ["install -d", "mktemp", "mv -T", "chown"]) {
            expect(first("sha256sum --check")).toBeLessThan(first(later));
            expect(first("is-active --quiet")).toBeLessThan(first(later));
        }
        expect(s).not.toMatch(/rm -rf?\s+["']?\$?\{?data_dir|rm -rf?\s+["']?\/var\/lib\/etcd/);
    });
    it("refuses bad input", () => {
        expect(() => restoreScript({ ...BASE, initialCluster: "etcd2=https://10.0.0.2:2380" })).toThrow(/must list etcd1=/);
        expect(() => restoreScript({ ...BASE, sha256: "xyz" })).toThrow(/sha256/);
        expect(() => restoreScript({ ...BASE, dataDir: "/var/lib/../etcd" })).toThrow(/dataDir/);
        expect(() => restoreScript({ ...BASE, dataDir: "/etcd" })).toThrow(/top-level/);
        expect(() => restoreScript({ ...BASE, restoreId: "a/b" })).toThrow(/restoreId/);
    });
});

const SCRIPTS: [string, string][] = [
    ["upgrade guard to 3.6", upgradeGuardShell("3.6.5")],
    ["upgrade guard to 3.5", upgradeGuardShell("3.5.21")],
    ["upgrade guard to a known-bad release", upgradeGuardShell("3.5.1")],
    ["restore 3.5", restoreScript(BASE)],
    ["restore 3.4", restoreScript({ ...BASE, version: "3.4.23", systemctlPath: "/tmp/x/systemctl", stateDir: "/tmp/x/state", owner: "root:root" })],
    ["stop for restore", stopForRestoreScript()],
];

describe.each(SCRIPTS)("%s script", (_label, body) => {
    const script = unwrapScript(wrapScript(body, "ubuntu"));
    itLintsClean(() => script);
    it("never traces", () => {
        expect(script).not.toMatch(/set -x|set -o xtrace/);
    });
});

// ---------------------------------------------------------------------------------------------------------
// A real restore with Debian's etcd 3.4
// ---------------------------------------------------------------------------------------------------------

const ADDR = "127.77.8.1";
const CLIENT = `http://${ADDR}:42379`;
const PEER = `http://${ADDR}:42380`;
const KEYS = 1000;


/** Every entry under `root` (relative path, type, mode, uid, and a sha256 of file content), sorted. */
function listing(root: string): string[] {
    const out: string[] = [];
    const walk = (rel: string, depth: number) => {
        if (depth > 16) throw new Error(`listing: ${root} is deeper than 16 levels`);
        const abs = path.join(root, rel);
        const st = fs.lstatSync(abs);
        const kind = st.isDirectory() ? "d" : st.isFile() ? "f" : "o";
        const sum = st.isFile() ? createHash("sha256").update(fs.readFileSync(abs)).digest("hex") : "";
        out.push(`${rel || "."} ${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid} ${sum}`);
        if (st.isDirectory()) for (const e of fs.readdirSync(abs).sort()) walk(path.join(rel, e), depth + 1);
    };
    walk("", 0);
    return out;
}

describe("restore of a real etcd 3.4 snapshot", () => {
    let dir: string;
    let lib: string;
    let dataDir: string;
    let stateDir: string;
    let snapshot: string;
    let snapshotSha: string;
    let stub: string;
    let activeStub: string;
    let version: string;
    let etcd: LocalEtcd;
    let originalClusterId = "";
    let keysBefore = -1;
    let oldListing: string[] = [];
    const etcdUid = Number(execFileSync("id", ["-u", "etcd"], { encoding: "utf8" }).trim());

    const ctl = (args: string[]) => etcd.ctl(args);
    const startEtcd = (token: string) => etcd.start(token);
    const stopEtcd = () => etcd.stop();

    const clusterId = () => {
        const r = ctl(["endpoint", "status", "-w", "json"]);
        const m = /"cluster_id":(\d+)/.exec(r.stdout);
        if (!m) throw new Error(`no cluster_id in endpoint status: ${r.stdout}${r.stderr}`);
        return m[1];
    };

    const countKeys = () => {
        const r = ctl(["get", "/restore/", "--prefix", "--keys-only"]);
        if (r.status !== 0) throw new Error(`etcdctl get failed: ${r.stderr}`);
        return r.stdout.split("\n").filter((l) => l.startsWith("/restore/key-")).length;
    };

    const optsFor = (over: Partial<RestoreOptions> = {}): RestoreOptions => ({
        version,
        memberName: "r1",
        peerUrl: PEER,
        initialCluster: `r1=${PEER}`,
        token: "restored-token-1",
        dataDir,
        snapshotPath: snapshot,
        sha256: snapshotSha,
        restoreId: `${snapshotSha.slice(0, 16)}-restored-token-1`,
        etcdctlPath: "/usr/bin/etcdctl",
        systemctlPath: stub,
        stateDir,
        ...over,
    });
    const runRestore = (opts: RestoreOptions) => runTool("/bin/sh", ["-c", wrapScript(restoreScript(opts), "root")], undefined, 60_000);

    beforeAll(async () => {
        needTool("etcd", "etcd-server");
        needTool("etcdctl", "etcd-client");
        const listening = spawnSync("ss", ["-ltnH"], { encoding: "utf8" }).stdout ?? "";
        if (listening.includes(`${ADDR}:`)) throw new Error(`${ADDR} already has listeners; this test needs it free`);
        version = /etcd Version: (\S+)/.exec(execFileSync("etcd", ["--version"], { encoding: "utf8" }))![1];
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-restore-"));
        lib = path.join(dir, "lib");
        dataDir = path.join(lib, "etcd");
        etcd = new LocalEtcd({ addr: ADDR, dataDir, name: "r1", clientPort: 42379, peerPort: 42380, extra: [`--listen-metrics-urls=http://${ADDR}:42381`] });
        stateDir = path.join(dir, "state");
        snapshot = path.join(dir, "snapshot.db");
        fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
        stub = path.join(dir, "systemctl");
        fs.writeFileSync(stub, '#!/bin/sh\nif [ "$1" = is-active ]; then exit 3; fi\nexit 0\n', { mode: 0o755 });
        activeStub = path.join(dir, "systemctl-active");
        fs.writeFileSync(activeStub, '#!/bin/sh\nif [ "$1" = is-active ]; then exit 0; fi\nexit 0\n', { mode: 0o755 });

        await startEtcd("original-token");
        originalClusterId = clusterId();
        // 1000 keys through the gRPC gateway, 50 at a time (base64 keys and values).
        const b64 = (s: string) => Buffer.from(s).toString("base64");
        for (let i = 0; i < KEYS; i += 50) {
            await Promise.all(
                Array.from({ length: 50 }, async (_, j) => {
                    const n = i + j;
                    const res = await fetch(`${CLIENT}/v3/kv/put`, {
                        method: "POST",
                        body: JSON.stringify({ key: b64(`/restore/key-${String(n).padStart(4, "0")}`), value: b64(`value-${n}`) }),
                        signal: AbortSignal.timeout(5000),
                    });
                    if (!res.ok) throw new Error(`put ${n}: HTTP ${res.status} ${await res.text()}`);
                    await res.arrayBuffer();
                }),
            );
        }
        keysBefore = countKeys();
        const save = ctl(["snapshot", "save", snapshot]);
        if (save.status !== 0) throw new Error(`snapshot save failed: ${save.stderr}`);
        snapshotSha = createHash("sha256").update(fs.readFileSync(snapshot)).digest("hex");
        await stopEtcd();
        oldListing = listing(dataDir);
    }, 90_000);

    afterAll(async () => {
        await stopEtcd();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    }, 30_000);

    it("had 1000 keys in the snapshot's cluster", () => {
        expect(keysBefore).toBe(KEYS);
        expect(oldListing.some((l) => l.startsWith("member d "))).toBe(true);
        expect(originalClusterId).toMatch(/^\d+$/);
    });

    it("refuses a wrong sha256 with nothing touched", () => {
        const before = listing(dir);
        const wrong = "0".repeat(64);
        const r = runRestore(optsFor({ sha256: wrong, restoreId: "wrong-sha" }));
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(`sha256 mismatch for ${snapshot}: expected ${wrong}, got ${snapshotSha}; refusing to restore, nothing touched`);
        expect(listing(dir)).toEqual(before);
    });

    it("refuses a missing snapshot with nothing touched", () => {
        const before = listing(dir);
        const r = runRestore(optsFor({ snapshotPath: path.join(dir, "absent.db"), restoreId: "absent" }));
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(`snapshot ${path.join(dir, "absent.db")} is missing`);
        expect(listing(dir)).toEqual(before);
    });

    it("refuses while etcd is running, with nothing touched", () => {
        const before = listing(dir);
        const r = runRestore(optsFor({ systemctlPath: activeStub }));
        expect(r.status).toBe(1);
        expect(r.stderr).toContain("etcd (unit etcd) is running: stop it first");
        expect(listing(dir)).toEqual(before);
    });

    it("restores into the data dir and moves the old member dir aside inside it (a mount point works)", () => {
        const r = runRestore(optsFor());
        expect(r.stderr).not.toMatch(/error|refus/i);
        expect(r.status).toBe(0);
        expect(r.stdout).toContain(`restored member r1 into ${dataDir} from ${snapshot} (sha256 ${snapshotSha}) with etcdctl ${version}, no revision bump`);
        const aside = fs.readdirSync(dataDir).filter((e) => /^pre-restore-\d{8}T\d{6}Z$/.test(e));
        expect(aside).toHaveLength(1);
        expect(r.stdout).toContain(`the previous member dir was moved to ${path.join(dataDir, aside[0])}/member`);
        expect(listing(path.join(dataDir, aside[0]))).toEqual(oldListing);
        expect(fs.readdirSync(dataDir).sort()).toEqual(["member", aside[0]].sort());
        expect(fs.readdirSync(lib)).toEqual(["etcd"]);
        const st = fs.statSync(dataDir);
        expect(st.mode & 0o777).toBe(0o700);
        expect(st.uid).toBe(etcdUid);
        expect(fs.existsSync(path.join(dataDir, "member", "snap", "db"))).toBe(true);
        expect(listing(path.join(dataDir, "member")).every((l) => l.split(" ")[3] === String(etcdUid))).toBe(true);
        const marker = fs.readFileSync(path.join(stateDir, `restored-${snapshotSha.slice(0, 16)}-restored-token-1`), "utf8");
        expect(marker).toContain(`sha256=${snapshotSha}\nmember=r1\n`);
    });

    it("starts etcd on the restored dir with every key and a new cluster ID", async () => {
        await startEtcd("restored-token-1");
        expect(countKeys()).toBe(KEYS);
        expect(ctl(["get", "/restore/key-0999", "--print-value-only"]).stdout.trim()).toBe("value-999");
        expect(ctl(["get", "/restore/key-0000", "--print-value-only"]).stdout.trim()).toBe("value-0");
        expect(clusterId()).not.toBe(originalClusterId);
        await stopEtcd();
    }, 60_000);

    it("re-running prints already restored and changes nothing", () => {
        const before = listing(dir);
        const r = runRestore(optsFor());
        expect(r.status).toBe(0);
        expect(r.stdout).toContain("already restored");
        expect(listing(dir)).toEqual(before);
    });
});
