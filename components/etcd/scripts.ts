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
import { TurnBounds, turnShell } from "./rolling";
import { tarballDir, tarballName, versionFeatures } from "./version";

/** etcdctl environment for admins on each member. */
export const ETCDCTL_ENV_PATH = "/etc/etcd/etcdctl.env";
/** etcdctl wrapper for admins (sources the env file). */
export const ETCDCTL_WRAPPER_PATH = `${BIN_DIR}/etcdctl.sh`;
/** Root-only directory for the scripts' own bookkeeping (what configuration etcd was last started with). */
export const STATE_DIR = "/var/lib/etcd-ha";
/** Where the air-gapped path stages release tarballs (writable by the SSH user through SFTP). */
export const STAGING_DIR = "/var/tmp/etcd-ha";

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
    const bins = releaseBinaries(opts.version);
    const tarball = tarballName(opts.version, opts.arch);
    const dir = tarballDir(opts.version, opts.arch);
    const staged = stagedReleaseDir(opts);
    const fetch =
        opts.source.kind === "download"
            ? `if ! command -v curl >/dev/null; then
  echo "curl is needed to download etcd: install curl, or set etcd-ha:etcd.install.method to push" >&2
  exit 1
fi
src="$work/${tarball}"
curl --fail --silent --show-error --location --retry 3 --connect-timeout 20 --max-time 900 -o "$src" ${sq(opts.source.url)}`
            : `src=${sq(opts.source.path)}
if [ ! -f "$src" ]; then
  echo "$src is missing: the tarball push step should have copied it" >&2
  exit 1
fi`;
    return `
# etcd-ha binaries: etcd ${opts.version} (${opts.arch}), sha256 ${opts.sha256}
want=${sq(opts.version)}
release_id=${sq(releaseId(opts))}
staged=${sq(staged)}
${f.arm64NeedsUnsupportedArch && opts.arch === "arm64" ? "export ETCD_UNSUPPORTED_ARCH=arm64\n" : ""}${opts.guard ? `${opts.guard.trim()}\n` : ""}# reports DIR: the binaries in DIR report version $want
reports() {
  local out
  for b in ${bins.join(" ")}; do
    [ -x "$1/$b" ] || return 1
  done
  # Output captured first: \`cmd | grep -q\` under pipefail fails when grep exits before cmd finishes writing.
  out=$("$1/etcd" --version 2>/dev/null) || return 1
  grep -qx "etcd Version: $want" <<<"$out" || return 1
  out=$("$1/etcdctl" version 2>/dev/null) || return 1
  grep -qx "etcdctl version: $want" <<<"$out" || return 1
${f.hasEtcdutl ? `  out=$("$1/etcdutl" version 2>/dev/null) || return 1\n  grep -qx "etcdutl version: $want" <<<"$out" || return 1\n` : ""}}
if [ "$(cat ${sq(RELEASE_MARKER)} 2>/dev/null || true)" = "$release_id" ] && reports ${sq(BIN_DIR)}; then
  echo "etcd $want (this release) already installed in ${BIN_DIR}"
  exit 0
fi
if [ "$(cat "$staged/release" 2>/dev/null || true)" = "$release_id" ] && reports "$staged"; then
  echo "etcd $want already staged in $staged"
  exit 0
fi
install -d -m 0700 -o root -g root ${sq(RELEASES_DIR)}
work=$(mktemp -d /var/tmp/etcd-ha-install.XXXXXX)
trap 'rm -rf "$work"' EXIT
${fetch}
if ! printf '%s  %s\\n' ${sq(opts.sha256)} "$src" | sha256sum --check --status; then
  echo "sha256 mismatch for ${tarball}: expected ${opts.sha256}, got $(sha256sum "$src" | cut -d' ' -f1); refusing to install" >&2
  exit 1
fi
tar -xzf "$src" -C "$work" --no-same-owner ${bins.map((b) => sq(`${dir}/${b}`)).join(" ")}
rm -rf "$staged.new"
install -d -m 0700 -o root -g root "$staged.new"
for b in ${bins.join(" ")}; do
  install -m 0755 -o root -g root "$work/${dir}/$b" "$staged.new/$b"
done
if ! reports "$staged.new"; then
  echo "the binaries in ${tarball} do not report version $want" >&2
  exit 1
fi
printf '%s\\n' "$release_id" > "$staged.new/release"
rm -rf "$staged"
mv -T "$staged.new" "$staged"
echo "staged etcd $want (${opts.arch}) from ${tarball}, sha256 verified, in $staged: each member's start step installs it in its turn"
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

/**
 * Shell shared by the start and leave steps: etcdctl with the admin certificate, the member list helpers,
 * and the rolling-operation helpers (`take_turn`). The script defines `others` before it takes its turn.
 */
function memberShell(o: MemberScriptOptions): string {
    return `name=${sq(o.name)}
peer_url=${sq(o.peerUrl)}
client_url=${sq(o.clientUrl)}
stamp=${sq(`${STATE_DIR}/etcd.started`)}
export ETCDCTL_API=3
etcd_ha_ctl=(${sq(`${BIN_DIR}/etcdctl`)} --cacert=${sq(`${PKI_DIR}/ca.crt`)} --cert=${sq(`${PKI_DIR}/admin.crt`)} --key=${sq(`${PKI_DIR}/admin.key`)} --dial-timeout=3s --command-timeout=15s)
ctl() {
  "\${etcd_ha_ctl[@]}" "$@"
}
${turnShell({ clusterName: o.clusterName, bounds: o.turn })}
# The member list line of the member with this peer URL (empty when it is not a member).
member_line() {
  awk -F', ' -v p="$peer_url" '$4 == p' <<<"$1"
}
logs() {
  echo "last etcd log lines:" >&2
  journalctl -u etcd -n 50 --no-pager >&2 || true
}
# A membership change through the other members, retried (bounded) while etcd answers "unhealthy
# cluster": its strict reconfiguration check wants every voter connected for the last 5 s, which a
# member promoted or restarted moments ago is not yet.
reconfigure() {
  local i out
  for ((i = 1; i <= ${o.attempts ?? 90}; i++)); do
    if out=$(ctl --endpoints="$others" "$@" 2>&1); then
      printf '%s\n' "$out"
      return 0
    fi
    case "$out" in
      *"unhealthy cluster"*) sleep ${o.intervalSeconds ?? 2} ;;
      *) printf '%s\n' "$out" >&2; return 1 ;;
    esac
  done
  echo "etcdctl $* still refused after ${o.attempts ?? 90} attempts: $out" >&2
  return 1
}`;
}

/**
 * start: brings this member up and keeps it up to date, deciding at run time what the member needs:
 * - data dir present (a running member): restart only when the unit, the binary or the certificates
 *   differ from what etcd was started with, then wait until the member is healthy (a rolling restart when
 *   start steps run one after another); otherwise nothing;
 * - empty data dir and a running cluster that does not list it: join as a learner (`member add
 *   --learner`, `initial-cluster-state existing` with the list `member add` prints), start, promote once
 *   caught up (bounded retries), wait until healthy;
 * - empty data dir and no cluster answering, or a cluster that lists it as a voter that never ran (no
 *   client URLs: the initial bootstrap): start with the planned cluster and `initial-cluster-state new` without waiting for
 *   quorum (`--no-block`; the cluster health gate waits for it);
 * - `replace`: once, stop etcd, `member remove` it through the other members, wipe the data dir (this
 *   named replacement is the one place a data dir is wiped besides a removal), then join as above.
 * A member the cluster lists as having run (it has client URLs) whose data dir is empty is refused with
 * the replace instruction.
 */
export function startScript(o: StartScriptOptions): string {
    const attempts = o.attempts ?? 90;
    const interval = o.intervalSeconds ?? 2;
    const caughtUpSeconds = attempts * interval;
    return `
# etcd-ha start: member ${o.name}, unit sha256 ${o.unitSha256}, etcd ${o.version}${o.release ? ` (tarball sha256 ${o.release.sha256})` : ""}${
        o.certsSha256 ? `\n# certificates sha256 ${o.certsSha256}` : ""
    }${o.replace ? `\n# replace requested for ${o.name}` : ""}${o.restoreId ? `\n# restore ${o.restoreId}` : ""}
${memberShell(o)}${o.release ? `\n${installReleaseShell(o.release)}` : ""}
data_dir=${sq(o.dataDir)}
others=${sq(o.others.join(","))}
all="$client_url\${others:+,$others}"
bootstrap_env=${sq(BOOTSTRAP_ENV_PATH)}
replaced_marker=${sq(`${STATE_DIR}/replaced`)}
fingerprint() {
  local unit_sum etcd_sum certs_sum
  unit_sum=$(sha256sum ${sq(UNIT_PATH)} | cut -d' ' -f1) || return 1
  etcd_sum=$(sha256sum ${sq(`${BIN_DIR}/etcd`)} | cut -d' ' -f1) || return 1
  certs_sum=$(cat ${["ca.crt", "server.crt", "peer.crt"].map((f) => sq(`${PKI_DIR}/${f}`)).join(" ")} | sha256sum | cut -d' ' -f1) || return 1
  echo "unit=$unit_sum etcd=$etcd_sum certs=$certs_sum${o.release ? ` release=$(cat ${sq(RELEASE_MARKER)})` : ""}"
}
wait_healthy() {
  local i out=""
  for ((i = 1; i <= ${attempts}; i++)); do
    if out=$(ctl --endpoints="$client_url" endpoint health 2>&1); then
      echo "member $name healthy after $i check(s)"
      return 0
    fi
    sleep ${interval}
  done
  echo "member $name not healthy after ${attempts} checks ${interval}s apart: $out" >&2
  logs
  return 1
}
write_bootstrap() {
  local tmp
  tmp=$(mktemp ${sq(`${BOOTSTRAP_ENV_PATH}.XXXXXX`)})
  printf '%s\\n' "# Managed by etcd-ha: read by etcd only while its data dir is empty." "ETCD_INITIAL_CLUSTER=$2" "ETCD_INITIAL_CLUSTER_STATE=$1" ${sq(`ETCD_INITIAL_CLUSTER_TOKEN=${o.token}`)} > "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$bootstrap_env"
}
${o.release ? "# The release this member runs, installed in its turn (a running etcd keeps its old binary until the restart below).\ninstall_release\n" : ""}# What etcd is (re)started with; computed first, so a missing unit, binary or certificate fails before anything is done.
want=$(fingerprint)
systemctl daemon-reload
${
    o.replace
        ? `if [ "$(cat "$replaced_marker" 2>/dev/null || true)" != "$name" ]; then
  echo "replacing member $name: stop it, remove it from the cluster, wipe $data_dir, join again"
  take_turn
  etcd_ha_handover "$client_url" "$all" 30 "$etcd_ha_pending_others"
  systemctl stop etcd || true
  if ! list=$(ctl --endpoints="$others" member list 2>&1); then
    echo "cannot reach the other members ($others) to replace $name: $list" >&2
    exit 1
  fi
  line=$(member_line "$list")
  if [ -n "$line" ]; then
    reconfigure member remove "\${line%%,*}"
  fi
  find "$data_dir" -mindepth 1 -delete
  rm -f "$stamp"
  printf '%s\\n' "$name" > "$replaced_marker.pending"
fi`
        : `rm -f "$replaced_marker"`
}
${
    o.restoreId
        ? `if [ -d "$data_dir/member" ] && [ -f ${sq(restoredMarkerPath(o.restoreId))} ] && ! systemctl is-active --quiet etcd; then
  # The restored cluster has no quorum until enough members run: start without waiting; the gate waits.
  systemctl enable etcd
  systemctl start --no-block etcd
  printf '%s\\n' "$want" > "$stamp"
  echo "started restored member $name (restore ${o.restoreId}): the new cluster forms once a quorum of members has started"
  exit 0
fi
`
        : ""
}if [ -d "$data_dir/member" ]; then
  if systemctl is-active --quiet etcd; then
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
      echo "etcd is running with this configuration: nothing to do"
    else
      echo "unit, binary or certificates changed since etcd was started: restarting member $name in its turn"
      # One member at a time, every other member healthy, the leader last and handing over first.
      take_turn
      etcd_ha_handover "$client_url" "$all" 30 "$etcd_ha_pending_others"
      if ! systemctl restart etcd; then
        logs
        exit 1
      fi
      restarted=yes
    fi
  elif ! systemctl start etcd; then
    logs
    exit 1
  fi
  systemctl enable etcd
  wait_healthy
  if [ -n "\${restarted:-}" ]; then
    etcd_ha_caught_up "$client_url" "$all" ${caughtUpSeconds}
  fi
  printf '%s\\n' "$want" > "$stamp"
  exit 0
fi

# An empty data dir: bootstrap the cluster, or join the running one.
state=new
cluster=${sq(o.initialCluster)}
learner_id=""
# Is a cluster already running? Nobody listening: no (and no etcdctl timeout to wait for). A member that
# is starting but has no quorum yet accepts connections without completing TLS, so a short dial timeout
# tells it from a running cluster, which answers at once.
listening=""
for ep in \${others//,/ }; do
  hostport=\${ep#https://}
  # shellcheck disable=SC2016 # expanded by the inner bash
  if timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "\${hostport%:*}" "\${hostport##*:}" 2>/dev/null; then
    listening=yes
    break
  fi
done
if [ -n "$listening" ] && list=$(ctl --endpoints="$others" --dial-timeout=2s --command-timeout=3s member list 2>/dev/null); then
  line=$(member_line "$list")
  if [ -z "$line" ]; then
    echo "a running cluster does not list $name: joining it as a learner in its turn"
    # One join, restart or removal at a time, every member healthy (checked by take_turn).
    take_turn
    list=$(ctl --endpoints="$others" member list)
    if awk -F', ' '$6 == "true"' <<<"$list" | grep -q .; then
      echo "the cluster already has a learner (etcd allows one): promote or remove it first:" >&2
      printf '%s\\n' "$list" >&2
      exit 1
    fi
    added=$(reconfigure member add "$name" --peer-urls="$peer_url" --learner)
    printf '%s\\n' "$added"
    # etcdctl prints the ID with %16x: an ID below 2^60 is padded with spaces, not zeros.
    learner_id=$(sed -n 's/^Member  *\\([0-9a-f][0-9a-f]*\\) added to cluster.*/\\1/p' <<<"$added")
    if [ -z "$learner_id" ]; then
      echo "could not read the new member's ID from member add:" >&2
      printf '%s\\n' "$added" >&2
      exit 1
    fi
    cluster=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\\(.*\\)"$/\\1/p' <<<"$added")
    state=existing
  elif [ "$(awk -F', ' '{print $6}' <<<"$line")" = "true" ]; then
    echo "$name is already a learner of the running cluster (an earlier join stopped): resuming in its turn"
    take_turn
    learner_id=\${line%%,*}
    cluster=$(awk -F', ' -v n="$name" -v p="$peer_url" '{ printf "%s%s=%s", sep, ($4 == p ? n : $3), $4; sep = "," }' <<<"$list")
    state=existing
  elif [ -n "$(awk -F', ' '{print $5}' <<<"$line")" ]; then
    # Bootstrap members are listed (with names) from the start; only one that has run has client URLs.
    echo "the cluster lists $name as a member that has run, but $data_dir is empty: its data is lost. Replace it: set etcd-ha:replace to [$name] and run pulumi up" >&2
    exit 1
  fi
fi
if [ -z "$cluster" ]; then
  echo "could not read the cluster list for $name from member add" >&2
  exit 1
fi
write_bootstrap "$state" "$cluster"
systemctl enable etcd
if [ "$state" = new ]; then
  # A new cluster is ready only once a quorum of members has started: do not wait here.
  systemctl start --no-block etcd
  echo "started etcd: bootstrapping a new cluster ($cluster)"
else
  if ! systemctl start etcd; then
    logs
    exit 1
  fi
  echo "started etcd: joined the running cluster as a learner"
  promoted=""
  for ((i = 1; i <= ${attempts}; i++)); do
    if out=$(ctl --endpoints="$others" member promote "$learner_id" 2>&1); then
      promoted=yes
      echo "promoted $name ($learner_id) to a voting member after $i attempt(s)"
      break
    fi
    case "$out" in
      *"can only promote a learner member which is in sync with leader"* | *"unhealthy cluster"*) sleep ${interval} ;;
      *"can only promote a learner member"*) promoted=yes; echo "$name is already a voting member"; break ;;
      *) echo "member promote $learner_id failed: $out" >&2; exit 1 ;;
    esac
  done
  if [ -z "$promoted" ]; then
    echo "$name did not catch up with the leader after ${attempts} attempts ${interval}s apart: still a learner" >&2
    logs
    exit 1
  fi
  wait_healthy
  etcd_ha_caught_up "$client_url" "$all" ${caughtUpSeconds}
fi
printf '%s\\n' "$want" > "$stamp"
if [ -f "$replaced_marker.pending" ]; then
  mv -f "$replaced_marker.pending" "$replaced_marker"
fi
`;
}

/**
 * The start step's delete, run when the member leaves the program (scale-in) or the stack is destroyed:
 * `member remove` of this member through the other members (read from the etcdctl environment, which the
 * config steps keep current), a bounded wait until the remaining cluster is healthy, then etcd stopped and
 * disabled and the data dir wiped (the named removal). When no other member answers, it goes on only if
 * this member's own list holds nobody else (the last member of a destroyed cluster). etcd itself refuses a
 * removal that would leave too few started members for quorum (strict reconfiguration check).
 */
export function leaveScript(o: MemberScriptOptions & { dataDir: string }): string {
    const attempts = o.attempts ?? 60;
    const interval = o.intervalSeconds ?? 2;
    return `
# etcd-ha leave: member ${o.name} is removed from the cluster.
${memberShell(o)}
data_dir=${sq(o.dataDir)}
endpoints=$(sed -n 's/^ETCDCTL_ENDPOINTS=//p' ${sq(ETCDCTL_ENV_PATH)} 2>/dev/null || true)
others=$(tr ',' '\\n' <<<"$endpoints" | grep -vxF "$client_url" | paste -sd, - || true)
list=""
if [ -n "$others" ]; then
  list=$(ctl --endpoints="$others" member list 2>/dev/null) || list=""
fi
if [ -z "$list" ]; then
  own=$(ctl --endpoints="$client_url" member list 2>/dev/null) || own=""
  if [ -n "$own" ] && [ "$(grep -c . <<<"$own")" = 1 ] && [ -n "$(member_line "$own")" ]; then
    echo "$name is the last member of its cluster: nothing to remove it from"
  else
    echo "no other member answers ($others) and $name is not the last member: cannot remove it safely. Bring the cluster back, or remove the member by hand (etcdctl member remove) and run pulumi up again" >&2
    exit 1
  fi
else
  line=$(member_line "$list")
  if [ -n "$line" ]; then
    id=\${line%%,*}
    # One removal, join or restart at a time, every other member healthy; a leader hands over first.
    take_turn
    etcd_ha_handover "$client_url" "$client_url,$others" 30 "$etcd_ha_pending_others"
    reconfigure member remove "$id"
    ok=""
    for ((i = 1; i <= ${attempts}; i++)); do
      if ctl --endpoints="$others" endpoint health --cluster >/dev/null 2>&1; then
        ok=yes
        echo "removed $name ($id); the remaining cluster is healthy after $i check(s)"
        break
      fi
      sleep ${interval}
    done
    if [ -z "$ok" ]; then
      echo "removed $name ($id), but the remaining cluster is not healthy after ${attempts} checks ${interval}s apart" >&2
      exit 1
    fi
  else
    echo "$name is not a member of the cluster (any more)"
  fi
fi
systemctl disable --now etcd || true
find "$data_dir" -mindepth 1 -delete
rm -f "$stamp" ${sq(BOOTSTRAP_ENV_PATH)}
echo "stopped etcd on $name and wiped $data_dir"
`;
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
    const endpoints = opts.members.map((m) => m.clientUrl).join(",");
    const after = (opts.after ?? []).map((a) => {
        if (a.includes("\n")) throw new Error("health gate: a reason must be one line");
        return `# after: ${a}\n`;
    });
    return `
# etcd-ha health gate: ${opts.members.length} members.
${after.join("")}
expected=${opts.members.length}
peers=(${opts.members.map((m) => sq(m.peerUrl)).join(" ")})
ctl=(${sq(`${BIN_DIR}/etcdctl`)} --endpoints=${sq(endpoints)} --cacert=${sq(`${PKI_DIR}/ca.crt`)} --cert=${sq(`${PKI_DIR}/healthcheck-client.crt`)} --key=${sq(`${PKI_DIR}/healthcheck-client.key`)} --dial-timeout=3s --command-timeout=5s)
export ETCDCTL_API=3
attempt=0
deadline=$((SECONDS + ${opts.timeoutSeconds}))
while :; do
  attempt=$((attempt + 1))
  list=$("\${ctl[@]}" member list 2>&1) || true
  health=$("\${ctl[@]}" endpoint health --cluster 2>&1) || true
  problems=""
  while read -r name client peer; do
    if ! grep -Fq ", started, $name, $peer, $client, false" <<<"$list"; then
      problems="$problems $name(not a started voting member with $peer)"
    elif ! grep -Fq "$client is healthy" <<<"$health"; then
      problems="$problems $name(unhealthy at $client)"
    fi
  done <<'ETCD_HA_MEMBERS'
${opts.members.map((m) => `${m.name} ${m.clientUrl} ${m.peerUrl}`).join("\n")}
ETCD_HA_MEMBERS
  # Members no longer in the program are removed by their own delete steps at the end of the run.
  extra=$(awk -F', ' 'NR == FNR { planned[$1] = 1; next } /^[0-9a-f]+, / && !($4 in planned) { printf " %s", ($3 == "" ? $1 : $3) }' <(printf '%s\n' "\${peers[@]}") <(printf '%s\n' "$list"))
  if [ -z "$problems" ]; then
    echo "healthy: $expected/$expected members after $attempt attempt(s) in \${SECONDS}s\${extra:+; still listed, removed at the end of this run:$extra}"
    exit 0
  fi
  if [ "$attempt" -ge ${opts.attempts} ] || [ "$SECONDS" -ge "$deadline" ]; then
    echo "etcd cluster not healthy after $attempt attempt(s) in \${SECONDS}s; unhealthy:$problems" >&2
    echo "--- etcdctl member list" >&2
    printf '%s\\n' "$list" >&2
    echo "--- etcdctl endpoint health --cluster" >&2
    printf '%s\\n' "$health" >&2
    exit 1
  fi
  sleep ${opts.intervalSeconds}
done
`;
}
