/**
 * Disaster recovery from a snapshot (etcd's op-guide/recovery.md): on every member, with etcd stopped, the same snapshot is restored into a fresh data
 * dir with the member's name and peer URL, the full initial cluster and a NEW cluster token, then etcd is
 * started on it. Pure renderers of bash bodies, like scripts.ts: wrap them with `wrapScript`.
 *
 * Safety: the snapshot's sha256 is checked before anything is touched; etcd must already be stopped (the stop
 * is its own step, `stopForRestoreScript`); the restore goes into a staging dir next to the data dir and is
 * renamed into place only once it succeeded, all inside the data dir (so a data dir that is a mount point
 * works); an existing `member` dir is moved aside to `<dataDir>/pre-restore-<UTC timestamp>/member`, never
 * deleted (etcd ignores other entries in its data dir, with a warning); a marker under the state dir makes a
 * re-run a no-op.
 */
import { BIN_DIR } from "./flags";
import { STATE_DIR, sq } from "./scripts";
import { atLeast, parseVersion } from "./version";

/**
 * First 3.5 release whose `etcdutl snapshot restore` (and the deprecated `etcdctl snapshot restore`) has
 * `--bump-revision` and `--mark-compacted`: etcd CHANGELOG-3.5, v3.5.10 (2023-10-27), "Add optional
 * --bump-revision and --mark-compacted flag to etcdutl snapshot restore operation" (etcd PR 16165, the 3.5
 * backport of PR 16029 for issue 16028). 3.6.0 has them from the start (PR 16029 merged into main in 2023).
 * 3.4: issue 16028 lists a 3.4 backport, but no 3.4 changelog entry or release was found to pin, and Debian's
 * etcdctl 3.4.23 has neither flag (`etcdctl snapshot restore --help`), so 3.4 restores without them.
 */
export const BUMP_REVISION_SINCE = "3.5.10";
/** Revision bump for a restore when supported (the value etcd's recovery guide and the k8s docs use). */
export const DEFAULT_BUMP_REVISION = 1_000_000_000;

export interface RestoreSupport {
    /** `etcdctl snapshot restore` on 3.4; `etcdutl snapshot restore` from 3.5 (restore is etcdutl-only in 3.6). */
    tool: "etcdutl" | "etcdctl";
    bumpRevision: boolean;
    markCompacted: boolean;
}

/** How a given etcd version restores a snapshot. */
export function restoreSupport(version: string): RestoreSupport {
    const v = parseVersion(version);
    const bump = atLeast(v, BUMP_REVISION_SINCE);
    return { tool: atLeast(v, "3.5.0") ? "etcdutl" : "etcdctl", bumpRevision: bump, markCompacted: bump };
}

export interface RestoreOptions {
    /** The etcd version installed on the member (selects the tool and flags). */
    version: string;
    memberName: string;
    /** This member's peer URL, as in `initialCluster`. */
    peerUrl: string;
    /** `name=peerUrl,…` for every member of the restored cluster. */
    initialCluster: string;
    /** A NEW cluster token, unique to this restore. */
    token: string;
    dataDir: string;
    /** The snapshot file on the host (the same file on every member). */
    snapshotPath: string;
    /** Expected sha256 of the snapshot file. */
    sha256: string;
    /** Revision bump; default DEFAULT_BUMP_REVISION when the tool supports it, 0 for none. */
    bumpRevision?: number;
    /** Identifies this restore request (e.g. derived from sha256 and token); names the marker file. */
    restoreId: string;
    /** Paths, overridable for tests. */
    etcdctlPath?: string;
    etcdutlPath?: string;
    systemctlPath?: string;
    stateDir?: string;
    /** Owner of the restored data dir (`etcd:etcd`). */
    owner?: string;
    /** The systemd unit (`etcd`). */
    unit?: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const ABS_PATH = /^\/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$/;
const SAFE = /^[A-Za-z0-9._:/@=,+-]+$/;

function need(ok: boolean, what: string): void {
    if (!ok) throw new Error(`restore: ${what}`);
}

/**
 * restore: restores the snapshot into the member's data dir, from scratch, as one member of a new cluster.
 * Refuses (exit 1, nothing touched) on a missing snapshot, a sha256 mismatch, a running etcd, a missing tool
 * or a tool without the planned flags. Prints "already restored" and changes nothing when this restore id's
 * marker exists and the data dir has `member/`.
 */
export function restoreScript(opts: RestoreOptions): string {
    const support = restoreSupport(opts.version);
    const bump = opts.bumpRevision ?? (support.bumpRevision ? DEFAULT_BUMP_REVISION : 0);
    need(Number.isSafeInteger(bump) && bump >= 0, `bumpRevision must be a whole number >= 0, not ${bump}`);
    need(bump === 0 || support.bumpRevision, `etcd ${opts.version} cannot bump the revision on restore (needs ${BUMP_REVISION_SINCE} or later): leave bumpRevision unset or 0`);
    need(NAME.test(opts.memberName), `bad member name ${opts.memberName}`);
    need(SAFE.test(opts.peerUrl) && /^https?:\/\//.test(opts.peerUrl), `bad peer URL ${opts.peerUrl}`);
    need(SAFE.test(opts.initialCluster) && opts.initialCluster.split(",").includes(`${opts.memberName}=${opts.peerUrl}`), `initialCluster ${opts.initialCluster} must list ${opts.memberName}=${opts.peerUrl}`);
    need(NAME.test(opts.token), `bad cluster token`);
    need(/^[0-9a-f]{64}$/.test(opts.sha256), `sha256 must be 64 lowercase hex digits`);
    need(/^[A-Za-z0-9._-]{1,128}$/.test(opts.restoreId), `restoreId must be 1-128 of [A-Za-z0-9._-]`);
    const owner = opts.owner ?? "etcd:etcd";
    need(/^[a-z_][a-z0-9_-]*:[a-z_][a-z0-9_-]*$/.test(owner), `bad owner ${owner}`);
    const unit = opts.unit ?? "etcd";
    need(NAME.test(unit), `bad unit ${unit}`);
    const stateDir = opts.stateDir ?? STATE_DIR;
    const tool = support.tool === "etcdutl" ? (opts.etcdutlPath ?? `${BIN_DIR}/etcdutl`) : (opts.etcdctlPath ?? `${BIN_DIR}/etcdctl`);
    const systemctl = opts.systemctlPath ?? "systemctl";
    for (const [what, p] of [["dataDir", opts.dataDir], ["snapshotPath", opts.snapshotPath], ["stateDir", stateDir], ["tool", tool]] as const) {
        need(ABS_PATH.test(p) && !p.split("/").includes(".."), `${what} must be an absolute path without .. or a trailing slash, not ${p}`);
    }
    need(opts.dataDir.split("/").length > 2, `dataDir ${opts.dataDir} must not be a top-level directory`);
    need(systemctl === "systemctl" || ABS_PATH.test(systemctl), `bad systemctl path ${systemctl}`);
    const flags = [
        `--name ${sq(opts.memberName)}`,
        `--initial-cluster ${sq(opts.initialCluster)}`,
        `--initial-cluster-token ${sq(opts.token)}`,
        `--initial-advertise-peer-urls ${sq(opts.peerUrl)}`,
        ...(bump > 0 ? [`--bump-revision ${bump}`, "--mark-compacted"] : []),
    ];
    return `
# etcd-ha restore: member ${opts.memberName} from snapshot sha256 ${opts.sha256} with ${support.tool} ${opts.version} (restore ${opts.restoreId})
data_dir=${sq(opts.dataDir)}
snapshot=${sq(opts.snapshotPath)}
want_sha=${sq(opts.sha256)}
state_dir=${sq(stateDir)}
marker="$state_dir/restored-"${sq(opts.restoreId)}
tool=${sq(tool)}
${support.tool === "etcdctl" ? "export ETCDCTL_API=3\n" : ""}if [ -f "$marker" ] && [ -d "$data_dir/member" ]; then
  if ! grep -qx "sha256=$want_sha" "$marker"; then
    echo "restore marker $marker records another snapshot than sha256 $want_sha: use a new restore id for a new snapshot; nothing touched" >&2
    exit 1
  fi
  echo "already restored (restore ${opts.restoreId}): $data_dir holds the restored member ${opts.memberName}; nothing to do"
  exit 0
fi
if [ ! -f "$snapshot" ]; then
  echo "snapshot $snapshot is missing: copy the snapshot to this host first; nothing touched" >&2
  exit 1
fi
if ! printf '%s  %s\\n' "$want_sha" "$snapshot" | sha256sum --check --status; then
  echo "sha256 mismatch for $snapshot: expected $want_sha, got $(sha256sum "$snapshot" | cut -d' ' -f1); refusing to restore, nothing touched" >&2
  exit 1
fi
if ${systemctl === "systemctl" ? "systemctl" : sq(systemctl)} is-active --quiet ${sq(unit)}; then
  echo "etcd (unit ${unit}) is running: stop it first (the restore's stop step), then re-run; nothing touched" >&2
  exit 1
fi
if [ ! -x "$tool" ]; then
  echo "$tool is missing: install the etcd ${opts.version} binaries first; nothing touched" >&2
  exit 1
fi
${
    bump > 0
        ? `usage=$("$tool" snapshot restore --help 2>&1) || true
if ! grep -q -- '--bump-revision' <<<"$usage" || ! grep -q -- '--mark-compacted' <<<"$usage"; then
  echo "$tool snapshot restore has no --bump-revision/--mark-compacted: the installed tool is older than ${BUMP_REVISION_SINCE}; nothing touched" >&2
  exit 1
fi
`
        : ""
}if [ ! -d "$data_dir" ]; then
  install -d -m 0700 -o ${owner.split(":")[0]} -g ${owner.split(":")[1]} "$data_dir"
fi
install -d -m 0700 "$state_dir"
# Everything happens inside the data dir (which may be a mount point, e.g. a dedicated disk): the restore
# goes to a staging dir there, then the member dir is swapped by two renames on the same file system.
staging=$(mktemp -d "$data_dir/.restore-XXXXXX")
trap 'rm -rf "$staging"' EXIT
if ! "$tool" snapshot restore "$snapshot" --data-dir "$staging/data" \\
  ${flags.join(" \\\n  ")}; then
  echo "$tool snapshot restore failed: $data_dir/member is untouched" >&2
  exit 1
fi
if [ ! -d "$staging/data/member" ]; then
  echo "$tool snapshot restore left no member/ directory: $data_dir/member is untouched" >&2
  exit 1
fi
chown -R ${owner} "$staging/data/member"
aside=""
if [ -e "$data_dir/member" ] || [ -L "$data_dir/member" ]; then
  aside="$data_dir/pre-restore-$(date -u +%Y%m%dT%H%M%SZ)"
  if [ -e "$aside" ]; then
    aside="$aside-$$"
  fi
  mkdir -m 0700 "$aside"
  mv -T "$data_dir/member" "$aside/member"
fi
mv -T "$staging/data/member" "$data_dir/member"
chown ${owner} "$data_dir"
chmod 0700 "$data_dir"
printf 'sha256=%s\\nmember=%s\\nrestored_at=%s\\n' "$want_sha" ${sq(opts.memberName)} "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$marker.tmp"
mv -f "$marker.tmp" "$marker"
echo "restored member ${opts.memberName} into $data_dir from $snapshot (sha256 $want_sha) with ${support.tool} ${opts.version}${bump > 0 ? `, revision bumped by ${bump} and marked compacted` : ", no revision bump"}"
if [ -n "$aside" ]; then
  echo "the previous member dir was moved to $aside/member (kept; remove $aside by hand once the cluster is healthy)"
fi
echo "next: start etcd on every member (the data dir now carries the new cluster's membership and token)"
`;
}

/** stop for restore: stops the etcd unit and waits (bounded) until systemd reports it inactive. */
export function stopForRestoreScript(opts: { systemctlPath?: string; unit?: string; timeoutSeconds?: number } = {}): string {
    const unit = opts.unit ?? "etcd";
    need(NAME.test(unit), `bad unit ${unit}`);
    const timeout = opts.timeoutSeconds ?? 90;
    need(Number.isSafeInteger(timeout) && timeout > 0, `timeoutSeconds must be a whole number > 0`);
    const systemctl = opts.systemctlPath ?? "systemctl";
    need(systemctl === "systemctl" || ABS_PATH.test(systemctl), `bad systemctl path ${systemctl}`);
    const sc = systemctl === "systemctl" ? "systemctl" : sq(systemctl);
    return `
# etcd-ha stop for restore: unit ${unit}, at most ${timeout}s.
if ! ${sc} is-active --quiet ${sq(unit)}; then
  echo "etcd (unit ${unit}) is not running"
  exit 0
fi
${sc} stop ${sq(unit)}
deadline=$((SECONDS + ${timeout}))
while ${sc} is-active --quiet ${sq(unit)}; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "etcd (unit ${unit}) still active ${timeout}s after systemctl stop" >&2
    exit 1
  fi
  sleep 1
done
echo "stopped etcd (unit ${unit})"
`;
}
