/**
 * The shell scripts the remote commands run on each member, rendered by pure functions. Every script runs
 * under bash with `set -euo pipefail`, is idempotent (re-running it on a live member changes nothing and
 * restarts nothing unless its inputs changed), never prints secrets, and never deletes a data dir.
 *
 * Scripts reach the host inside the command text (`bash -c "$(cat <<'…' … )"`, through sudo when the SSH
 * user is not root), which leaves the command's stdin free for the one step that needs it: private keys
 * are delivered on stdin only, never in the command text, the environment or the output.
 */
import { PKI_DIR } from "../pki/certTable";
import { EtcdArch } from "./releases";
import { BIN_DIR, BOOTSTRAP_ENV_PATH, UNIT_PATH } from "./flags";
import { sq } from "./shell";
import { CONFIG_DIR, overlaps, STAGING_DIR, STATE_DIR } from "./paths";
import { BINARIES_SH, coordinationPrefix, GATE_SH, MEMBER_SH, rollingHelpers, shellFile, shellParams, teardownMarkerKey, TurnBounds, UNINSTALL_SH } from "./rolling";
import { tarballDir, tarballName, versionFeatures } from "./version";

/** etcdctl environment for admins on each member. */
export const ETCDCTL_ENV_PATH = "/etc/etcd/etcdctl.env";
/** etcdctl wrapper for admins (sources the env file). */
export const ETCDCTL_WRAPPER_PATH = `${BIN_DIR}/etcdctl.sh`;
// STATE_DIR: root-only bookkeeping (what configuration etcd was last started with); STAGING_DIR: where the
// air-gapped path stages release tarballs (writable by the SSH user through SFTP). Defined with the path rules.
export { STATE_DIR, STAGING_DIR };

const SCRIPT_DELIMITER = "ETCD_HA_SCRIPT";

export { sq };

/**
 * Wraps a script body into the command text sent over SSH: the user's login shell runs
 * `[sudo -n] /bin/bash -c "<script>"`, with the script carried by a quoted here-document (no expansion).
 * `sudo -n` fails at once with "a password is required" instead of hanging when sudo is not passwordless.
 */
export function wrapScript(body: string, sshUser: string): string {
    const script = `set -euo pipefail\n${body.trimEnd()}`;
    if (script.split("\n").includes(SCRIPT_DELIMITER)) throw new Error(`script contains the delimiter line ${SCRIPT_DELIMITER}`);
    const sudo = sshUser === "root" ? "" : "sudo -n ";
    return `${sudo}/bin/bash -c "$(cat <<'${SCRIPT_DELIMITER}'\n${script}\n${SCRIPT_DELIMITER}\n)"`;
}

/** The script inside a wrapped command (for tests and the lab's checks). */
export function unwrapScript(command: string): string {
    const start = command.indexOf(`<<'${SCRIPT_DELIMITER}'\n`);
    const end = command.lastIndexOf(`\n${SCRIPT_DELIMITER}\n`);
    if (start < 0 || end < 0) throw new Error("not a wrapped etcd-ha script");
    return command.slice(start + SCRIPT_DELIMITER.length + 5, end);
}

/** prepare: the `etcd` system user, `/etc/etcd/pki` (0750 root:etcd) and the data dir (0700 etcd:etcd). */
export function prepareScript(opts: { dataDir: string }): string {
    return `
# etcd-ha prepare: system user and directories. Creates, never wipes.
if ! getent group etcd >/dev/null; then
  groupadd --system etcd
  echo "created group etcd"
fi
if ! getent passwd etcd >/dev/null; then
  useradd --system --gid etcd --home-dir ${sq(opts.dataDir)} --no-create-home --shell /usr/sbin/nologin --comment "etcd server" etcd
  echo "created system user etcd"
fi
install -d -m 0755 -o root -g root /etc/etcd
install -d -m 0750 -o root -g etcd ${sq(PKI_DIR)}
install -d -m 0700 -o etcd -g etcd ${sq(opts.dataDir)}
install -d -m 0700 -o root -g root ${sq(STATE_DIR)}
echo "ready: user etcd, ${PKI_DIR} 0750 root:etcd, ${opts.dataDir} 0700 etcd:etcd"
`;
}

/** Where the binaries come from. */
export type BinarySource = { kind: "download"; url: string } | { kind: "push"; path: string };

/** The remote path the air-gapped path pushes a release tarball to. */
export function stagedTarballPath(version: string, arch: EtcdArch): string {
    return `${STAGING_DIR}/${tarballName(version, arch)}`;
}

/** Root-only directory the binaries step stages verified releases in, for the start step to install. */
export const RELEASES_DIR = `${STATE_DIR}/releases`;
/** The file recording which release (`<version> <tarball sha256>`) is installed in BIN_DIR. */
export const RELEASE_MARKER = `${STATE_DIR}/release`;

/** One etcd release as the member scripts handle it: a version and the sha256 of its tarball. */
export interface EtcdRelease {
    version: string;
    sha256: string;
}

/** The binaries a release installs: etcd, etcdctl, and etcdutl from 3.5. */
export function releaseBinaries(version: string): string[] {
    return ["etcd", "etcdctl", ...(versionFeatures(version).hasEtcdutl ? ["etcdutl"] : [])];
}

/** How the scripts name a release: `<version> <tarball sha256>` (the content of RELEASE_MARKER). */
export function releaseId(r: EtcdRelease): string {
    return `${r.version} ${r.sha256}`;
}

/** The marker the restore step leaves once this restore (its id) is in the data dir (restore.ts writes it). */
export function restoredMarkerPath(restoreId: string): string {
    return `${STATE_DIR}/restored-${restoreId}`;
}

/** Where the binaries step stages a release (`…/releases/etcd-v<version>-<first 16 of sha256>`). */
export function stagedReleaseDir(r: EtcdRelease): string {
    return `${RELEASES_DIR}/etcd-v${r.version}-${r.sha256.slice(0, 16)}`;
}

/**
 * Bash defining `install_release`: installs the staged release into BIN_DIR (each binary renamed into
 * place, so a running etcd keeps its old file) and records it in RELEASE_MARKER, unless the marker already
 * names it; then removes other staged releases. Fails naming the binaries step when the release is not
 * staged. The start step calls it in the member's turn (right before the restart that runs the new
 * binary); the restore step calls it while etcd is stopped.
 */
export function installReleaseShell(r: EtcdRelease): string {
    const staged = stagedReleaseDir(r);
    return `release_id=${sq(releaseId(r))}
install_release() {
  local b
  if [ "$(cat ${sq(RELEASE_MARKER)} 2>/dev/null || true)" = "$release_id" ]; then
    return 0
  fi
  if [ "$(cat ${sq(`${staged}/release`)} 2>/dev/null || true)" != "$release_id" ]; then
    echo "etcd ${r.version} (sha256 ${r.sha256}) is not staged in ${staged}: the binaries step stages it; run pulumi up again" >&2
    exit 1
  fi
  for b in ${releaseBinaries(r.version).join(" ")}; do
    install -m 0755 -o root -g root ${sq(staged)}/"$b" ${sq(BIN_DIR)}/."$b".new
    mv -f ${sq(BIN_DIR)}/."$b".new ${sq(BIN_DIR)}/"$b"
  done
  printf '%s\n' "$release_id" > ${sq(`${RELEASE_MARKER}.tmp`)}
  mv -f ${sq(`${RELEASE_MARKER}.tmp`)} ${sq(RELEASE_MARKER)}
  find ${sq(RELEASES_DIR)} -mindepth 1 -maxdepth 1 -name 'etcd-v*' ! -name ${sq(staged.split("/").pop()!)} -exec rm -rf -- {} +
  echo "installed etcd ${r.version} (tarball sha256 ${r.sha256}) into ${BIN_DIR}"
}`;
}

/**
 * binaries: stages etcd, etcdctl (and etcdutl from 3.5) from the release tarball, verified against the
 * pinned sha256 before anything is unpacked, into a root-only dir (stagedReleaseDir); the start step
 * installs them in the member's turn. First the upgrade guard (`guard`, from upgrade.ts) refuses a version
 * change etcd does not support, before anything is fetched. Skips when the release is installed or staged.
 */
export function binariesScript(opts: { version: string; arch: EtcdArch; sha256: string; source: BinarySource; guard?: string }): string {
    const f = versionFeatures(opts.version);
    return `
# etcd-ha binaries: etcd ${opts.version} (${opts.arch}), sha256 ${opts.sha256}
${shellParams({
    want: opts.version,
    release_id: releaseId(opts),
    sha256: opts.sha256,
    arch: opts.arch,
    bins: releaseBinaries(opts.version).join(" "),
    tarball: tarballName(opts.version, opts.arch),
    tarball_dir: tarballDir(opts.version, opts.arch),
    source_kind: opts.source.kind,
    source: opts.source.kind === "download" ? opts.source.url : opts.source.path,
    staged: stagedReleaseDir(opts),
    releases_dir: RELEASES_DIR,
    release_marker: RELEASE_MARKER,
    bin_dir: BIN_DIR,
})}
${f.arm64NeedsUnsupportedArch && opts.arch === "arm64" ? "export ETCD_UNSUPPORTED_ARCH=arm64\n" : ""}${shellFile(BINARIES_SH).trimEnd()}
${opts.guard ? `${opts.guard.trim()}\n` : ""}etcd_ha_binaries
`;
}

const BUNDLE_HEADER = "#etcd-ha-file";
const FILE_NAME = /^[a-z0-9][a-z0-9.-]*$/;

/** Frames files into the stdin stream the certs step reads. Secret content: pass the result as a secret. */
export function renderCertBundle(files: readonly { name: string; content: string }[]): string {
    return files
        .map((f) => {
            if (!FILE_NAME.test(f.name)) throw new Error(`bad bundle file name ${f.name}`);
            if (f.content.split("\n").some((l) => l.trimStart().startsWith(BUNDLE_HEADER))) throw new Error(`${f.name} contains a bundle header line`);
            return `${BUNDLE_HEADER} ${f.name}\n${f.content.endsWith("\n") ? f.content : `${f.content}\n`}`;
        })
        .join("");
}

/** Splits a bundle back into files (tests). */
export function parseCertBundle(bundle: string): Map<string, string> {
    const out = new Map<string, string>();
    let name: string | undefined;
    for (const line of bundle.split("\n").slice(0, bundle.endsWith("\n") ? -1 : undefined)) {
        if (new RegExp(`^${BUNDLE_HEADER} [a-z0-9][a-z0-9.-]*$`).test(line)) {
            name = line.slice(BUNDLE_HEADER.length + 1);
            out.set(name, "");
        } else if (name !== undefined) out.set(name, `${out.get(name)}${line}\n`);
    }
    return out;
}

/**
 * certs: reads the bundle on stdin into a private temporary dir (umask 077), then installs each file whose
 * content differs: keys 0600, certificates 0644, all owned by etcd. Prints only file names and certificate
 * fingerprints. etcd re-reads certificates on new connections, so nothing is restarted here.
 */
export function certsScript(files: readonly { name: string; mode: string }[]): string {
    for (const f of files) if (!FILE_NAME.test(f.name) || !/^0[0-7]{3}$/.test(f.mode)) throw new Error(`bad file ${f.name} ${f.mode}`);
    return `
# etcd-ha certs: private keys arrive on stdin only.
umask 077
incoming=$(mktemp -d ${sq(`${PKI_DIR}/.incoming.XXXXXX`)})
trap 'rm -rf "$incoming"' EXIT
awk -v dir="$incoming" '
  /^${BUNDLE_HEADER} [a-z0-9][a-z0-9.-]*$/ { if (out != "") close(out); out = dir "/" substr($0, ${BUNDLE_HEADER.length + 2}); printf "" > out; next }
  out != "" { print > out }
'
files=$(cat <<'ETCD_HA_FILES'
${files.map((f) => `${f.name} ${f.mode}`).join("\n")}
ETCD_HA_FILES
)
# Every file must be present before any is installed: never a new certificate beside an old key.
while read -r name mode; do
  if [ ! -s "$incoming/$name" ]; then
    echo "the certificate bundle on stdin has no $name: nothing installed" >&2
    exit 1
  fi
done <<<"$files"
changed=""
while read -r name mode; do
  target=${sq(PKI_DIR)}/$name
  if [ -f "$target" ] && cmp -s "$incoming/$name" "$target"; then
    chown etcd:etcd "$target"
    chmod "$mode" "$target"
    continue
  fi
  chown etcd:etcd "$incoming/$name"
  chmod "$mode" "$incoming/$name"
  mv -f "$incoming/$name" "$target"
  changed="$changed $name"
done <<<"$files"
for name in ${files.filter((f) => f.name.endsWith(".crt")).map((f) => f.name).join(" ")}; do
  echo "$name sha256 $(sha256sum ${sq(PKI_DIR)}/"$name" | cut -d' ' -f1)"
done
echo "changed:\${changed:- none}"
`;
}

/** `/etc/etcd/etcdctl.env`: ETCDCTL_* for admins (paths only, no secrets). */
export function renderEtcdctlEnv(opts: { endpoints: readonly string[] }): string {
    return [
        "# Managed by etcd-ha: etcdctl settings for this cluster (admin client certificate).",
        "ETCDCTL_API=3",
        `ETCDCTL_ENDPOINTS=${opts.endpoints.join(",")}`,
        `ETCDCTL_CACERT=${PKI_DIR}/ca.crt`,
        `ETCDCTL_CERT=${PKI_DIR}/admin.crt`,
        `ETCDCTL_KEY=${PKI_DIR}/admin.key`,
        "ETCDCTL_DIAL_TIMEOUT=3s",
        "",
    ].join("\n");
}

/** `/usr/local/bin/etcdctl.sh`: etcdctl with the cluster's environment (run it with sudo). */
export function renderEtcdctlWrapper(): string {
    return `#!/bin/sh
# Managed by etcd-ha: etcdctl with this cluster's endpoints and the admin client certificate.
# Usage: sudo etcdctl.sh member list -w table
set -a
. ${ETCDCTL_ENV_PATH}
set +a
if [ ! -r "$ETCDCTL_KEY" ]; then
  echo "etcdctl.sh: cannot read $ETCDCTL_KEY; run it with sudo" >&2
  exit 1
fi
exec ${BIN_DIR}/etcdctl "$@"
`;
}

/** A file the config step writes. */
export interface ManagedFile {
    path: string;
    mode: string;
    owner: string;
    content: string;
}

/**
 * config: writes the unit, the etcdctl env file and the wrapper, each only when its content differs, and
 * runs `systemctl daemon-reload` only when the unit changed. Starts and restarts nothing. With `guard` (the
 * upgrade guard), a refused version change exits before any file is written: a unit rendered with another
 * release's flags never lands beside the binary that cannot parse them.
 */
export function configScript(files: readonly ManagedFile[], opts: { title?: string; guard?: string } = {}): string {
    const { title = "config: unit, etcdctl environment and wrapper.", guard } = opts;
    const blocks = files.map((f, i) => {
        const delim = `ETCD_HA_FILE_${i}`;
        if (f.content.split("\n").includes(delim)) throw new Error(`${f.path} contains ${delim}`);
        if (!/^\/[A-Za-z0-9._/-]+$/.test(f.path) || !/^0[0-7]{3}$/.test(f.mode) || !/^[a-z_][a-z0-9_-]*:[a-z_][a-z0-9_-]*$/.test(f.owner)) {
            throw new Error(`bad managed file ${f.path} ${f.mode} ${f.owner}`);
        }
        return `write_file ${sq(f.path)} ${f.mode} ${f.owner} <<'${delim}'\n${f.content.endsWith("\n") ? f.content.slice(0, -1) : f.content}\n${delim}`;
    });
    return `
# etcd-ha ${title}
${guard ? `${guard.trim()}\n` : ""}changed=""
write_file() {
  local path=$1 mode=$2 owner=$3 tmp
  tmp=$(mktemp "$path.XXXXXX")
  cat > "$tmp"
  chmod "$mode" "$tmp"
  chown "$owner" "$tmp"
  if [ -f "$path" ] && cmp -s "$tmp" "$path"; then
    rm -f "$tmp"
    chmod "$mode" "$path"
    chown "$owner" "$path"
  else
    mv -f "$tmp" "$path"
    changed="$changed $path"
  fi
}
${blocks.join("\n")}
case "$changed" in
  *${UNIT_PATH}*) systemctl daemon-reload ;;
esac
echo "changed:\${changed:- none}"
`;
}

/** What the start step of one member needs. */
export interface StartScriptOptions extends MemberScriptOptions {
    /** The rendered unit's digest (a changed unit changes this command and re-runs it). */
    unitSha256: string;
    version: string;
    dataDir: string;
    /** The planned `--initial-cluster` (used only when the cluster is bootstrapped). */
    initialCluster: string;
    /** The cluster token (used only when the cluster is bootstrapped). */
    token: string;
    /** The other planned members' client URLs (asked whether a cluster is already running). */
    others: readonly string[];
    /** Replace this member: leave the cluster, wipe the data dir, join again as a new member (once). */
    replace?: boolean;
    /**
     * The release to run: installed from the binaries step's staging dir in this member's turn (when the
     * installed one differs), and part of what a change restarts etcd for. Unset: whatever is in BIN_DIR.
     */
    release?: EtcdRelease;
    /** Digest of the member's certificates (public parts): a renewal changes this command and re-runs it. */
    certsSha256?: string;
    /**
     * The restore this run performs (its id): a member restored by the restore step is started without
     * waiting, since the restored cluster has no quorum until enough members run; the health gate waits.
     */
    restoreId?: string;
}

/** What the start and leave steps share: the member, and how it takes its turn to change a live cluster. */
export interface MemberScriptOptions {
    name: string;
    peerUrl: string;
    clientUrl: string;
    /** The cluster's name: its members coordinate under an etcd key prefix of that name. */
    clusterName: string;
    /** Bounds of the wait for this member's turn and of the turn itself. */
    turn: TurnBounds;
    /** Bounds of the waits for health and promotion: attempts, seconds apart. Default 90 × 2 s. */
    attempts?: number;
    intervalSeconds?: number;
}

/** The parameters member.sh shares between the start and leave steps. */
function memberParams(o: MemberScriptOptions, defaultAttempts: number): Record<string, string | number> {
    return {
        name: o.name,
        peer_url: o.peerUrl,
        client_url: o.clientUrl,
        attempts: o.attempts ?? defaultAttempts,
        interval: o.intervalSeconds ?? 2,
        coordination: coordinationPrefix(o.clusterName),
        teardown_marker: teardownMarkerKey(o.clusterName),
        turn_wait: o.turn.waitSeconds,
        turn_hold: o.turn.holdSeconds,
        bin_dir: BIN_DIR,
        unit_path: UNIT_PATH,
        pki_dir: PKI_DIR,
        stamp: `${STATE_DIR}/etcd.started`,
        bootstrap_env: BOOTSTRAP_ENV_PATH,
        replaced_marker: `${STATE_DIR}/replaced`,
        release_marker: RELEASE_MARKER,
        etcdctl_env: ETCDCTL_ENV_PATH,
    };
}

/** A member step: its parameters, the rolling helpers, member.sh, then the call of its entry function. */
function memberStep(header: string, params: Record<string, string | number | boolean>, extra: string, entry: string): string {
    return `${header}
${shellParams(params)}
${extra ? `${extra}
` : ""}${rollingHelpers().trimEnd()}
${shellFile(MEMBER_SH).trimEnd()}
${entry}
`;
}

/**
 * start (`etcd_ha_start` in sh/member.sh): brings this member up and keeps it up to date, deciding at run
 * time what the member needs:
 * - data dir present (a running member): restart only when the unit, the binary or the certificates
 *   differ from what etcd was started with, in the member's turn (sh/rolling.sh: one member at a time,
 *   every other member healthy, the leader last after a handover), then wait until the member is healthy
 *   and caught up; otherwise nothing;
 * - empty data dir and a running cluster that does not list it: in the member's turn, join as a learner
 *   (`member add --learner`, `initial-cluster-state existing` with the list `member add` prints), start,
 *   promote once caught up (bounded retries), wait until healthy and caught up;
 * - empty data dir and no cluster answering, or a cluster that lists it as a voter that never ran (no
 *   client URLs: the initial bootstrap): start with the planned cluster and `initial-cluster-state new` without waiting for
 *   quorum (`--no-block`; the cluster health gate waits for it);
 * - `replace`: once, in the member's turn, stop etcd, `member remove` it through the other members, wipe the data dir (this
 *   named replacement is the one place a data dir is wiped besides a removal), then join as above.
 * A member the cluster lists as having run (it has client URLs) whose data dir is empty is refused with
 * the replace instruction.
 */
export function startScript(o: StartScriptOptions): string {
    const header = `
# etcd-ha start: member ${o.name}, unit sha256 ${o.unitSha256}, etcd ${o.version}${o.release ? ` (tarball sha256 ${o.release.sha256})` : ""}${
        o.certsSha256 ? `\n# certificates sha256 ${o.certsSha256}` : ""
    }${o.replace ? `\n# replace requested for ${o.name}` : ""}${o.restoreId ? `\n# restore ${o.restoreId}` : ""}`;
    return memberStep(
        header,
        {
            ...memberParams(o, 90),
            data_dir: o.dataDir,
            others: o.others.join(","),
            cluster: o.initialCluster,
            token: o.token,
            replace: o.replace === true,
            restore_id: o.restoreId ?? "",
            restored_marker: o.restoreId ? restoredMarkerPath(o.restoreId) : "",
            release: o.release !== undefined,
        },
        o.release ? installReleaseShell(o.release) : "",
        "etcd_ha_start",
    );
}

/**
 * The start step's delete, run when the member leaves the program (scale-in) or the stack is destroyed:
 * - when the cluster's teardown marker is set (`pulumi destroy`: the teardown step's delete wrote it before
 *   any member leaves), read locally on this member (or, when it does not answer, on the first other member
 *   that does): every member is leaving, so none is removed through the others; this one just stops;
 * - otherwise `member remove` of this member through the other members (read from the etcdctl environment,
 *   which the config steps keep current), in its turn, taken through this member and the others (the
 *   others may leave meanwhile); the wait for the turn ends early when this member's own list holds nobody
 *   else any more (the last member) or the marker appears, and fails when no member answers for 30 s. A
 *   leader hands over first; then a bounded wait until the remaining cluster is healthy. When no other
 *   member answers at all, it goes on only if this member's own list holds nobody else.
 * Then etcd is stopped and disabled and the data dir wiped (the named removal: `member/`), and what stays on
 * the host is named. etcd itself refuses a removal that would leave too few started members for quorum
 * (strict reconfiguration check).
 */
export function leaveScript(o: MemberScriptOptions & { dataDir: string }): string {
    return memberStep(
        `\n# etcd-ha leave: member ${o.name} leaves the cluster.`,
        { ...memberParams(o, 60), data_dir: o.dataDir, others: "", cluster: "", token: "", replace: false, restore_id: "", restored_marker: "", release: false },
        "",
        "etcd_ha_leave",
    );
}

/**
 * The dirs a delete never follows when one is a symbolic link: paths.ts OWNED_DIRS but the binaries dir
 * (/usr/local/bin is shared: a delete removes only the files this program installed there), plus the
 * staged releases.
 */
const NO_LINK_DIRS = [CONFIG_DIR, PKI_DIR, STATE_DIR, RELEASES_DIR, STAGING_DIR];

/** What the deletes take besides the paths every one gets (unset: empty). */
interface UninstallParams {
    cert_files?: string;
    config_files?: string;
    unit_path?: string;
    data_dir?: string;
    snapshot_dir?: string;
}

/**
 * A delete of an install step: every parameter of sh/uninstall.sh (this program's paths, then the step's own;
 * the other steps' empty), the file, then the call of its entry function.
 */
function uninstallStep(header: string, own: UninstallParams, entry: string): string {
    const params = {
        owned_dirs: NO_LINK_DIRS.join(" "),
        pki_dir: PKI_DIR,
        config_dir: CONFIG_DIR,
        bin_dir: BIN_DIR,
        release_marker: RELEASE_MARKER,
        releases_dir: RELEASES_DIR,
        state_dir: STATE_DIR,
        staging_dir: STAGING_DIR,
        cert_files: "",
        config_files: "",
        unit_path: "",
        data_dir: "",
        snapshot_dir: "",
        ...own,
    };
    // The provider hands a delete the step's stdin too (the certs step's holds the keys): never read.
    return `
# etcd-ha ${header}
exec </dev/null
${shellParams(params)}
${shellFile(UNINSTALL_SH).trimEnd()}
${entry}
`;
}

/**
 * The certs step's delete (`etcd_ha_uninstall_certs` in sh/uninstall.sh): removes exactly the files the step
 * installs (ca.crt and each `<file>.crt` / `<file>.key` of this member), the private dir of a certs run that
 * was cut short (`.incoming.*`, which may hold keys), then the PKI dir when nothing else is in it.
 */
export function certsRemoveScript(files: readonly { name: string }[]): string {
    for (const f of files) if (!FILE_NAME.test(f.name)) throw new Error(`bad file ${f.name}`);
    return uninstallStep("certs delete: this member's certificates and private keys.", { cert_files: files.map((f) => f.name).join(" ") }, "etcd_ha_uninstall_certs");
}

/**
 * The config step's delete (`etcd_ha_uninstall_config`): the unit (`systemctl disable --now etcd` first, a
 * no-op after the leave), then each of `paths` (the files the config step writes, and the unit's environment
 * file that the start step writes and its leave normally removes), `systemctl daemon-reload` when the unit
 * went, and the config dir when nothing else is in it.
 */
export function configRemoveScript(paths: readonly string[]): string {
    for (const p of paths) if (!/^\/[A-Za-z0-9._/-]+$/.test(p) || p.split("/").some((s, i) => i > 0 && (s === "" || s === "." || s === ".."))) throw new Error(`bad managed file ${p}`);
    return uninstallStep(
        "config delete: the unit, the etcdctl environment and wrapper.",
        { config_files: paths.join(" "), unit_path: paths.includes(UNIT_PATH) ? UNIT_PATH : "" },
        "etcd_ha_uninstall_config",
    );
}

/**
 * The binaries step's delete (`etcd_ha_uninstall_binaries`): the binaries the start step installed in BIN_DIR
 * (etcd, etcdctl, and etcdutl from 3.5), only when RELEASE_MARKER says this program installed them, and
 * their half-installed copies; the staged releases (RELEASES_DIR); then the marker.
 */
export function binariesRemoveScript(): string {
    return uninstallStep(
        "binaries delete: the installed etcd binaries and the staged releases.",
        {},
        "etcd_ha_uninstall_binaries",
    );
}

/**
 * The prepare step's delete (`etcd_ha_uninstall_prepare`), a member's last: this program's state dir
 * (STATE_DIR) and staging dir (STAGING_DIR), and the PKI and config dirs when empty (the certs and config
 * deletes run side by side). Keeps, and names, the data dir, the snapshot dir and the etcd user and group.
 * Throws when the data or snapshot dir overlaps the state or staging dir (the path rules refuse that first).
 */
export function prepareRemoveScript(opts: { dataDir: string; snapshotDir?: string }): string {
    for (const d of [opts.dataDir, opts.snapshotDir ?? ""].filter((x) => x !== "")) {
        for (const o of [STATE_DIR, STAGING_DIR]) if (overlaps(d, o)) throw new Error(`prepare delete: ${d} overlaps ${o}, which the delete removes`);
    }
    return uninstallStep(
        "prepare delete: this program's state; the data dir, snapshots and the etcd user stay.",
        { data_dir: opts.dataDir, snapshot_dir: opts.snapshotDir ?? "" },
        "etcd_ha_uninstall_prepare",
    );
}

/** A member as the health gate checks it. */
export interface GateMember {
    name: string;
    clientUrl: string;
    peerUrl: string;
}

/**
 * The cluster health gate, run on one member with the healthcheck client certificate: passes when
 * `member list` shows every expected member started, a voter, with the expected URLs, and
 * `endpoint health --cluster` reports each healthy. Members no longer planned may still be listed (their
 * delete steps remove them at the end of the run): they are named in the output. Retries are bounded in count and time; the failure
 * names every unhealthy member and shows both outputs.
 */
export function healthGateScript(opts: {
    members: readonly GateMember[];
    attempts: number;
    intervalSeconds: number;
    timeoutSeconds: number;
    /** What the gate checks the cluster after (the release, a restore): a change re-runs the gate. */
    after?: readonly string[];
}): string {
    const after = (opts.after ?? []).map((a) => {
        if (a.includes("\n")) throw new Error("health gate: a reason must be one line");
        return `# after: ${a}\n`;
    });
    for (const m of opts.members) {
        if (/\s/.test(`${m.name}${m.clientUrl}${m.peerUrl}`)) throw new Error(`health gate: member ${m.name} has whitespace in its name or URLs`);
    }
    return `
# etcd-ha health gate: ${opts.members.length} members.
${after.join("")}${shellParams({
        endpoints: opts.members.map((m) => m.clientUrl).join(","),
        attempts: opts.attempts,
        interval: opts.intervalSeconds,
        timeout: opts.timeoutSeconds,
        bin_dir: BIN_DIR,
        pki_dir: PKI_DIR,
    })}
gate_members=$(cat <<'ETCD_HA_MEMBERS'
${opts.members.map((m) => `${m.name} ${m.clientUrl} ${m.peerUrl}`).join("\n")}
ETCD_HA_MEMBERS
)
${shellFile(GATE_SH).trimEnd()}
etcd_ha_gate
`;
}
