/**
 * Day-2 maintenance on the members, rendered by pure functions: the scheduled snapshot (a root-only script,
 * a oneshot service and its timer) and the one-member-at-a-time defragmentation script with the NOSPACE
 * runbook (compact, defrag, disarm; etcd-operations.md C4, C6 and feature rows 26-32).
 *
 * Like `scripts.ts`: every script runs under bash with `set -euo pipefail`, never prints a secret, never
 * deletes anything but its own snapshot files (by exact name), and every wait in it is bounded. JSON from
 * etcdctl/etcdutl is read with bash's own regex matching, so neither jq nor python3 is needed on the host.
 * Bad settings throw an Error naming the setting.
 */
import { DNS_LABEL, S3_BUCKET, S3_ENDPOINT, S3_PREFIX, S3Config } from "../config/schema";
import { PKI_DIR } from "../pki/certTable";
import { BIN_DIR } from "./flags";
import { S3_SH, shellFile } from "./rolling";
import { sq } from "./scripts";
import { versionFeatures } from "./version";

/** Where the snapshot script is installed (root-only: it may carry the operator's off-host command). */
export const SNAPSHOT_SCRIPT_PATH = "/usr/local/bin/etcd-ha-snapshot";
/** Where the defragmentation script is installed. */
export const DEFRAG_SCRIPT_PATH = "/usr/local/bin/etcd-ha-defrag";
/** The oneshot unit that runs the snapshot script. */
export const SNAPSHOT_SERVICE = "etcd-ha-snapshot.service";
/** The timer that starts SNAPSHOT_SERVICE. */
export const SNAPSHOT_TIMER = "etcd-ha-snapshot.timer";
/** Default snapshot directory (created 0700 root when missing). */
export const DEFAULT_SNAPSHOT_DIR = "/var/backups/etcd";
/** Default lock file that keeps two snapshot runs from overlapping. */
export const DEFAULT_SNAPSHOT_LOCK = "/run/lock/etcd-ha-snapshot.lock";

/** Exit status of the snapshot script when the local snapshot is kept but the off-host command failed. */
export const OFF_HOST_FAILED_EXIT = 3;

/** Client TLS files for etcdctl. */
export interface ClientTls {
    cacert: string;
    cert: string;
    key: string;
}

/** The admin client certificate under PKI_DIR (the default identity of both scripts). */
export const ADMIN_CLIENT_TLS: ClientTls = { cacert: `${PKI_DIR}/ca.crt`, cert: `${PKI_DIR}/admin.crt`, key: `${PKI_DIR}/admin.key` };

/** What the snapshot script of one member needs. */
export interface SnapshotSettings {
    /** Cluster name (DNS label); the first part of each snapshot's file name. */
    clusterName: string;
    /** Member name (DNS label); the second part of each snapshot's file name. */
    memberName: string;
    /**
     * A DNS label that sets these snapshots apart (`pre-upgrade`): the third part of the file name. Tagged
     * and untagged snapshots are kept and pruned separately. Default: none (the scheduled snapshots).
     */
    tag?: string;
    /** etcd version (`3.5.21`): `snapshot status` runs with etcdutl from 3.5, with etcdctl before. */
    version: string;
    /** The local member's client URL (`https://10.0.0.11:2379`; `http://` only with `tls: null`). */
    endpoint: string;
    /**
     * Snapshot directory (absolute). Default DEFAULT_SNAPSHOT_DIR. The service refuses one under /tmp,
     * /var/tmp, /usr, /boot, /efi or /etc, which its sandbox hides or makes read-only.
     */
    dir?: string;
    /** How many snapshots of this cluster and member to keep, newest first: an integer from 1 to 1000. */
    retain: number;
    /**
     * The operator's shell command, run by root with bash after each verified snapshot, with the snapshot's
     * path as "$1" and its `.sha256` file as "$2" (stdin is /dev/null). When it fails or times out, the run
     * fails (exit OFF_HOST_FAILED_EXIT) and the local snapshot is kept. It is never printed; it is embedded
     * in the script, so keep credentials in files the command reads, not in the command itself.
     */
    offHostCommand?: string;
    /** Bound on the off-host command, seconds (default 3600). */
    offHostTimeoutSeconds?: number;
    /** etcdctl binary. Default `${BIN_DIR}/etcdctl`. */
    etcdctl?: string;
    /** etcdutl binary (used from 3.5). Default `${BIN_DIR}/etcdutl`. */
    etcdutl?: string;
    /** Client TLS files; default ADMIN_CLIENT_TLS. `null` renders no TLS flags (plain-http test members only). */
    tls?: ClientTls | null;
    /** Lock file. Default DEFAULT_SNAPSHOT_LOCK (the service refuses one under the dirs it hides, as for `dir`). */
    lockFile?: string;
    /** How long a run waits for the lock before giving up, seconds (default 600). */
    lockWaitSeconds?: number;
    /** Bound on `snapshot save`, seconds (default 1800). */
    snapshotTimeoutSeconds?: number;
    /** Off-host copies in an S3-compatible store (see S3Target). Default: none. */
    s3?: S3Target;
}

/**
 * An S3-compatible store the snapshot script copies every snapshot to (sh/s3.sh: curl's own SigV4, path-style
 * requests, https only): `etcd-ha:snapshots.s3` (its settings, documented in S3Schema) with the CA bundle and the
 * keys as files on the member. Objects are `<prefix><cluster>/<snapshot file name>`, with the snapshot's sha256
 * as metadata.
 */
export type S3Target = Omit<S3Config, "caPem"> & {
    /** A curl config file (root, 0600) with `user = "ACCESS_KEY:SECRET_KEY"`: the keys stay out of the script. */
    authFile: string;
    /** A CA bundle for the store's certificate. Default: the system's. */
    caFile?: string;
};

/** What the defragmentation script needs. */
export interface DefragSettings {
    /** Every member's client URL, in the order they are defragmented (all https, or all http with `tls: null`). */
    endpoints: string[];
    /** etcdctl binary. Default `${BIN_DIR}/etcdctl`. */
    etcdctl?: string;
    /** Client TLS files; default ADMIN_CLIENT_TLS. `null` renders no TLS flags (plain-http test members only). */
    tls?: ClientTls | null;
    /** `--command-timeout` of each defrag (and of the compaction), seconds (default 600). */
    defragTimeoutSeconds?: number;
    /** Health checks of the whole endpoint list before the first defrag and after each one (default 30). */
    healthAttempts?: number;
    /** Seconds between health checks (default 2). */
    healthIntervalSeconds?: number;
    /** Bound on one health wait, seconds (default 180). */
    healthTimeoutSeconds?: number;
    /** `--command-timeout` of each `endpoint health` check, seconds (default 5). */
    healthCheckTimeoutSeconds?: number;
}

/** A systemd timer's schedule for SNAPSHOT_SERVICE. */
export interface SnapshotTimerSettings {
    /** systemd `OnCalendar=` expression (`daily`, `*-*-* 02,14:00:00`, `*:0/30`). */
    onCalendar: string;
    /** `RandomizedDelaySec=`, whole seconds 0..86400 (spreads the members' snapshots). Default 0. */
    randomizedDelaySec?: number;
}

// ---------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------

const SAFE_PATH = /^(\/[A-Za-z0-9_][A-Za-z0-9._-]*)+$/;
const CLIENT_URL = /^(https?):\/\/([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):([0-9]{1,5})$/;
const ON_CALENDAR = /^[A-Za-z0-9*][A-Za-z0-9 ,:*/.~+-]*$/;

function fail(setting: string, problem: string): never {
    throw new Error(`${setting} ${problem}`);
}

function checkName(setting: string, value: string): string {
    if (typeof value !== "string" || !DNS_LABEL.test(value)) fail(setting, `must be a DNS label (lower-case letters, digits and '-', at most 63 characters), got ${JSON.stringify(value)}`);
    return value;
}

function checkPath(setting: string, value: string): string {
    if (typeof value !== "string" || !SAFE_PATH.test(value) || value.split("/").some((p) => p === "." || p === "..") || value.length > 1024) {
        fail(setting, `must be an absolute path of letters, digits and . _ - (no '..', no trailing '/'), got ${JSON.stringify(value)}`);
    }
    return value;
}

function checkInt(setting: string, value: number, min: number, max: number): number {
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) fail(setting, `must be an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
    return value;
}

/** Validates a client URL; returns its scheme. */
function checkUrl(setting: string, value: string): "http" | "https" {
    const m = typeof value === "string" ? CLIENT_URL.exec(value) : null;
    if (!m || Number(m[4]) < 1 || Number(m[4]) > 65535) fail(setting, `must be a client URL such as https://10.0.0.11:2379 (scheme, host, port; no path), got ${JSON.stringify(value)}`);
    return m[1] === "https" ? "https" : "http";
}

function checkTls(setting: string, tls: ClientTls | null | undefined, schemes: ("http" | "https")[]): ClientTls | null {
    const t = tls === undefined ? ADMIN_CLIENT_TLS : tls;
    if (t === null) {
        if (schemes.some((s) => s !== "http")) fail(setting, "is null (no client certificate), so every endpoint must be http://");
        return null;
    }
    if (schemes.some((s) => s !== "https")) fail(setting, "is set, so every endpoint must be https://");
    checkPath(`${setting}.cacert`, t.cacert);
    checkPath(`${setting}.cert`, t.cert);
    checkPath(`${setting}.key`, t.key);
    return t;
}

/** etcdctl's TLS flags, quoted, with a leading space (empty without TLS). */
function tlsFlags(tls: ClientTls | null): string {
    return tls ? ` --cacert=${sq(tls.cacert)} --cert=${sq(tls.cert)} --key=${sq(tls.key)}` : "";
}

interface ResolvedSnapshot {
    clusterName: string;
    memberName: string;
    tag?: string;
    hasEtcdutl: boolean;
    endpoint: string;
    dir: string;
    retain: number;
    offHostCommand?: string;
    offHostTimeoutSeconds: number;
    etcdctl: string;
    etcdutl: string;
    tls: ClientTls | null;
    lockFile: string;
    lockWaitSeconds: number;
    snapshotTimeoutSeconds: number;
    s3?: S3Target;
}

function checkS3(t: S3Target): S3Target {
    if (!S3_ENDPOINT.test(t.endpoint)) fail("snapshot.s3.endpoint", `must be https://host[:port] without a path, got ${JSON.stringify(t.endpoint)}`);
    if (!S3_BUCKET.test(t.bucket) || t.bucket.includes("..")) fail("snapshot.s3.bucket", `must be an S3 bucket name (3-63 lower-case letters, digits, '.' and '-'), got ${JSON.stringify(t.bucket)}`);
    if (!S3_PREFIX.test(t.prefix)) fail("snapshot.s3.prefix", `must be empty or path segments of letters, digits, '.', '_' and '-' ending in '/', got ${JSON.stringify(t.prefix)}`);
    if (!/^[a-z0-9-]{1,32}$/.test(t.region)) fail("snapshot.s3.region", `must be a region name such as us-east-1, got ${JSON.stringify(t.region)}`);
    return {
        ...t,
        authFile: checkPath("snapshot.s3.authFile", t.authFile),
        caFile: t.caFile === undefined ? undefined : checkPath("snapshot.s3.caFile", t.caFile),
        retainCount: checkInt("snapshot.s3.retainCount", t.retainCount, 1, 10000),
        retainDays: checkInt("snapshot.s3.retainDays", t.retainDays, 1, 3650),
        attempts: checkInt("snapshot.s3.attempts", t.attempts, 1, 10),
        backoffSeconds: checkInt("snapshot.s3.backoffSeconds", t.backoffSeconds, 1, 600),
        requestTimeoutSeconds: checkInt("snapshot.s3.requestTimeoutSeconds", t.requestTimeoutSeconds, 1, 86400),
        budgetSeconds: checkInt("snapshot.s3.budgetSeconds", t.budgetSeconds, 1, 86400),
    };
}

function resolveSnapshot(s: SnapshotSettings): ResolvedSnapshot {
    let hasEtcdutl: boolean;
    try {
        hasEtcdutl = versionFeatures(s.version).hasEtcdutl;
    } catch (e) {
        fail("snapshot.version", `is not an etcd version: ${(e as Error).message}`);
    }
    const scheme = checkUrl("snapshot.endpoint", s.endpoint);
    if (s.offHostCommand !== undefined) {
        if (typeof s.offHostCommand !== "string" || s.offHostCommand.trim() === "") fail("snapshot.offHostCommand", "must be a non-empty shell command when set");
        if (s.offHostCommand.includes("\0")) fail("snapshot.offHostCommand", "must not contain a NUL character");
        if (s.offHostCommand.length > 8192) fail("snapshot.offHostCommand", "must be at most 8192 characters");
    }
    return {
        clusterName: checkName("snapshot.clusterName", s.clusterName),
        memberName: checkName("snapshot.memberName", s.memberName),
        tag: s.tag === undefined ? undefined : checkName("snapshot.tag", s.tag),
        hasEtcdutl,
        endpoint: s.endpoint,
        dir: checkPath("snapshot.dir", s.dir ?? DEFAULT_SNAPSHOT_DIR),
        retain: checkInt("snapshot.retain", s.retain, 1, 1000),
        offHostCommand: s.offHostCommand,
        offHostTimeoutSeconds: checkInt("snapshot.offHostTimeoutSeconds", s.offHostTimeoutSeconds ?? 3600, 1, 86400),
        etcdctl: checkPath("snapshot.etcdctl", s.etcdctl ?? `${BIN_DIR}/etcdctl`),
        etcdutl: checkPath("snapshot.etcdutl", s.etcdutl ?? `${BIN_DIR}/etcdutl`),
        tls: checkTls("snapshot.tls", s.tls, [scheme]),
        lockFile: checkPath("snapshot.lockFile", s.lockFile ?? DEFAULT_SNAPSHOT_LOCK),
        lockWaitSeconds: checkInt("snapshot.lockWaitSeconds", s.lockWaitSeconds ?? 600, 0, 86400),
        snapshotTimeoutSeconds: checkInt("snapshot.snapshotTimeoutSeconds", s.snapshotTimeoutSeconds ?? 1800, 1, 86400),
        s3: s.s3 === undefined ? undefined : checkS3(s.s3),
    };
}

// ---------------------------------------------------------------------------------------------------------
// Snapshot
// ---------------------------------------------------------------------------------------------------------

/**
 * The snapshot script's S3 part (after the local snapshot is verified, named and pruned): every local snapshot
 * of this cluster and member that has no `<file>.s3` marker yet, oldest first (the new one and any a failed run
 * left), is uploaded, then read back before it counts: HEAD (size, and the sha256 kept as metadata) and GET
 * (the bytes' sha256). Each upload is tried `attempts` times, the wait doubling from `backoffSeconds`; the first
 * snapshot that still fails ends the part (exit OFF_HOST_FAILED_EXIT, every local snapshot kept, the next run
 * picks it up), and nothing is deleted from the bucket. Once all are up, the bucket's objects of this cluster
 * and member beyond the newest `retainCount`, or older than `retainDays` by the time in their names (never the
 * newest), are deleted. The whole part stops starting uploads after `budgetSeconds`.
 */
function renderS3Part(t: S3Target): string {
    return `
# --- off-host copies in an S3-compatible store (sh/s3.sh) ---
${shellFile(S3_SH).trimEnd()}

s3_endpoint=${sq(t.endpoint)}
s3_bucket=${sq(t.bucket)}
s3_region=${sq(t.region)}
s3_ca=${sq(t.caFile ?? "")}
s3_auth=${sq(t.authFile)}
s3_timeout=${t.requestTimeoutSeconds}
s3_keys=${sq(t.prefix)}"$cluster/"
s3_started=$SECONDS

# s3_copy FILE KEY SUM: uploads FILE as KEY, then reads it back: it counts only when the store has SUM's bytes.
s3_copy() {
  local file=$1 key=$2 sum=$3 bytes head size meta back got
  bytes=$(stat -c %s "$file")
  s3_put "$file" "$key" "$sum" || return 1
  if ! head=$(s3_head "$key"); then
    echo "read-back of s3://$s3_bucket/$key: HEAD failed" >&2
    return 1
  fi
  read -r size meta <<<"$head"
  if [ "$size" != "$bytes" ] || [ "$meta" != "$sum" ]; then
    echo "read-back of s3://$s3_bucket/$key: the store has $size bytes with sha256 '$meta', not $bytes bytes with $sum" >&2
    return 1
  fi
  back=$(mktemp "$dir/.\${prefix}partial.XXXXXX")
  if ! s3_get "$key" "$back"; then
    rm -f -- "$back"
    echo "read-back of s3://$s3_bucket/$key: GET failed" >&2
    return 1
  fi
  got=$(sha256sum "$back" | cut -d' ' -f1)
  rm -f -- "$back"
  if [ "$got" != "$sum" ]; then
    echo "read-back of s3://$s3_bucket/$key: the bytes have sha256 $got, not $sum" >&2
    return 1
  fi
}

# s3_copy_retried FILE KEY SUM: s3_copy, tried ${t.attempts} time(s), the wait doubling from ${t.backoffSeconds}s.
s3_copy_retried() {
  local n delay=${t.backoffSeconds}
  for ((n = 1; n <= ${t.attempts}; n++)); do
    if s3_copy "$@"; then
      return 0
    fi
    if [ "$n" -lt ${t.attempts} ]; then
      echo "upload of $1: try $n of ${t.attempts} failed; trying again in \${delay}s" >&2
      sleep "$delay"
      delay=$((delay * 2))
    fi
  done
  return 1
}

s3_failed=""
uploaded=0
while IFS= read -r name; do
  if [ -f "$dir/$name.s3" ]; then
    continue
  fi
  if [ $((SECONDS - s3_started)) -ge ${t.budgetSeconds} ]; then
    s3_failed="$name (the run's ${t.budgetSeconds}s for off-host copies is spent)"
    break
  fi
  want=$(cut -d' ' -f1 "$dir/$name.sha256" 2>/dev/null || true)
  if [[ ! $want =~ ^[0-9a-f]{64}$ ]]; then
    want=$(sha256sum "$dir/$name" | cut -d' ' -f1)
  fi
  if ! s3_copy_retried "$dir/$name" "$s3_keys$name" "$want"; then
    s3_failed=$name
    break
  fi
  marker=$(mktemp "$dir/.\${prefix}partial.XXXXXX")
  printf 's3://%s/%s %s\\n' "$s3_bucket" "$s3_keys$name" "$want" > "$marker"
  mv -f -T -- "$marker" "$dir/$name.s3"
  uploaded=$((uploaded + 1))
  echo "uploaded s3://$s3_bucket/$s3_keys$name sha256 $want (read back)"
done < <(own_snapshots | sort)

if [ -n "$s3_failed" ]; then
  echo "ERROR: the off-host copy of $s3_failed to s3://$s3_bucket/$s3_keys failed after ${t.attempts} try(s): every local snapshot is kept, nothing in the bucket was deleted, the next run uploads what is missing" >&2
  exit ${OFF_HOST_FAILED_EXIT}
fi

# Retention in the bucket, only after every upload: this cluster's and member's objects, newest first (their
# names carry the time); beyond the newest ${t.retainCount}, or older than ${t.retainDays} days, they go (never the newest).
if ! listing=$(s3_list "$s3_keys$prefix"); then
  echo "ERROR: listing s3://$s3_bucket/$s3_keys$prefix failed: the uploads are done and read back, retention in the bucket waits for the next run" >&2
  exit ${OFF_HOST_FAILED_EXIT}
fi
now=$(date -u +%s)
rank=0
deleted=0
undeleted=0
while read -r key _ _; do
  name=\${key#"$s3_keys"}
  if [[ ! $name =~ ^\${prefix}([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z[.]db$ ]]; then
    continue
  fi
  taken=$(date -u -d "\${BASH_REMATCH[1]}-\${BASH_REMATCH[2]}-\${BASH_REMATCH[3]} \${BASH_REMATCH[4]}:\${BASH_REMATCH[5]}:\${BASH_REMATCH[6]}" +%s)
  rank=$((rank + 1))
  if [ "$rank" -gt 1 ] && { [ "$rank" -gt ${t.retainCount} ] || [ $((now - taken)) -gt ${t.retainDays * 86400} ]; }; then
    if s3_delete "$key"; then
      deleted=$((deleted + 1))
    else
      undeleted=$((undeleted + 1))
    fi
  fi
done < <(sort -r <<<"$listing")
echo "off-host: $uploaded uploaded, $deleted deleted from s3://$s3_bucket/$s3_keys$prefix, keeping the newest ${t.retainCount} of at most ${t.retainDays} days"
if [ "$undeleted" -gt 0 ]; then
  echo "ERROR: $undeleted object(s) past retention could not be deleted from s3://$s3_bucket/$s3_keys$prefix: the next run tries again" >&2
  exit ${OFF_HOST_FAILED_EXIT}
fi
`;
}

/**
 * The snapshot script (`SNAPSHOT_SCRIPT_PATH`, install it 0700 root): a complete bash file that, under a
 * lock (bounded wait, so two runs never overlap) and umask 077,
 * 1. `etcdctl snapshot save`s the local member into a hidden temporary file in the snapshot dir;
 * 2. verifies it with `snapshot status -w json` (etcdutl from 3.5 when the host has it, etcdctl otherwise: a
 *    3.4 member about to be upgraded has no etcdutl yet) and refuses one without a
 *    hash, a revision (0 is a new cluster without writes), keys or bytes;
 * 3. renames it to `<dir>/<cluster>_<member>_[<tag>_]<yyyymmddThhmmssZ>.db` (UTC; mode 0600, root) and writes
 *    `<file>.sha256` in sha256sum format (relative name, so `sha256sum -c` works in the dir);
 * 4. prunes this cluster's and member's snapshots (and their `.sha256`) to the newest `retain`, matching
 *    file names exactly and never touching anything else (nor the snapshot it just took);
 * 5. prints `snapshot <path> revision <n> keys <k> bytes <b> sha256 <hex>` and the pruned count;
 * 6. with `s3`, copies every snapshot not yet copied to the store, reads each back, then keeps retention in
 *    the bucket (renderS3Part), failing the run with exit 3 (snapshots kept) when a copy fails;
 * 7. runs the off-host command when set, failing the run with exit 3 (snapshot kept) when it fails.
 * Exit 1 means no new snapshot was kept.
 */
export function renderSnapshotScript(s: SnapshotSettings): string {
    const r = resolveSnapshot(s);
    // From 3.5 the verifier is etcdutl, but the member may still run the release before it: the pre-upgrade
    // snapshot of a 3.4 → 3.5 upgrade is taken with 3.4's tools (no etcdutl yet), so the choice is made on the
    // host. etcdctl's `snapshot status` exists up to 3.5; 3.6 has no etcdctl variant but always has etcdutl.
    const verifyChoice = r.hasEtcdutl
        ? `if [ -x ${sq(r.etcdutl)} ]; then
  verify=(${sq(r.etcdutl)}) verify_tool=etcdutl
else
  verify=(${sq(r.etcdctl)}) verify_tool=etcdctl
fi`
        : `verify=(${sq(r.etcdctl)}) verify_tool=etcdctl`;
    const offHost =
        r.offHostCommand === undefined
            ? `offhost=""`
            : `# The operator's off-host command ("$1" snapshot, "$2" its .sha256): expanded by the bash that runs it.\n# shellcheck disable=SC2016\noffhost=${sq(r.offHostCommand)}`;
    return `#!/bin/bash
# etcd-ha snapshot of etcd member ${r.memberName} (cluster ${r.clusterName}).
# Managed by etcd-ha (Pulumi): local edits are overwritten on the next \`pulumi up\`.
# Exit 0: snapshot taken, verified, pruned (and copied off-host when configured);
# exit 1: no new snapshot kept; exit ${OFF_HOST_FAILED_EXIT}: snapshot kept, but the off-host copy failed.
set -euo pipefail
umask 077
unset "\${!ETCDCTL_@}"
export ETCDCTL_API=3
export LC_ALL=C

cluster=${sq(r.clusterName)}
member=${sq(r.memberName)}
dir=${sq(r.dir)}
retain=${r.retain}
lock=${sq(r.lockFile)}
${offHost}
etcdctl=(${sq(r.etcdctl)} --endpoints=${sq(r.endpoint)}${tlsFlags(r.tls)} --dial-timeout=5s)
${verifyChoice}

if [ "$(id -u)" -ne 0 ]; then
  echo "etcd-ha-snapshot must run as root" >&2
  exit 1
fi
exec 9>>"$lock"
if ! flock -w ${r.lockWaitSeconds} 9; then
  echo "another etcd-ha snapshot run still holds $lock after ${r.lockWaitSeconds}s: not starting a second one" >&2
  exit 1
fi
if [ ! -d "$dir" ]; then
  install -d -m 0700 -o root -g root "$dir"
fi
# Names are <cluster>_<member>_[<tag>_]<time>.db: '_' is in no DNS label, so no two clusters, members or
# tags share a prefix.
prefix="\${cluster}_\${member}_${r.tag === undefined ? "" : `${r.tag}_`}"
# own_snapshots: the names of this member's snapshots (<prefix><UTC time>.db exactly), one a line, unsorted.
own_snapshots() {
  find "$dir" -maxdepth 1 -type f -name "$prefix*.db" -printf '%f\\n' | grep -xE "\${prefix}[0-9]{8}T[0-9]{6}Z[.]db"
}

# Leftovers of an earlier run that was killed: only this member's own hidden temporary files.
shopt -s nullglob
for f in "$dir/.\${prefix}partial."*; do
  rm -f -- "$f"
done
shopt -u nullglob
tmp=$(mktemp "$dir/.\${prefix}partial.XXXXXX")
sumtmp=$(mktemp "$dir/.\${prefix}partial.XXXXXX")
trap 'rm -f -- "$tmp" "$tmp.part" "$sumtmp"' EXIT

# json_num KEY JSON: the first numeric value of "KEY" in JSON (no jq or python3 needed).
json_num() {
  local re="\\"$1\\":([0-9]+)"
  if [[ $2 =~ $re ]]; then
    printf '%s' "\${BASH_REMATCH[1]}"
  fi
}

if ! out=$(timeout --kill-after=30 ${r.snapshotTimeoutSeconds} "\${etcdctl[@]}" snapshot save "$tmp" 2>&1); then
  rc=$?
  if [ "$rc" -eq 124 ]; then
    echo "etcdctl snapshot save from ${r.endpoint} timed out after ${r.snapshotTimeoutSeconds}s: no snapshot taken" >&2
  else
    echo "etcdctl snapshot save from ${r.endpoint} failed (exit $rc): no snapshot taken" >&2
  fi
  printf '%s\\n' "$out" >&2
  exit 1
fi

status=$("\${verify[@]}" snapshot status -w json "$tmp" 2>&1) || {
  echo "$verify_tool snapshot status refused the new snapshot: not keeping it" >&2
  printf '%s\\n' "$status" >&2
  exit 1
}
json=$(grep -m1 -E '^[{]"hash":' <<<"$status" || true)
hash=$(json_num hash "$json")
rev=$(json_num revision "$json")
keys=$(json_num totalKey "$json")
bytes=$(stat -c %s "$tmp")
# Revision 0 is a new cluster that has had no write yet (etcd's own keys are there): a valid snapshot.
if [ -z "$hash" ] || [ -z "$rev" ] || [ -z "$keys" ] || [ "$keys" -lt 1 ] || [ "$bytes" -lt 1 ]; then
  echo "$verify_tool snapshot status did not verify the new snapshot (hash '$hash', revision '$rev', keys '$keys', $bytes bytes): not keeping it" >&2
  printf '%s\\n' "$status" >&2
  exit 1
fi
sum=$(sha256sum "$tmp" | cut -d' ' -f1)
chmod 0600 "$tmp"
chown root:root "$tmp"

# The name carries the UTC time; runs are serialised by the lock, so waiting out a taken second is enough.
final=""
for _ in 1 2 3; do
  base="$prefix$(date -u +%Y%m%dT%H%M%SZ).db"
  if [ ! -e "$dir/$base" ] && [ ! -L "$dir/$base" ]; then
    final="$dir/$base"
    break
  fi
  sleep 1
done
if [ -z "$final" ]; then
  echo "no free snapshot name in $dir after 3 tries: not keeping the snapshot" >&2
  exit 1
fi
mv -f -T -- "$tmp" "$final"
printf '%s  %s\\n' "$sum" "$base" > "$sumtmp"
chmod 0600 "$sumtmp"
chown root:root "$sumtmp"
mv -f -T -- "$sumtmp" "$final.sha256"

# Keep the newest $retain snapshots of this cluster and member (names sort by time); never the one just taken.
pruned=0
kept=1
while IFS= read -r old; do
  if [ "$old" = "$base" ]; then
    continue
  fi
  if [ "$kept" -lt "$retain" ]; then
    kept=$((kept + 1))
    continue
  fi
  rm -f -- "$dir/$old" "$dir/$old.sha256" "$dir/$old.s3"
  pruned=$((pruned + 1))
done < <(own_snapshots | sort -r)

echo "snapshot $final revision $rev keys $keys bytes $bytes sha256 $sum"
echo "pruned $pruned older snapshot(s) of $cluster/$member, keeping the newest $retain"
${r.s3 === undefined ? "" : renderS3Part(r.s3)}
if [ -n "$offhost" ]; then
  if timeout --kill-after=30 ${r.offHostTimeoutSeconds} bash -c "$offhost" etcd-ha-offhost "$final" "$final.sha256" </dev/null 9>&-; then
    echo "off-host copy done"
  else
    rc=$?
    echo "ERROR: the off-host copy command failed (exit $rc; 124 is the ${r.offHostTimeoutSeconds}s timeout): the local snapshot $final is kept" >&2
    exit ${OFF_HOST_FAILED_EXIT}
  fi
fi
`;
}

/** Dirs the snapshot service's sandbox makes private (PrivateTmp) or read-only (ProtectSystem=full). */
const SERVICE_HIDDEN_DIRS = ["/tmp", "/var/tmp", "/usr", "/boot", "/efi", "/etc"];

/**
 * SNAPSHOT_SERVICE: a oneshot running SNAPSHOT_SCRIPT_PATH as root at low CPU (Nice=10) and idle I/O
 * priority, after etcd (without starting it), bounded by the script's own waits plus a margin. Takes the
 * same settings as the script; throws when `dir` or `lockFile` is where its sandbox would hide it.
 */
export function renderSnapshotService(s: SnapshotSettings): string {
    const r = resolveSnapshot(s);
    // What the service's sandbox (PrivateTmp, ProtectSystem=full) would hide or make read-only.
    for (const [setting, p] of [
        ["snapshot.dir", r.dir],
        ["snapshot.lockFile", r.lockFile],
    ]) {
        const hidden = SERVICE_HIDDEN_DIRS.find((d) => p === d || p.startsWith(`${d}/`));
        if (hidden) fail(setting, `must not be under ${hidden}: the snapshot service sees it ${hidden.endsWith("tmp") ? "as a private, empty dir" : "read-only"}`);
    }
    // The S3 part starts no upload after its budget, but one that started may take every try to the end.
    const s3 = r.s3 === undefined ? 0 : r.s3.budgetSeconds + r.s3.attempts * (3 * r.s3.requestTimeoutSeconds) + r.s3.backoffSeconds * (2 ** r.s3.attempts) + 2 * r.s3.requestTimeoutSeconds;
    const timeout = r.lockWaitSeconds + r.snapshotTimeoutSeconds + 30 + (r.offHostCommand === undefined ? 0 : r.offHostTimeoutSeconds + 30) + s3 + 120;
    return [
        "# Managed by etcd-ha (Pulumi). Local edits are overwritten on the next `pulumi up`.",
        "[Unit]",
        `Description=etcd-ha snapshot of etcd member ${r.memberName} (cluster ${r.clusterName})`,
        "Documentation=https://etcd.io/docs/v3.5/op-guide/recovery/",
        "After=network-online.target etcd.service",
        "Wants=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        `ExecStart=${SNAPSHOT_SCRIPT_PATH}`,
        "Nice=10",
        "IOSchedulingClass=idle",
        `TimeoutStartSec=${timeout}`,
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectSystem=full",
        "",
    ].join("\n");
}

/**
 * SNAPSHOT_TIMER: starts SNAPSHOT_SERVICE on `onCalendar` (to the second: AccuracySec=1s, where systemd's
 * default would allow a minute), catching up a missed run after boot (Persistent=true). `onCalendar` is limited to the characters calendar expressions use (no `%`, `\`,
 * quotes or newlines); anything else throws.
 */
export function renderSnapshotTimer(t: SnapshotTimerSettings): string {
    const cal = t.onCalendar;
    if (typeof cal !== "string" || cal.length > 256 || !ON_CALENDAR.test(cal) || cal !== cal.trim()) {
        fail("snapshotTimer.onCalendar", `must be a systemd calendar expression of letters, digits, spaces and , : * / . ~ + - (at most 256), got ${JSON.stringify(cal)}`);
    }
    const delay = checkInt("snapshotTimer.randomizedDelaySec", t.randomizedDelaySec ?? 0, 0, 86400);
    return [
        "# Managed by etcd-ha (Pulumi). Local edits are overwritten on the next `pulumi up`.",
        "[Unit]",
        "Description=etcd-ha scheduled etcd snapshot",
        "",
        "[Timer]",
        `OnCalendar=${cal}`,
        `RandomizedDelaySec=${delay}`,
        // systemd's default AccuracySec is 1 min: a run could start up to a minute late, and timers of
        // several units are coalesced. Snapshots should run when scheduled (the random delay spreads them).
        "AccuracySec=1s",
        "Persistent=true",
        `Unit=${SNAPSHOT_SERVICE}`,
        "",
        "[Install]",
        "WantedBy=timers.target",
        "",
    ].join("\n");
}

// ---------------------------------------------------------------------------------------------------------
// Defragmentation and the NOSPACE runbook
// ---------------------------------------------------------------------------------------------------------

/**
 * The defragmentation script (DEFRAG_SCRIPT_PATH): checks that every endpoint is healthy, then
 * defragments the members strictly one at a time (`etcdctl --endpoints=<one> defrag`), waiting after each
 * until the whole endpoint list is healthy again (bounded in attempts and time) and stopping at the first
 * failure. Prints each member's db size (and size in use) before and after. Options:
 * - `--compact`: first compact the keyspace to the current revision (`compact <rev> --physical`);
 * - `--alarm-disarm`: afterwards, when `alarm list` shows NOSPACE (and only NOSPACE), `alarm disarm` and
 *   confirm it is gone. Other alarms (CORRUPT) are never disarmed: the script stops and names them.
 * Together they are the NOSPACE runbook (C6). etcdctl 3.5+ reports a member unhealthy while a NOSPACE
 * alarm is active; the health wait accepts exactly that case, since clearing it is what this script is for.
 */
export function renderDefragScript(d: DefragSettings): string {
    if (!Array.isArray(d.endpoints) || d.endpoints.length === 0 || d.endpoints.length > 99) fail("defrag.endpoints", "must list 1 to 99 client URLs (the most members etcd-ha plans)");
    const schemes = d.endpoints.map((e, i) => checkUrl(`defrag.endpoints[${i}]`, e));
    if (new Set(d.endpoints).size !== d.endpoints.length) fail("defrag.endpoints", `must not repeat an endpoint, got ${JSON.stringify(d.endpoints)}`);
    const tls = checkTls("defrag.tls", d.tls, schemes);
    const etcdctl = checkPath("defrag.etcdctl", d.etcdctl ?? `${BIN_DIR}/etcdctl`);
    const defragTimeout = checkInt("defrag.defragTimeoutSeconds", d.defragTimeoutSeconds ?? 600, 1, 86400);
    const attempts = checkInt("defrag.healthAttempts", d.healthAttempts ?? 30, 1, 1000);
    const interval = checkInt("defrag.healthIntervalSeconds", d.healthIntervalSeconds ?? 2, 1, 300);
    const healthTimeout = checkInt("defrag.healthTimeoutSeconds", d.healthTimeoutSeconds ?? 180, 1, 86400);
    const checkTimeout = checkInt("defrag.healthCheckTimeoutSeconds", d.healthCheckTimeoutSeconds ?? 5, 1, 300);
    return `#!/bin/bash
# etcd-ha defrag: defragments etcd members one at a time (${d.endpoints.length} endpoint(s)).
# Managed by etcd-ha (Pulumi): local edits are overwritten on the next \`pulumi up\`.
set -euo pipefail
umask 077
unset "\${!ETCDCTL_@}"
export ETCDCTL_API=3
export LC_ALL=C

usage() {
  cat <<'ETCD_HA_USAGE'
Usage: etcd-ha-defrag [--compact] [--alarm-disarm]
Defragments the etcd members one at a time, waiting for the whole cluster to be healthy after each.
  --compact       first compact the keyspace to the current revision (frees history before defragmenting)
  --alarm-disarm  afterwards, disarm an active NOSPACE alarm (never any other alarm)
NOSPACE runbook: etcd-ha-defrag --compact --alarm-disarm
ETCD_HA_USAGE
}
compact=0
disarm=0
for arg in "$@"; do
  case $arg in
    --compact) compact=1 ;;
    --alarm-disarm) disarm=1 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

endpoints=(${d.endpoints.map(sq).join(" ")})
all=${sq(d.endpoints.join(","))}
ctl=(${sq(etcdctl)}${tlsFlags(tls)} --dial-timeout=3s)

# json_num KEY JSON: the first numeric value of "KEY" in JSON (no jq or python3 needed).
json_num() {
  local re="\\"$1\\":([0-9]+)"
  if [[ $2 =~ $re ]]; then
    printf '%s' "\${BASH_REMATCH[1]}"
  fi
}

# member_status EP: sets db, inuse and rev from \`endpoint status -w json\` of that one endpoint.
member_status() {
  local out
  out=$(timeout 30 "\${ctl[@]}" --endpoints="$1" --command-timeout=10s endpoint status -w json 2>&1) || {
    echo "cannot read the status of $1:" >&2
    printf '%s\\n' "$out" >&2
    return 1
  }
  db=$(json_num dbSize "$out")
  inuse=$(json_num dbSizeInUse "$out")
  rev=$(json_num revision "$out")
  if [ -z "$db" ] || [ -z "$rev" ]; then
    echo "unexpected endpoint status output from $1:" >&2
    printf '%s\\n' "$out" >&2
    return 1
  fi
}

# ep_ok EP OUTPUT: EP is healthy in \`endpoint health\` OUTPUT, or unhealthy only because of NOSPACE alarms.
ep_ok() {
  local line rest
  while IFS= read -r line; do
    case $line in
      "$1 is healthy"*) return 0 ;;
      "$1 is unhealthy"*"Active Alarm(s): "*)
        rest=\${line##*Active Alarm(s): }
        rest=\${rest//NOSPACE/}
        if [ -z "\${rest//[[:space:]]/}" ]; then
          return 0
        fi
        ;;
    esac
  done <<<"$2"
  return 1
}

# wait_healthy WHEN: bounded wait until every endpoint is healthy.
wait_healthy() {
  local attempt=0 out bad ep deadline=$((SECONDS + ${healthTimeout}))
  while :; do
    attempt=$((attempt + 1))
    out=$(timeout ${checkTimeout + 30} "\${ctl[@]}" --endpoints="$all" --command-timeout=${checkTimeout}s endpoint health 2>&1) || true
    bad=""
    for ep in "\${endpoints[@]}"; do
      if ! ep_ok "$ep" "$out"; then
        bad="$bad $ep"
      fi
    done
    if [ -z "$bad" ]; then
      return 0
    fi
    if [ "$attempt" -ge ${attempts} ] || [ "$SECONDS" -ge "$deadline" ]; then
      echo "$1: not every endpoint is healthy after $attempt attempt(s) in \${SECONDS}s; unhealthy:$bad" >&2
      echo "--- etcdctl endpoint health" >&2
      printf '%s\\n' "$out" >&2
      return 1
    fi
    sleep ${interval}
  done
}

if ! wait_healthy "before defragmenting"; then
  echo "refusing to defragment: the cluster must be healthy first; nothing was changed" >&2
  exit 1
fi

if [ "$compact" = 1 ]; then
  member_status "\${endpoints[0]}"
  if out=$(timeout $((${defragTimeout} + 30)) "\${ctl[@]}" --endpoints="$all" --command-timeout=${defragTimeout}s compact "$rev" --physical 2>&1); then
    echo "compacted to revision $rev"
  elif grep -q "required revision has been compacted" <<<"$out"; then
    echo "already compacted at or past revision $rev"
  else
    echo "compaction to revision $rev failed; nothing was defragmented:" >&2
    printf '%s\\n' "$out" >&2
    exit 1
  fi
fi

n=0
done_list=""
for ep in "\${endpoints[@]}"; do
  n=$((n + 1))
  if ! member_status "$ep"; then
    echo "stopping before defragmenting $ep; defragmented so far:\${done_list:- none}" >&2
    exit 1
  fi
  before="$db bytes (in use \${inuse:-?})"
  echo "[$n/\${#endpoints[@]}] defragmenting $ep: db size $before"
  if ! out=$(timeout $((${defragTimeout} + 30)) "\${ctl[@]}" --endpoints="$ep" --command-timeout=${defragTimeout}s defrag 2>&1); then
    echo "defrag of $ep failed; stopping before the other members (defragmented so far:\${done_list:- none}):" >&2
    printf '%s\\n' "$out" >&2
    exit 1
  fi
  if ! wait_healthy "after defragmenting $ep"; then
    echo "stopping: the cluster did not become healthy after defragmenting $ep (defragmented so far:\${done_list:- none} $ep)" >&2
    exit 1
  fi
  if ! member_status "$ep"; then
    echo "stopping: cannot read the status of $ep after defragmenting it (defragmented so far:\${done_list:- none} $ep)" >&2
    exit 1
  fi
  echo "[$n/\${#endpoints[@]}] defragmented $ep: db size $before -> $db bytes (in use \${inuse:-?})"
  done_list="$done_list $ep"
done
echo "defragmented \${#endpoints[@]} member(s) one at a time:$done_list"

if ! alarms=$(timeout 30 "\${ctl[@]}" --endpoints="$all" --command-timeout=10s alarm list 2>&1); then
  echo "every member is defragmented, but etcdctl alarm list failed, so the alarms are unknown:" >&2
  printf '%s\\n' "$alarms" >&2
  exit 1
fi
# \`alarm list\` prints one "memberID:<id> alarm:<TYPE>" line per alarm.
active=$(grep -E '^memberID:[0-9]+ alarm:' <<<"$alarms" || true)
nospace='^memberID:[0-9]+ alarm:NOSPACE *$'
others=$(grep -vE "$nospace" <<<"$active" || true)
if [ -n "$others" ]; then
  echo "WARNING: alarms other than NOSPACE are active; investigate them (this script never disarms them):" >&2
  printf '%s\\n' "$others" >&2
fi
if ! grep -qE "$nospace" <<<"$active"; then
  echo "no NOSPACE alarm active"
elif [ "$disarm" != 1 ]; then
  echo "a NOSPACE alarm is still active: re-run with --compact --alarm-disarm once there is room" >&2
else
  if [ -n "$others" ]; then
    echo "not disarming NOSPACE: alarm disarm would clear the other alarms too" >&2
    exit 1
  fi
  if ! out=$(timeout 30 "\${ctl[@]}" --endpoints="$all" --command-timeout=10s alarm disarm 2>&1); then
    echo "etcdctl alarm disarm failed:" >&2
    printf '%s\\n' "$out" >&2
    exit 1
  fi
  alarms=$(timeout 30 "\${ctl[@]}" --endpoints="$all" --command-timeout=10s alarm list 2>&1) || true
  if grep -qE "$nospace" <<<"$alarms"; then
    echo "the NOSPACE alarm is active again after disarm: the db is still over its quota; delete data or raise --quota-backend-bytes" >&2
    exit 1
  fi
  echo "disarmed the NOSPACE alarm; alarm list is clear"
fi
`;
}
