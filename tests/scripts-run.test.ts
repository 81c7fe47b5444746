/**
 * Really runs the rendered member scripts (prepare → binaries → certs → config → start, and the deletes of the
 * install steps), as root, the way the remote commands run them: the command text from
 * `wrapScript(…, "root")` is handed to `/bin/sh -c`, so the login shell's quoting of the here-document is
 * exercised too.
 *
 * Everything runs inside a private mount namespace (`unshare --mount --propagation private`) where /etc is
 * an overlay whose upper layer lives in a scratch dir (where /etc/etcd starts absent), and /etc/systemd/system,
 * /var/lib, /var/tmp, /var/backups and /usr/local/bin are fresh tmpfs mounts: nothing on this machine is
 * modified. `systemctl` and `journalctl`
 * are stubs first in PATH; the systemctl stub records its arguments and answers `is-active` from a marker
 * file. The last test checks that the host paths the scripts write to are exactly as they were.
 */
import { maintenanceScript, S3_AUTH_PATH, S3_CA_PATH, s3CurlConfig } from "../components/etcd/day2";
import { turnBounds } from "../components/etcd/rolling";
import { spawnSync } from "child_process";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BOOTSTRAP_ENV_PATH, renderUnit, UNIT_PATH, UnitSettings } from "../components/etcd/flags";
import {
    binariesRemoveScript,
    binariesScript,
    certsRemoveScript,
    certsScript,
    configRemoveScript,
    configScript,
    ETCDCTL_ENV_PATH,
    ETCDCTL_WRAPPER_PATH,
    installReleaseShell,
    ManagedFile,
    prepareRemoveScript,
    prepareScript,
    RELEASE_MARKER,
    RELEASES_DIR,
    renderCertBundle,
    renderEtcdctlEnv,
    renderEtcdctlWrapper,
    STAGING_DIR,
    stagedReleaseDir,
    stagedTarballPath,
    startScript,
    STATE_DIR,
    wrapScript,
} from "../components/etcd/scripts";
import { tarballDir } from "../components/etcd/version";
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
    "/usr/local/bin/etcdctl",
    "/usr/local/bin/etcdutl",
    "/usr/local/bin/etcdctl.sh",
    "/var/tmp/etcd-ha",
    "/var/backups",
    "/var/backups/etcd",
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
mkdir -p /etc/systemd/system || fail "mkdir /etc/systemd/system on the /etc overlay"
mount -t tmpfs -o mode=0755 etcd-ha-sandbox /etc/systemd/system || fail "tmpfs on /etc/systemd/system"
# /etc/etcd is no mount point (the deletes remove it when empty): it starts absent, as on a new host. One the
# machine has is hidden by removing it in the overlay, which only records that in the upper layer.
if [ -e /etc/etcd ] || [ -L /etc/etcd ]; then
  ! mountpoint -q /etc/etcd || fail "/etc/etcd is a mount point on this machine"
  [ "$(findmnt -n -o FSTYPE --target /etc/etcd)" = overlay ] || fail "/etc/etcd is not on the overlay"
  rm -rf /etc/etcd || fail "hiding /etc/etcd in the overlay"
fi
for d in /var/lib /var/tmp /var/backups /usr/local/bin; do
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
# As systemd: a reload reads the unit; NeedDaemonReload is "yes" while the unit on disk differs from what was read.
if [ "\${1-}" = daemon-reload ]; then
  cat '${UNIT_PATH}' > '${scratch}/loaded-unit' 2>/dev/null || rm -f '${scratch}/loaded-unit'
fi
if [ "$*" = "show -p NeedDaemonReload --value etcd" ]; then
  if [ -f '${UNIT_PATH}' ] && ! cmp -s '${UNIT_PATH}' '${scratch}/loaded-unit'; then echo yes; else echo no; fi
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
// The install steps' deletes
// ---------------------------------------------------------------------------------------------------------

const SNAPSHOT_DIR = "/var/backups/etcd";
const PUSHED_TARBALL = stagedTarballPath(VERSION, "amd64");

/**
 * A fake etcd 3.5 release tarball (etcd, etcdctl and etcdutl are shell scripts that print their version, as
 * the binaries step checks), built in a scratch dir on this machine: its path and sha256.
 */
function fakeRelease(): { tarball: string; sha256: string } {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "etcd-ha-release-"));
    scratchDirs.push(dir);
    const top = path.join(dir, tarballDir(VERSION, "amd64"));
    fs.mkdirSync(top);
    const says: Record<string, string> = { etcd: `etcd Version: ${VERSION}`, etcdctl: `etcdctl version: ${VERSION}`, etcdutl: `etcdutl version: ${VERSION}` };
    for (const [b, line] of Object.entries(says)) fs.writeFileSync(path.join(top, b), `#!/bin/sh\necho "${line}"\n`, { mode: 0o755 });
    const tarball = path.join(dir, "release.tar.gz");
    const r = spawnSync("tar", ["-czf", tarball, "-C", dir, tarballDir(VERSION, "amd64")], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
    return { tarball, sha256: createHash("sha256").update(fs.readFileSync(tarball)).digest("hex") };
}

/** The push install's tarball step: the tarball lands in the staging dir. */
const pushTarball = (tarball: string): SandboxCommand => ({ cmd: `install -d -m 0755 ${STAGING_DIR} && install -m 0644 '${tarball}' ${PUSHED_TARBALL}` });
const binaries = (sha: string): SandboxCommand => ({ cmd: wrap(binariesScript({ version: VERSION, arch: "amd64", sha256: sha, source: { kind: "push", path: PUSHED_TARBALL } })) });
/** The start step's install of the staged release into /usr/local/bin (its `install_release`). */
const installRelease = (sha: string): SandboxCommand => ({ cmd: wrap(`${installReleaseShell({ version: VERSION, sha256: sha })}\ninstall_release`) });
// The deletes, as EtcdMember renders them.
// The provider hands a delete its step's stdin as well: the certs delete gets the key bundle, and never reads it.
const removeCerts = (): SandboxCommand => ({ cmd: wrap(certsRemoveScript(CERT_FILES)), stdin: renderCertBundle(bundleFiles()) });
const removeConfig = (): SandboxCommand => ({ cmd: wrap(configRemoveScript([...CONFIG_PATHS, BOOTSTRAP_ENV_PATH])) });
const removeBinaries = (): SandboxCommand => ({ cmd: wrap(binariesRemoveScript()) });
const removePrepare = (): SandboxCommand => ({ cmd: wrap(prepareRemoveScript({ dataDir: DATA_DIR, snapshotDir: SNAPSHOT_DIR })) });
/** The deletes in the engine's order on destroy or scale-in (after the start step's leave). */
const deletes = (): SandboxCommand[] => [removeCerts(), removeConfig(), removeBinaries(), removePrepare()];

/** /etc/etcd (when there) and everything under it and under the sandbox's fresh mounts, one path a line, sorted. */
const SANDBOX_ROOTS = ["/etc/systemd/system", "/usr/local/bin", "/var/lib", "/var/tmp", "/var/backups"];
const listing = (): SandboxCommand => ({ cmd: `{ if [ -e /etc/etcd ]; then find /etc/etcd; fi; find ${SANDBOX_ROOTS.join(" ")} -mindepth 1; } | LC_ALL=C sort` });

/** A delete's `removed (<what>): …` line: what it names, and the paths it removed (none for "nothing"). */
function removed(r: SandboxResult): { what: string; paths: string[] } {
    const found = lines(r.stdout).filter((l) => l.startsWith("removed ("));
    expect(found).toHaveLength(1);
    const m = /^removed \(([^)]*)\): (.*)$/.exec(found[0])!;
    return { what: m[1], paths: m[2] === "nothing" ? [] : m[2].split(" ") };
}

/** A delete's `left alone: …` line, split at "; " (empty when it left nothing). */
function leftAlone(r: SandboxResult): string[] {
    const found = lines(r.stdout).filter((l) => l.startsWith("left alone: "));
    expect(found.length).toBeLessThanOrEqual(1);
    return found.length ? found[0].slice("left alone: ".length).split("; ") : [];
}

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

    test("maintenance with an S3 store: its keys from stdin into a 0600 root file, never printed; the same keys again rewrite nothing; none on stdin: refused; without the store: both files go", () => {
        const keys = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: `wJalr"XUtn\\FEMI-${randomBytes(6).toString("hex")}` };
        const CA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
        const snapshot = { clusterName: "etcd", memberName: "etcd1", version: VERSION, endpoint: "https://10.0.0.11:2379", retain: 7 };
        const s3 = { endpoint: "https://s3.kloud.lan:9000", bucket: "etcd-backups", prefix: "etcd/", region: "us-east-1", authFile: S3_AUTH_PATH, caFile: S3_CA_PATH, retainCount: 120, retainDays: 30, attempts: 4, backoffSeconds: 5, requestTimeoutSeconds: 900, budgetSeconds: 3600 };
        const withStore = wrap(maintenanceScript({ snapshot: { ...snapshot, s3 }, s3CaPem: CA, endpoints: ["https://10.0.0.11:2379"] }));
        const without = wrap(maintenanceScript({ snapshot, endpoints: ["https://10.0.0.11:2379"] }));
        const [prep, first, files, again, none, keptAfterNone, off, gone] = runInSandbox([
            prepare(),
            { cmd: withStore, stdin: s3CurlConfig(keys) },
            { cmd: `stat -c '%n %a %U:%G' ${S3_AUTH_PATH} ${S3_CA_PATH}; cat ${S3_AUTH_PATH}` },
            { cmd: withStore, stdin: s3CurlConfig(keys) },
            { cmd: withStore, stdin: "" },
            { cmd: `cat ${S3_AUTH_PATH}` },
            { cmd: without },
            { cmd: `ls -A /etc/etcd` },
        ]);
        expectOk(prep, "prepare");
        expectOk(first, "maintenance with the store");
        expect(lines(first.stdout)).toContain(`S3 keys installed in ${S3_AUTH_PATH}`);
        expect(first.stdout + first.stderr).not.toContain(keys.secretAccessKey);
        expectOk(files, "stat");
        const [auth, ca, content] = lines(files.stdout);
        expect(auth).toBe(`${S3_AUTH_PATH} 600 root:root`);
        expect(ca).toBe(`${S3_CA_PATH} 644 root:root`);
        expect(`${content}\n`).toBe(s3CurlConfig(keys));
        expectOk(again, "maintenance again");
        expect(lines(again.stdout)).not.toContain(`S3 keys installed in ${S3_AUTH_PATH}`);
        expect(none.status).not.toBe(0);
        expect(none.stderr).toContain("the S3 keys on stdin are missing or malformed: nothing installed");
        expect(`${keptAfterNone.stdout}`).toBe(s3CurlConfig(keys));
        expectOk(off, "maintenance without the store");
        expectOk(gone, "ls");
        expect(lines(gone.stdout)).not.toContain("s3.curlrc");
        expect(lines(gone.stdout)).not.toContain("s3-ca.crt");
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
            { cmd: `printf '# edited by hand\\n' >> ${UNIT_PATH}` }, // 14: a unit systemd has not read
            start(UNIT_2), // 15: reload, then restart
        ]);
        r.forEach((x, i) => expectOk(x, `command ${i}`));
        const [, , , first, env, unchanged, , afterUnit, again, , afterBinary, , afterCerts, stamp, , afterEdit] = r;

        expect(first.systemctl).toEqual(["show -p NeedDaemonReload --value etcd", "--no-reload enable etcd", "start --no-block etcd"]);
        expect(lines(first.stdout)).toEqual([`started etcd: bootstrapping a new cluster (${INITIAL_CLUSTER})`]);
        // The bootstrap settings went to the env file, not the unit.
        expect(lines(env.stdout).slice(1)).toEqual([`ETCD_INITIAL_CLUSTER=${INITIAL_CLUSTER}`, "ETCD_INITIAL_CLUSTER_STATE=new", "ETCD_INITIAL_CLUSTER_TOKEN=etcd-ha-token-one"]);

        expect(unchanged.systemctl).toEqual(["show -p NeedDaemonReload --value etcd", "is-active --quiet etcd", "--no-reload enable etcd"]);
        expect(lines(unchanged.stdout)).toEqual(["etcd is running with this configuration: nothing to do", "member etcd1 healthy after 1 check(s)"]);

        expect(afterUnit.systemctl).toEqual(["show -p NeedDaemonReload --value etcd", "is-active --quiet etcd", "restart etcd", "--no-reload enable etcd"]);
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
        // systemd re-reads units only when one changed since it last did: the config step reloads when it writes
        // the unit (none above after a config step), the start step when the unit changed otherwise.
        for (const x of [first, unchanged, afterUnit, again, afterBinary, afterCerts]) expect(x.systemctl).not.toContain("daemon-reload");
        expect(afterEdit.systemctl).toEqual(["show -p NeedDaemonReload --value etcd", "daemon-reload", "is-active --quiet etcd", "restart etcd", "--no-reload enable etcd"]);

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

    test("deletes after prepare, binaries, certs, config: keys, unit, binaries and state gone; data dir, snapshots, the etcd user and others' files kept; twice", () => {
        const release = fakeRelease();
        const foreign = [
            "echo notes > /etc/etcd/NOTES.txt",
            "echo tool > /usr/local/bin/kubectl",
            "echo other > /var/tmp/other-tool",
            `echo notes > ${DATA_DIR}/NOTES.txt`,
            `install -d -m 0700 ${SNAPSHOT_DIR} && echo snap > ${SNAPSHOT_DIR}/etcd-lab-etcd1-20260101T000000Z.db`,
            // What a start step leaves that its leave would remove: both are the program's own files.
            `echo ETCD_INITIAL_CLUSTER_STATE=new > ${BOOTSTRAP_ENV_PATH} && echo x > ${STATE_DIR}/etcd.started`,
        ].join(" && ");
        const r = runInSandbox([
            prepare(), // 0
            pushTarball(release.tarball), // 1
            binaries(release.sha256), // 2
            installRelease(release.sha256), // 3
            certs(bundleFiles()), // 4
            config(UNIT_1), // 5
            { cmd: foreign }, // 6
            listing(), // 7
            ...deletes(), // 8-11
            listing(), // 12
            { cmd: "getent passwd etcd >/dev/null && getent group etcd >/dev/null" }, // 13
            ...deletes(), // 14-17
            listing(), // 18
        ]);
        r.forEach((x, i) => expectOk(x, `command ${i}`));
        const [before, certsDel, configDel, binariesDel, prepareDel, after, user, certsAgain, configAgain, binariesAgain, prepareAgain, afterAgain] = r.slice(7);
        expectOk(user, "the etcd user and group");
        expect(lines(r[2].stdout).pop()).toMatch(/^staged etcd 3\.5\.21 \(amd64\) from etcd-v3\.5\.21-linux-amd64\.tar\.gz, sha256 verified/);

        // Installed: every file each delete has to remove is there.
        const bins = ["etcd", "etcdctl", "etcdutl"].map((b) => `/usr/local/bin/${b}`);
        const installed = lines(before.stdout);
        for (const p of [...CERT_FILES.map((f) => pki(f.name)), ...CONFIG_PATHS, BOOTSTRAP_ENV_PATH, ...bins, RELEASE_MARKER, stagedReleaseDir({ version: VERSION, sha256: release.sha256 }), PUSHED_TARBALL]) {
            expect([p, installed.includes(p)]).toEqual([p, true]);
        }

        // Each delete removed exactly what its step wrote, and said so on one line.
        expect(removed(certsDel)).toEqual({ what: "certificates and keys", paths: [...CERT_FILES.map((f) => pki(f.name)), PKI_DIR] });
        expect(leftAlone(certsDel)).toEqual([]);
        expect(removed(configDel)).toEqual({ what: "unit and config", paths: [UNIT_PATH, ETCDCTL_ENV_PATH, ETCDCTL_WRAPPER_PATH, BOOTSTRAP_ENV_PATH] });
        expect(configDel.systemctl).toEqual(["disable --now etcd", "daemon-reload"]);
        expect(removed(binariesDel)).toEqual({ what: `binaries of etcd ${VERSION} and staged releases`, paths: [...bins, RELEASES_DIR, RELEASE_MARKER] });
        expect(leftAlone(binariesDel)).toEqual([]);
        expect(removed(prepareDel)).toEqual({ what: "this program's state", paths: [STATE_DIR, STAGING_DIR] });
        // Another file in /etc/etcd keeps the dir, and is named.
        for (const x of [configDel, prepareDel]) expect(leftAlone(x)).toEqual(["/etc/etcd (not empty: NOTES.txt)"]);
        expect(lines(prepareDel.stdout).pop()).toBe(`kept on this host: ${DATA_DIR} (the data dir); ${SNAPSHOT_DIR} (snapshots); the etcd user and group (owners of the data and snapshots)`);
        for (const x of [certsDel, configDel, binariesDel, prepareDel]) expect(x.stderr).toBe("");
        expect(certsDel.stdout).not.toContain("PRIVATE KEY");
        expect([certsDel, binariesDel, prepareDel].flatMap((x) => x.systemctl)).toEqual([]);

        // What is left on the host: the data dir, the snapshots and the files that were never this program's.
        expect(lines(after.stdout)).toEqual([
            "/etc/etcd",
            "/etc/etcd/NOTES.txt",
            "/usr/local/bin/kubectl",
            SNAPSHOT_DIR,
            `${SNAPSHOT_DIR}/etcd-lab-etcd1-20260101T000000Z.db`,
            DATA_DIR,
            `${DATA_DIR}/NOTES.txt`,
            "/var/tmp/other-tool",
        ]);

        // Again: nothing left to remove, nothing reloaded, the same host.
        for (const x of [certsAgain, configAgain, binariesAgain, prepareAgain]) expect(removed(x).paths).toEqual([]);
        expect(removed(binariesAgain).what).toBe("binaries and staged releases");
        expect(leftAlone(binariesAgain)).toEqual([]);
        expect(configAgain.systemctl).toEqual([]);
        expect(lines(prepareAgain.stdout).pop()).toBe(lines(prepareDel.stdout).pop());
        expect(afterAgain.stdout).toBe(after.stdout);
    });

    test("deletes on a host where the creates never ran, or ran only in part, remove what is there and nothing else", () => {
        const r = runInSandbox([
            ...deletes(), // 0-3: nothing was ever installed
            prepare(), // 4
            dummyEtcd("operator"), // 5: an etcd this program did not install (no release marker)
            // 6: a binaries run and a certs run cut short (the certs run's private dir holds a key).
            { cmd: `install -d -m 0700 ${RELEASES_DIR}/etcd-v${VERSION}-0123456789abcdef.new ${PKI_DIR}/.incoming.Ab12Cd && echo ca > ${PKI_DIR}/ca.crt && echo key > ${PKI_DIR}/.incoming.Ab12Cd/server.key` },
            ...deletes(), // 7-10
            listing(), // 11
        ]);
        r.forEach((x, i) => expectOk(x, `command ${i}`));
        const [c0, g0, b0, p0] = r;
        for (const x of [c0, g0, b0, p0]) expect(removed(x).paths).toEqual([]);
        expect(g0.systemctl).toEqual([]);
        expect(lines(p0.stdout).pop()).toBe("kept on this host: the etcd user and group (owners of the data and snapshots)");

        const [c1, g1, b1, p1, left] = r.slice(7);
        expect(removed(c1).paths).toEqual([pki("ca.crt"), pki(".incoming.Ab12Cd"), PKI_DIR]);
        // The config dir, empty once the keys are gone, goes with the config delete.
        expect(removed(g1).paths).toEqual(["/etc/etcd"]);
        expect(g1.systemctl).toEqual([]);
        expect(removed(b1)).toEqual({ what: "binaries and staged releases", paths: [RELEASES_DIR] });
        expect(leftAlone(b1)).toEqual([`/usr/local/bin/etcd (no release marker ${RELEASE_MARKER}: not installed by this program)`]);
        expect(removed(p1).paths).toEqual([STATE_DIR]);
        for (const x of [c1, g1, p1]) expect(leftAlone(x)).toEqual([]);
        expect(lines(left.stdout)).toEqual(["/usr/local/bin/etcd", DATA_DIR]);
    });

    test("the config delete before the certs delete (they run side by side): the prepare delete removes the config dir then", () => {
        const r = runInSandbox([prepare(), certs(bundleFiles()), config(UNIT_1), removeConfig(), removeCerts(), removeBinaries(), removePrepare(), listing()]);
        r.forEach((x, i) => expectOk(x, `command ${i}`));
        const [, , , configDel, certsDel, , prepareDel, left] = r;
        expect(removed(configDel).paths).toEqual([UNIT_PATH, ETCDCTL_ENV_PATH, ETCDCTL_WRAPPER_PATH]);
        expect(leftAlone(configDel)).toEqual(["/etc/etcd (not empty: pki)"]);
        expect(removed(certsDel).paths).toEqual([...CERT_FILES.map((f) => pki(f.name)), PKI_DIR]);
        expect(removed(prepareDel).paths).toEqual([STATE_DIR, "/etc/etcd"]);
        expect(lines(left.stdout)).toEqual([DATA_DIR]);
    });

    test("deletes never follow a symbolic link: a linked PKI dir, state dir or unit is left alone, with what it points to", () => {
        const r = runInSandbox([
            prepare(), // 0
            {
                cmd: [
                    `rmdir ${PKI_DIR} && install -d -m 0700 /var/lib/keys && echo key > /var/lib/keys/server.key && ln -s /var/lib/keys ${PKI_DIR}`,
                    `rmdir ${STATE_DIR} && install -d -m 0700 /var/lib/elsewhere && echo keep > /var/lib/elsewhere/release && ln -s /var/lib/elsewhere ${STATE_DIR}`,
                    `echo '[Unit]' > /var/lib/custom.service && ln -s /var/lib/custom.service ${UNIT_PATH}`,
                ].join(" && "),
            }, // 1
            ...deletes(), // 2-5
            listing(), // 6
        ]);
        r.forEach((x, i) => expectOk(x, `command ${i}`));
        const [certsDel, configDel, binariesDel, prepareDel, left] = r.slice(2);
        expect(removed(certsDel).paths).toEqual([]);
        expect(leftAlone(certsDel)).toEqual([`${PKI_DIR} (a symbolic link: not followed)`]);
        expect(removed(configDel).paths).toEqual([]);
        expect(leftAlone(configDel)).toEqual([`${UNIT_PATH} (a symbolic link: not followed)`, "/etc/etcd (not empty: pki)"]);
        expect(configDel.systemctl).toEqual([]);
        expect(removed(binariesDel).paths).toEqual([]);
        expect(leftAlone(binariesDel)).toEqual([`${STATE_DIR} (a symbolic link: not followed)`]);
        expect(removed(prepareDel).paths).toEqual([]);
        expect(leftAlone(prepareDel)).toEqual([`${STATE_DIR} (a symbolic link: not followed)`, `${PKI_DIR} (a symbolic link: not followed)`, "/etc/etcd (not empty: pki)"]);
        expect(lines(left.stdout)).toEqual([
            "/etc/etcd",
            "/etc/etcd/pki",
            UNIT_PATH,
            "/var/lib/custom.service",
            "/var/lib/elsewhere",
            "/var/lib/elsewhere/release",
            DATA_DIR,
            STATE_DIR,
            "/var/lib/keys",
            "/var/lib/keys/server.key",
        ]);
    });

    test("the host is untouched", () => {
        expect(hostSnapshot()).toEqual(hostBefore);
    });
});
