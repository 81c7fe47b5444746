/**
 * Really runs the rendered member scripts (prepare → certs → config → start), as root, the way the remote
 * commands run them: the command text from `wrapScript(…, "root")` is handed to `/bin/sh -c`, so the login
 * shell's quoting of the here-document is exercised too.
 *
 * Everything runs inside a private mount namespace (`unshare --mount --propagation private`) where /etc is
 * an overlay whose upper layer lives in a scratch dir, and /etc/etcd, /etc/systemd/system, /var/lib and
 * /usr/local/bin are fresh tmpfs mounts: nothing on this machine is modified. `systemctl` and `journalctl`
 * are stubs first in PATH; the systemctl stub records its arguments and answers `is-active` from a marker
 * file. The last test checks that the host paths the scripts write to are exactly as they were.
 */
import { turnBounds } from "../components/etcd/rolling";
import { spawnSync } from "child_process";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BOOTSTRAP_ENV_PATH, renderUnit, UNIT_PATH, UnitSettings } from "../components/etcd/flags";
import {
    certsScript,
    configScript,
    ETCDCTL_ENV_PATH,
    ETCDCTL_WRAPPER_PATH,
    ManagedFile,
    prepareScript,
    renderCertBundle,
    renderEtcdctlEnv,
    renderEtcdctlWrapper,
    startScript,
    STATE_DIR,
    wrapScript,
} from "../components/etcd/scripts";
import { PKI_DIR } from "../components/pki/certTable";
import { DEFAULT_PORTS } from "../components/topology/planner";

// ---------------------------------------------------------------------------------------------------------
// The sandbox
// ---------------------------------------------------------------------------------------------------------

/** One command run with `/bin/sh -c` inside the sandbox, with optional stdin. */
interface SandboxCommand {
    cmd: string;
    stdin?: string;
}

/** What one command did: exit status, output, and the `systemctl` calls it made (one line per call). */
interface SandboxResult {
    status: number;
    stdout: string;
    stderr: string;
    systemctl: string[];
}

/** Per-command bound (coreutils `timeout`) and the bound on the whole unshare session. */
const COMMAND_TIMEOUT_SECONDS = 5;
const SESSION_TIMEOUT_MS = 9_000;

/** Host paths the scripts write to (or under); compared before and after the whole file. */
const HOST_PATHS = [
    "/etc/etcd",
    "/etc/etcd/pki",
    "/etc/etcd/etcdctl.env",
    "/etc/passwd",
    "/etc/group",
    "/etc/systemd/system",
    UNIT_PATH,
    "/var/lib",
    "/var/lib/etcd",
    "/var/lib/etcd-ha",
    "/usr/local/bin",
    "/usr/local/bin/etcd",
    "/usr/local/bin/etcdctl.sh",
];

/**
 * The namespace's first program: mounts the overlay and the tmpfs layers (refusing to go on unless it is
 * really in a mount namespace of its own), then runs cmd<i>.sh one by one, each under `timeout`, writing
 * cmd<i>.out / .err / .rc / .systemctl next to it. $1 scratch dir, $2 number of commands, $3 the host's
 * mount namespace (from /proc/self/ns/mnt outside).
 */
const DRIVER = `
set -u
S=$1 N=$2 HOST_NS=$3
fail() { echo "sandbox setup: $*" >&2; exit 90; }
[ "$(readlink /proc/self/ns/mnt)" != "$HOST_NS" ] || fail "not in a private mount namespace"
mkdir -p "$S/etc-upper" "$S/etc-work" || fail "scratch dirs"
mount -t overlay etcd-ha-sandbox -o "lowerdir=/etc,upperdir=$S/etc-upper,workdir=$S/etc-work" /etc || fail "overlay on /etc"
[ "$(findmnt -n -o FSTYPE /etc)" = overlay ] || fail "/etc is not the overlay"
for d in /etc/etcd /etc/systemd/system; do
  mkdir -p "$d" || fail "mkdir $d on the /etc overlay"
  mount -t tmpfs -o mode=0755 etcd-ha-sandbox "$d" || fail "tmpfs on $d"
done
for d in /var/lib /usr/local/bin; do
  [ -d "$d" ] || fail "$d does not exist on the host"
  mount -t tmpfs -o mode=0755 etcd-ha-sandbox "$d" || fail "tmpfs on $d"
done
export SANDBOX="$S" PATH="$S/bin:$PATH"
for ((i = 0; i < N; i++)); do
  c="$S/cmd$i"
  in=/dev/null
  [ -f "$c.stdin" ] && in="$c.stdin"
  : > "$S/systemctl.log"
  timeout --kill-after=1 ${COMMAND_TIMEOUT_SECONDS} /bin/sh -c "$(cat "$c.sh")" < "$in" > "$c.out" 2> "$c.err"
  echo $? > "$c.rc"
  mv "$S/systemctl.log" "$c.systemctl"
done
`;

const scratchDirs: string[] = [];

/** Writes the stub systemctl and journalctl into <scratch>/bin. */
function writeStubs(scratch: string): void {
    const bin = path.join(scratch, "bin");
    fs.mkdirSync(bin);
    fs.writeFileSync(
        path.join(bin, "systemctl"),
        `#!/bin/bash
printf '%s\\n' "$*" >> '${scratch}/systemctl.log'
if [ "\${1-}" = is-active ]; then
  [ -f '${scratch}/etcd-active' ] && exit 0
  exit 3
fi
exit 0
`,
        { mode: 0o755 },
    );
    fs.writeFileSync(path.join(bin, "journalctl"), `#!/bin/sh\necho "journalctl stub: $*"\nexit 0\n`, { mode: 0o755 });
}

/** Runs the commands, in order, in ONE fresh sandbox; returns each command's result. */
function runInSandbox(commands: SandboxCommand[]): SandboxResult[] {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-sandbox-"));
    scratchDirs.push(scratch);
    writeStubs(scratch);
    commands.forEach((c, i) => {
        fs.writeFileSync(path.join(scratch, `cmd${i}.sh`), c.cmd);
        if (c.stdin !== undefined) fs.writeFileSync(path.join(scratch, `cmd${i}.stdin`), c.stdin);
    });
    fs.writeFileSync(path.join(scratch, "driver.sh"), DRIVER);
    const hostNs = fs.readlinkSync("/proc/self/ns/mnt");
    const r = spawnSync(
        "unshare",
        ["--mount", "--propagation", "private", "/bin/bash", path.join(scratch, "driver.sh"), scratch, String(commands.length), hostNs],
        { cwd: scratch, encoding: "utf8", timeout: SESSION_TIMEOUT_MS, killSignal: "SIGKILL" },
    );
    if (r.error) throw new Error(`sandbox session failed: ${r.error.message}\n${r.stderr ?? ""}`);
    if (r.status !== 0) throw new Error(`sandbox session exited ${r.status ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
    const read = (f: string) => fs.readFileSync(path.join(scratch, f), "utf8");
    return commands.map((_, i) => ({
        status: Number(read(`cmd${i}.rc`).trim()),
        stdout: read(`cmd${i}.out`),
        stderr: read(`cmd${i}.err`),
        systemctl: read(`cmd${i}.systemctl`).split("\n").filter((l) => l !== ""),
    }));
}

/** Fails with the command's output when it did not exit 0. */
function expectOk(r: SandboxResult, what: string): void {
    if (r.status !== 0) throw new Error(`${what} exited ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
}

/** Lines of a command's stdout. */
function lines(text: string): string[] {
    return text.split("\n").filter((l) => l !== "");
}

/** The `changed:` line of a certs or config run, as the list of names (empty for `changed: none`). */
function changed(r: SandboxResult): string[] {
    const line = lines(r.stdout).filter((l) => l.startsWith("changed:"));
    expect(line).toHaveLength(1);
    const rest = line[0].slice("changed:".length).trim();
    return rest === "none" ? [] : rest.split(" ");
}

interface FileStat {
    mode: string;
    owner: string;
    inode: string;
    mtime: string;
}

/** A command that stats paths; parse its output with `parseStat`. */
function statCmd(paths: readonly string[]): SandboxCommand {
    return { cmd: `stat -c '%n|%a|%U:%G|%i|%.9Y' ${paths.map((p) => `'${p}'`).join(" ")}` };
}

function parseStat(r: SandboxResult): Map<string, FileStat> {
    expectOk(r, "stat");
    const out = new Map<string, FileStat>();
    for (const l of lines(r.stdout)) {
        const [name, mode, owner, inode, mtime] = l.split("|");
        out.set(name, { mode, owner, inode, mtime });
    }
    return out;
}

/** A command that prints `<sha256>  <path>` for each path. */
function sha256Cmd(paths: readonly string[]): SandboxCommand {
    return { cmd: `sha256sum ${paths.map((p) => `'${p}'`).join(" ")}` };
}

function parseSha256(r: SandboxResult): Map<string, string> {
    expectOk(r, "sha256sum");
    return new Map(lines(r.stdout).map((l) => [l.slice(66), l.slice(0, 64)]));
}

// ---------------------------------------------------------------------------------------------------------
// Fixtures: the member's files as EtcdMember renders them
// ---------------------------------------------------------------------------------------------------------

const VERSION = "3.5.21";
const DATA_DIR = "/var/lib/etcd";
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

/** The certs step's file list, in EtcdMember's order. */
const CERT_FILES = [
    { name: "ca.crt", mode: "0644" },
    ...["server", "peer", "admin", "healthcheck-client"].flatMap((base) => [
        { name: `${base}.crt`, mode: "0644" },
        { name: `${base}.key`, mode: "0600" },
    ]),
];
const CRT_NAMES = CERT_FILES.filter((f) => f.name.endsWith(".crt")).map((f) => f.name);
const KEY_NAMES = CERT_FILES.filter((f) => f.name.endsWith(".key")).map((f) => f.name);
const pki = (name: string) => `${PKI_DIR}/${name}`;

/** PEM-shaped random content (the certs step only copies bytes). */
function fakePem(label: string): string {
    const b64 = randomBytes(180).toString("base64");
    return `-----BEGIN ${label}-----\n${b64.match(/.{1,64}/g)?.join("\n")}\n-----END ${label}-----\n`;
}

type BundleFiles = { name: string; content: string }[];

function bundleFiles(): BundleFiles {
    return CERT_FILES.map((f) => ({ name: f.name, content: fakePem(f.name.endsWith(".key") ? "PRIVATE KEY" : "CERTIFICATE") }));
}

function withFile(files: BundleFiles, name: string, content: string): BundleFiles {
    return files.map((f) => (f.name === name ? { name, content } : f));
}

const UNIT_SETTINGS: UnitSettings = {
    clusterName: "lab",
    arch: "amd64",
    version: VERSION,
    name: "etcd1",
    address: "10.103.0.101",
    ports: DEFAULT_PORTS,
    dataDir: DATA_DIR,
    listenLocalhost: true,
    heartbeatIntervalMs: 100,
    electionTimeoutMs: 1000,
    quotaBackendBytes: 8 * 1024 ** 3,
    autoCompaction: { mode: "periodic", retention: "8h" },
    snapshotCount: 10000,
    maxSnapshots: 5,
    maxWals: 5,
};
const UNIT_1 = renderUnit(UNIT_SETTINGS);
const UNIT_2 = renderUnit({ ...UNIT_SETTINGS, heartbeatIntervalMs: 150, electionTimeoutMs: 1500 });
const CONFIG_PATHS = [UNIT_PATH, ETCDCTL_ENV_PATH, ETCDCTL_WRAPPER_PATH];

function configFiles(unit: string): ManagedFile[] {
    return [
        { path: UNIT_PATH, mode: "0600", owner: "root:root", content: unit },
        { path: ETCDCTL_ENV_PATH, mode: "0644", owner: "root:root", content: renderEtcdctlEnv({ endpoints: ["https://10.103.0.101:2379", "https://10.103.0.102:2379"] }) },
        { path: ETCDCTL_WRAPPER_PATH, mode: "0755", owner: "root:root", content: renderEtcdctlWrapper() },
    ];
}

// The steps, wrapped exactly as EtcdMember sends them for an SSH user `root`.
const wrap = (body: string) => wrapScript(body, "root");
const prepare = (): SandboxCommand => ({ cmd: wrap(prepareScript({ dataDir: DATA_DIR })) });
const certs = (files: BundleFiles): SandboxCommand => ({ cmd: wrap(certsScript(CERT_FILES)), stdin: renderCertBundle(files) });
const config = (unit: string): SandboxCommand => ({ cmd: wrap(configScript(configFiles(unit))) });
const INITIAL_CLUSTER = "etcd1=https://10.103.0.101:2380,etcd2=https://10.103.0.102:2380,etcd3=https://10.103.0.103:2380";
const start = (unit: string): SandboxCommand => ({
    cmd: wrap(
        startScript({
            unitSha256: sha256(unit),
            version: VERSION,
            name: "etcd1",
            peerUrl: "https://10.103.0.101:2380",
            clientUrl: "https://10.103.0.101:2379",
            dataDir: DATA_DIR,
            initialCluster: INITIAL_CLUSTER,
            token: "etcd-ha-token-one",
            clusterName: "etcd",
            turn: turnBounds(3),
            // Loopback, nothing listening: the start step probes these ports (no packet may leave the machine).
            others: ["https://127.77.6.102:2379", "https://127.77.6.103:2379"],
            attempts: 2,
            intervalSeconds: 1,
        }),
    ),
});
/**
 * A stub /usr/local/bin/etcdctl standing in for a healthy cluster in which etcd1 follows etcd2 and has applied
 * what the leader has: `endpoint health` answers healthy, `endpoint status` reports both members, the turn's
 * lease, marker and lock calls succeed (the lock holder sleeps until released) and `member list` lists both.
 * The start step asks the cluster only when a member listens, so with nothing listening it bootstraps. The real turns and joins run in the lab.
 */
const STUB_ETCDCTL = `#!/bin/sh
case "$*" in
  *"endpoint health"*) echo "https://10.103.0.101:2379 is healthy: successfully committed proposal"; exit 0 ;;
  *"endpoint status"*)
    for m in 1 2; do
      printf '"MemberID" : %s\\n"Leader" : 2\\n"RaftAppliedIndex" : 10\\n"IsLearner" : false\\n"Endpoint" : "https://10.103.0.10%s:2379"\\n' "$m" "$m"
    done
    exit 0 ;;
  *"lease grant"*) echo "lease 694d1 granted with TTL(900s)"; exit 0 ;;
  *"lease revoke"*) echo "lease 694d1 revoked"; exit 0 ;;
  *"member list"*) printf '%s\\n' "1, started, etcd1, https://10.103.0.101:2380, https://10.103.0.101:2379, false" "2, started, etcd2, https://10.103.0.102:2380, https://10.103.0.102:2379, false"; exit 0 ;;
  *" put "*) echo OK; exit 0 ;;
  *" get "*) exit 0 ;;
  *" lock "*) for a; do key=$a; done; echo "$key/694d1"; exec sleep 600 ;;
esac
echo "context deadline exceeded" >&2
exit 1
`;
const stubEtcdctl = (): SandboxCommand => ({ cmd: `cat > /usr/local/bin/etcdctl <<'STUB'\n${STUB_ETCDCTL}STUB\nchmod 0755 /usr/local/bin/etcdctl` });
/** The certificates start fingerprints (content only matters); `tag` changes the server certificate. */
const dummyCerts = (tag: string): SandboxCommand => ({ cmd: `for f in ca server peer; do echo "$f" > ${PKI_DIR}/$f.crt; done; echo ${tag} >> ${PKI_DIR}/server.crt` });
/** A dummy /usr/local/bin/etcd (start hashes it); `tag` changes its content. */
const dummyEtcd = (tag: string): SandboxCommand => ({
    cmd: `printf '#!/bin/sh\\necho "etcd Version: ${VERSION} (${tag})"\\n' > /usr/local/bin/etcd && chmod 0755 /usr/local/bin/etcd`,
});

// ---------------------------------------------------------------------------------------------------------
// Host snapshot (nothing outside the namespace may change)
// ---------------------------------------------------------------------------------------------------------

function hostSnapshot(): Record<string, string> {
    const snap: Record<string, string> = {};
    for (const p of HOST_PATHS) {
        try {
            const s = fs.lstatSync(p);
            const listing = s.isDirectory() ? fs.readdirSync(p).sort().join(",") : "";
            snap[p] = `mode=${s.mode.toString(8)} uid=${s.uid} gid=${s.gid} mtime=${s.mtimeMs} ino=${s.ino} entries=${listing}`;
        } catch {
            snap[p] = "absent";
        }
    }
    return snap;
}

// ---------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------

describe("the member scripts, run for real in a private mount namespace", () => {
    let hostBefore: Record<string, string>;

    beforeAll(() => {
        if (typeof process.getuid !== "function" || process.getuid() !== 0) {
            throw new Error("tests/scripts-run.test.ts needs root (it mounts tmpfs and overlayfs in a private mount namespace): run it as root");
        }
        if (spawnSync("getent", ["passwd", "etcd"]).status !== 0) {
            throw new Error("user etcd missing: run apt-get install -y etcd-server (or useradd --system etcd)");
        }
        hostBefore = hostSnapshot();
    });

    afterAll(() => {
        for (const d of scratchDirs) fs.rmSync(d, { recursive: true, force: true });
    });

    test("first run of prepare, certs and config installs every file with its mode and owner", () => {
        const files = bundleFiles();
        const [prep, crt, cfg, stat, sums] = runInSandbox([
            prepare(),
            certs(files),
            config(UNIT_1),
            statCmd([PKI_DIR, DATA_DIR, STATE_DIR, "/etc/etcd", ...CERT_FILES.map((f) => pki(f.name)), ...CONFIG_PATHS]),
            sha256Cmd([...CERT_FILES.map((f) => pki(f.name)), ...CONFIG_PATHS]),
        ]);
        expectOk(prep, "prepare");
        expectOk(crt, "certs");
        expectOk(cfg, "config");
        expect(prep.stdout).toContain(`ready: user etcd, ${PKI_DIR} 0750 root:etcd, ${DATA_DIR} 0700 etcd:etcd`);

        const st = parseStat(stat);
        const modeOwner = (p: string) => `${st.get(p)?.mode} ${st.get(p)?.owner}`;
        expect(modeOwner(PKI_DIR)).toBe("750 root:etcd");
        expect(modeOwner(DATA_DIR)).toBe("700 etcd:etcd");
        expect(modeOwner(STATE_DIR)).toBe("700 root:root");
        expect(modeOwner("/etc/etcd")).toBe("755 root:root");
        for (const k of KEY_NAMES) expect([k, modeOwner(pki(k))]).toEqual([k, "600 etcd:etcd"]);
        for (const c of CRT_NAMES) expect([c, modeOwner(pki(c))]).toEqual([c, "644 etcd:etcd"]);
        expect(modeOwner(UNIT_PATH)).toBe("600 root:root");
        expect(modeOwner(ETCDCTL_ENV_PATH)).toBe("644 root:root");
        expect(modeOwner(ETCDCTL_WRAPPER_PATH)).toBe("755 root:root");

        // The bytes arrived intact.
        const sum = parseSha256(sums);
        for (const f of files) expect([f.name, sum.get(pki(f.name))]).toEqual([f.name, sha256(f.content)]);
        for (const f of configFiles(UNIT_1)) expect([f.path, sum.get(f.path)]).toEqual([f.path, sha256(f.content)]);

        // certs: every file changed, fingerprints for the certificates only, and no key material anywhere.
        expect(changed(crt)).toEqual(CERT_FILES.map((f) => f.name));
        const fingerprints = lines(crt.stdout).filter((l) => / sha256 /.test(l));
        expect(fingerprints).toEqual(files.filter((f) => f.name.endsWith(".crt")).map((f) => `${f.name} sha256 ${sha256(f.content)}`));
        for (const r of [prep, crt, cfg]) {
            expect(r.stdout + r.stderr).not.toContain("PRIVATE KEY");
            expect(r.stdout + r.stderr).not.toContain(files[2].content.split("\n")[1]);
        }
        expect(crt.stderr).toBe("");

        // config: every path changed, daemon-reload once.
        expect(changed(cfg)).toEqual(CONFIG_PATHS);
        expect(cfg.systemctl).toEqual(["daemon-reload"]);
        expect(crt.systemctl).toEqual([]);
        expect(prep.systemctl).toEqual([]);
    });

    test("a second identical run changes nothing: no file rewritten, no daemon-reload", () => {
        const files = bundleFiles();
        // Files only: the certs step's private .incoming dir changes /etc/etcd/pki's own mtime on every run.
        const paths = [...CERT_FILES.map((f) => pki(f.name)), ...CONFIG_PATHS];
        const dirs = [PKI_DIR, DATA_DIR, STATE_DIR];
        const r = runInSandbox([
            prepare(),
            certs(files),
            config(UNIT_1),
            statCmd([...paths, ...dirs]),
            prepare(),
            certs(files),
            config(UNIT_1),
            statCmd([...paths, ...dirs]),
            { cmd: `ls -A ${PKI_DIR} /etc/systemd/system /etc/etcd /usr/local/bin` },
        ]);
        r.forEach((x, i) => expectOk(x, `command ${i}`));
        const [, , cfg1, stat1, , crt2, cfg2, stat2] = r;
        expect(cfg1.systemctl).toEqual(["daemon-reload"]);

        expect(changed(crt2)).toEqual([]);
        expect(lines(crt2.stdout)).toContain("changed: none");
        expect(lines(crt2.stdout).filter((l) => / sha256 /.test(l))).toHaveLength(CRT_NAMES.length);
        expect(changed(cfg2)).toEqual([]);
        expect(lines(cfg2.stdout)).toEqual(["changed: none"]);
        expect(cfg2.systemctl).toEqual([]);

        const before = parseStat(stat1);
        const after = parseStat(stat2);
        for (const p of paths) expect([p, after.get(p)]).toEqual([p, before.get(p)]);
        for (const d of dirs) expect([d, after.get(d)?.mode, after.get(d)?.owner]).toEqual([d, before.get(d)?.mode, before.get(d)?.owner]);

        // No temporary files left behind (.incoming.*, *.XXXXXX).
        const listing = r[8];
        expectOk(listing, "ls");
        expect(lines(listing.stdout).filter((l) => !l.endsWith(":")).sort()).toEqual(
            [...CERT_FILES.map((f) => f.name), "etcd.service", "etcdctl.env", "etcdctl.sh", "pki"].sort(),
        );
    });

    test("changing one key in the bundle reports and replaces only that file", () => {
        const files = bundleFiles();
        const rotated = withFile(files, "peer.key", fakePem("PRIVATE KEY"));
        const paths = CERT_FILES.map((f) => pki(f.name));
        const [prep, crt1, stat1, crt2, stat2, sums] = runInSandbox([
            prepare(),
            certs(files),
            statCmd(paths),
            certs(rotated),
            statCmd(paths),
            sha256Cmd(paths),
        ]);
        expectOk(prep, "prepare");
        expectOk(crt1, "certs (first)");
        expectOk(crt2, "certs (rotated key)");
        expect(changed(crt2)).toEqual(["peer.key"]);
        expect(crt2.stdout + crt2.stderr).not.toContain("PRIVATE KEY");

        const before = parseStat(stat1);
        const after = parseStat(stat2);
        for (const p of paths) {
            if (p === pki("peer.key")) {
                expect(after.get(p)?.inode).not.toBe(before.get(p)?.inode);
                expect(`${after.get(p)?.mode} ${after.get(p)?.owner}`).toBe("600 etcd:etcd");
            } else {
                expect([p, after.get(p)]).toEqual([p, before.get(p)]);
            }
        }
        expect(parseSha256(sums).get(pki("peer.key"))).toBe(sha256(rotated.find((f) => f.name === "peer.key")?.content ?? ""));
    });

    test("a bundle without one of the files fails, naming the file, installing nothing and printing no key material", () => {
        const files = bundleFiles().filter((f) => f.name !== "admin.key");
        const [prep, crt, left] = runInSandbox([prepare(), certs(files), { cmd: `ls -A ${PKI_DIR}` }]);
        expectOk(prep, "prepare");
        expect(crt.status).toBe(1);
        expect(crt.stderr).toBe("the certificate bundle on stdin has no admin.key: nothing installed\n");
        expect(crt.stdout + crt.stderr).not.toContain("PRIVATE KEY");
        expectOk(left, "ls");
        // Checked before anything is installed: no certificate can land beside a stale key.
        expect(lines(left.stdout)).toEqual([]);
    });

    test("changing the unit: config reports only the unit and reloads systemd once more", () => {
        const [prep, cfg1, cfg2, cfg3, stat, sums] = runInSandbox([
            prepare(),
            config(UNIT_1),
            config(UNIT_2),
            config(UNIT_2),
            statCmd([UNIT_PATH]),
            sha256Cmd([UNIT_PATH]),
        ]);
        for (const [r, what] of [[prep, "prepare"], [cfg1, "config 1"], [cfg2, "config 2"], [cfg3, "config 3"]] as const) expectOk(r, what);
        expect(cfg1.systemctl).toEqual(["daemon-reload"]);
        expect(changed(cfg2)).toEqual([UNIT_PATH]);
        expect(cfg2.systemctl).toEqual(["daemon-reload"]);
        expect(changed(cfg3)).toEqual([]);
        expect(cfg3.systemctl).toEqual([]);
        expect(`${parseStat(stat).get(UNIT_PATH)?.mode} ${parseStat(stat).get(UNIT_PATH)?.owner}`).toBe("600 root:root");
        expect(parseSha256(sums).get(UNIT_PATH)).toBe(sha256(UNIT_2));
    });

    test("prepare tightens a pre-existing data dir to 0700 etcd:etcd and never wipes it", () => {
        const [seed, prep, stat, content] = runInSandbox([
            { cmd: `mkdir -m 0755 ${DATA_DIR} ${DATA_DIR}/member && echo keep-me > ${DATA_DIR}/member/wal && chmod 0755 ${DATA_DIR}` },
            prepare(),
            statCmd([DATA_DIR, `${DATA_DIR}/member/wal`]),
            { cmd: `cat ${DATA_DIR}/member/wal` },
        ]);
        expectOk(seed, "seed data dir");
        expectOk(prep, "prepare");
        const st = parseStat(stat);
        expect(`${st.get(DATA_DIR)?.mode} ${st.get(DATA_DIR)?.owner}`).toBe("700 etcd:etcd");
        expect(st.get(`${DATA_DIR}/member/wal`)).toBeDefined();
        expectOk(content, "cat");
        expect(content.stdout).toBe("keep-me\n");
    });

    test("start: bootstraps an empty member without waiting for quorum; then nothing when unchanged; a rolling restart after a unit, binary or certificate change", () => {
        const r = runInSandbox([
            prepare(), // 0
            config(UNIT_1), // 1
            { cmd: `${dummyEtcd("a").cmd} && ${stubEtcdctl().cmd} && ${dummyCerts("1").cmd}` }, // 2
            start(UNIT_1), // 3: empty data dir, no cluster answers -> bootstrap (new), start --no-block
            { cmd: `mkdir -p ${DATA_DIR}/member && touch "$SANDBOX/etcd-active" && cat ${BOOTSTRAP_ENV_PATH}` }, // 4
            start(UNIT_1), // 5: running, stamp matches -> nothing (health checked)
            config(UNIT_2), // 6
            start(UNIT_2), // 7: unit changed -> restart
            start(UNIT_2), // 8: nothing
            dummyEtcd("b"), // 9
            start(UNIT_2), // 10: binary changed -> restart
            dummyCerts("2"), // 11
            start(UNIT_2), // 12: certificates renewed -> restart
            { cmd: `cat ${STATE_DIR}/etcd.started; sha256sum ${UNIT_PATH} /usr/local/bin/etcd; cat ${PKI_DIR}/ca.crt ${PKI_DIR}/server.crt ${PKI_DIR}/peer.crt | sha256sum` }, // 13
        ]);
        r.forEach((x, i) => expectOk(x, `command ${i}`));
        const [, , , first, env, unchanged, , afterUnit, again, , afterBinary, , afterCerts, stamp] = r;

        expect(first.systemctl).toEqual(["daemon-reload", "enable etcd", "start --no-block etcd"]);
        expect(lines(first.stdout)).toEqual([`started etcd: bootstrapping a new cluster (${INITIAL_CLUSTER})`]);
        // The bootstrap settings went to the env file, not the unit.
        expect(lines(env.stdout).slice(1)).toEqual([`ETCD_INITIAL_CLUSTER=${INITIAL_CLUSTER}`, "ETCD_INITIAL_CLUSTER_STATE=new", "ETCD_INITIAL_CLUSTER_TOKEN=etcd-ha-token-one"]);

        expect(unchanged.systemctl).toEqual(["daemon-reload", "is-active --quiet etcd", "enable etcd"]);
        expect(lines(unchanged.stdout)).toEqual(["etcd is running with this configuration: nothing to do", "member etcd1 healthy after 1 check(s)"]);

        expect(afterUnit.systemctl).toEqual(["daemon-reload", "is-active --quiet etcd", "restart etcd", "enable etcd"]);
        // The restart waits for its turn and for the member to have caught up, not only to answer.
        expect(lines(afterUnit.stdout)).toEqual([
            "unit, binary or certificates changed since etcd was started: restarting member etcd1 in its turn",
            expect.stringMatching(/^etcd1: my turn to change the cluster from \d{4}-\d\d-\d\dT[\d:.]+Z; every other member is healthy \(2 voters, quorum 2\)$/),
            "member etcd1 healthy after 1 check(s)",
            "caught up: applied index 10 (the leader's was 10)",
            expect.stringMatching(/^etcd1: turn ended at \d{4}-\d\d-\d\dT[\d:.]+Z$/),
        ]);

        expect(again.systemctl).not.toContain("restart etcd");
        expect(afterBinary.systemctl).toContain("restart etcd");
        expect(afterCerts.systemctl).toContain("restart etcd");

        // The stamp records what etcd was last started with.
        const [stampLine, unitSum, etcdSum, certsSum] = lines(stamp.stdout);
        expect(stampLine).toBe(`unit=${unitSum.split(" ")[0]} etcd=${etcdSum.split(" ")[0]} certs=${certsSum.split(" ")[0]}`);
        expect(unitSum.split(" ")[0]).toBe(sha256(UNIT_2));
        for (const x of r) expect(x.stderr).toBe("");
    });

    test("start refuses to start etcd without its unit file and writes no stamp", () => {
        const [prep, bin, st, stamp] = runInSandbox([prepare(), { cmd: `${dummyEtcd("a").cmd} && ${dummyCerts("1").cmd}` }, start(UNIT_1), { cmd: `ls -A ${STATE_DIR}` }]);
        expectOk(prep, "prepare");
        expectOk(bin, "dummy etcd");
        expect(st.status).not.toBe(0);
        expect(st.systemctl).toEqual([]);
        expectOk(stamp, "ls");
        expect(lines(stamp.stdout)).toEqual([]);
    });

    test("the host is untouched", () => {
        expect(hostSnapshot()).toEqual(hostBefore);
    });
});
