/**
 * The day-2 steps' scripts, composed from the renderers in maintenance.ts, restore.ts and upgrade.ts: the
 * maintenance step (snapshot timer and defrag script on each member), the pre-upgrade snapshot, and the
 * restore's stop and restore steps. Pure: bash bodies for `wrapScript`, like scripts.ts.
 */
import { BIN_DIR } from "./flags";
import {
    DEFRAG_SCRIPT_PATH,
    SNAPSHOT_SCRIPT_PATH,
    SNAPSHOT_SERVICE,
    SNAPSHOT_TIMER,
    SnapshotSettings,
    renderDefragScript,
    renderSnapshotScript,
    renderSnapshotService,
    renderSnapshotTimer,
} from "./maintenance";
import { parseS3Url, S3_ENDPOINT } from "../config/schema";
import { CONFIG_DIR } from "./paths";
import { S3_SH, shellFile } from "./rolling";
import { restoreScript, stopForRestoreScript } from "./restore";
import { configScript, EtcdRelease, installReleaseShell, RELEASE_MARKER, releaseId, restoredMarkerPath, STAGING_DIR, STATE_DIR, sq } from "./scripts";
import { upgradeGuardShell } from "./upgrade";

/** Unit files of the snapshot service and timer. */
const SNAPSHOT_SERVICE_PATH = `/etc/systemd/system/${SNAPSHOT_SERVICE}`;
const SNAPSHOT_TIMER_PATH = `/etc/systemd/system/${SNAPSHOT_TIMER}`;

/** The curl config file with the S3 store's keys (root, 0600): the maintenance step writes it from its stdin. */
export const S3_AUTH_PATH = `${CONFIG_DIR}/s3.curlrc`;
/** The S3 store's CA bundle, when the stack gives one. */
export const S3_CA_PATH = `${CONFIG_DIR}/s3-ca.crt`;

/** An S3 store's keys. */
export interface S3Credentials {
    /** The access key ID. */
    accessKeyId: string;
    /** The secret access key. */
    secretAccessKey: string;
}

/**
 * The S3 keys as a curl config line (`user = "ID:SECRET"`, curl's own quoting), the maintenance step's stdin:
 * the keys reach the member's disk (0600 root) and never a script, a command line or the environment. Throws
 * for keys curl could not read back as given.
 */
export function s3CurlConfig(c: S3Credentials): string {
    const ok = (v: unknown) => typeof v === "string" && v.length > 0 && v.length <= 1024 && !/[\x00-\x1f\x7f]/.test(v);
    if (!ok(c.accessKeyId) || c.accessKeyId.includes(":")) throw new Error("etcd-ha:s3AccessKeyId must be 1-1024 printable characters without ':'");
    if (!ok(c.secretAccessKey)) throw new Error("etcd-ha:s3SecretAccessKey must be 1-1024 printable characters");
    const q = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"');
    return `user = "${q(c.accessKeyId)}:${q(c.secretAccessKey)}"\n`;
}

/** The scheduled snapshots of one member, as the maintenance step installs them. */
export interface MaintenanceOptions {
    /**
     * Snapshot script settings (cluster and member name, version, the member's own client URL, dir, retention,
     * off-host command and S3 store). With `s3`, the step's stdin must carry s3CurlConfig's line.
     */
    snapshot: SnapshotSettings;
    /** The S3 store's CA bundle (PEM), written to S3_CA_PATH; with `snapshot.s3` only. */
    s3CaPem?: string;
    /** Timer schedule; unset: the timer is stopped and disabled (the script and service stay for on-demand runs). */
    schedule?: { onCalendar: string; randomizedDelaySec: number };
    /** Every member's client URL, for the defragmentation script. */
    endpoints: string[];
}

/**
 * maintenance: writes the snapshot script (0700), its service and timer, and the defragmentation script
 * (each only when it differs), reloads systemd when a unit changed, then enables and starts the timer (or
 * stops and disables it when no schedule is given). Starts no snapshot itself.
 */
export function maintenanceScript(o: MaintenanceOptions): string {
    if (o.s3CaPem !== undefined && o.snapshot.s3 === undefined) throw new Error("maintenance: s3CaPem is only for snapshot.s3");
    // The store's keys: from stdin into S3_AUTH_PATH (compared, replaced only when they differ, never printed).
    const s3Auth =
        o.snapshot.s3 === undefined
            ? `# No S3 store: its keys and CA bundle go, if an earlier run wrote them.
rm -f ${sq(S3_AUTH_PATH)} ${sq(S3_CA_PATH)}`
            : `# The S3 store's keys arrive on stdin only (one curl config line), never in this script.
auth_tmp=$(umask 077 && mktemp ${sq(`${S3_AUTH_PATH}.XXXXXX`)})
cat > "$auth_tmp"
if ! grep -qx 'user = ".*"' "$auth_tmp"; then
  rm -f "$auth_tmp"
  echo "the S3 keys on stdin are missing or malformed: nothing installed" >&2
  exit 1
fi
chmod 0600 "$auth_tmp"
chown root:root "$auth_tmp"
if [ -f ${sq(S3_AUTH_PATH)} ] && cmp -s "$auth_tmp" ${sq(S3_AUTH_PATH)}; then
  rm -f "$auth_tmp"
else
  mv -f "$auth_tmp" ${sq(S3_AUTH_PATH)}
  echo "S3 keys installed in ${S3_AUTH_PATH}"
fi${o.s3CaPem === undefined ? `
rm -f ${sq(S3_CA_PATH)}` : ""}`;
    const files = configScript([
        ...(o.s3CaPem !== undefined ? [{ path: S3_CA_PATH, mode: "0644", owner: "root:root", content: o.s3CaPem }] : []),
        { path: SNAPSHOT_SCRIPT_PATH, mode: "0700", owner: "root:root", content: renderSnapshotScript(o.snapshot) },
        { path: DEFRAG_SCRIPT_PATH, mode: "0755", owner: "root:root", content: renderDefragScript({ endpoints: o.endpoints }) },
        { path: SNAPSHOT_SERVICE_PATH, mode: "0644", owner: "root:root", content: renderSnapshotService(o.snapshot) },
        ...(o.schedule ? [{ path: SNAPSHOT_TIMER_PATH, mode: "0644", owner: "root:root", content: renderSnapshotTimer(o.schedule) }] : []),
    ], { title: "maintenance: snapshot script, service and timer; defragmentation script." });
    const timer = o.schedule
        ? `case "$changed" in
  *.service* | *.timer*) systemctl daemon-reload ;;
esac
systemctl --no-reload enable ${SNAPSHOT_TIMER}
if [[ $changed == *.timer* ]] || ! systemctl is-active --quiet ${SNAPSHOT_TIMER}; then
  systemctl restart ${SNAPSHOT_TIMER}
fi
echo "snapshot timer ${SNAPSHOT_TIMER}: ${o.schedule.onCalendar} (+ up to ${o.schedule.randomizedDelaySec}s), keeping ${o.snapshot.retain} snapshots in ${o.snapshot.dir}"`
        : `case "$changed" in
  *.service*) systemctl daemon-reload ;;
esac
systemctl disable --now ${SNAPSHOT_TIMER} 2>/dev/null || true
rm -f ${sq(SNAPSHOT_TIMER_PATH)}
echo "scheduled snapshots are off; on demand: systemctl start ${SNAPSHOT_SERVICE}"`;
    return `\n${s3Auth}\n${files.trimEnd()}\n${timer}\n`;
}

/** The maintenance step's delete: stops and removes the timer, the service and the scripts. Snapshots stay. */
export function maintenanceRemoveScript(): string {
    return `
# etcd-ha maintenance removed: the timer stops; snapshots already taken are kept.
systemctl disable --now ${SNAPSHOT_TIMER} 2>/dev/null || true
rm -f ${[SNAPSHOT_TIMER_PATH, SNAPSHOT_SERVICE_PATH, SNAPSHOT_SCRIPT_PATH, DEFRAG_SCRIPT_PATH, S3_AUTH_PATH, S3_CA_PATH].map(sq).join(" ")}
systemctl daemon-reload
echo "removed the snapshot timer and the maintenance scripts; snapshots are kept"
`;
}

/** What the pre-upgrade snapshot step needs. */
export interface UpgradeSnapshotOptions {
    /** The release the members move to. */
    release: EtcdRelease;
    /** The member's data dir. */
    dataDir: string;
    /** Snapshot settings of the member the step runs on (tagged `pre-upgrade` here; timer-independent). */
    snapshot: SnapshotSettings;
}

/**
 * pre-upgrade snapshot, on the first member before any member's binaries step: first the upgrade guard
 * (refuses an unsupported version change before anything happens), then, when that member runs another
 * release than the wanted one, a verified snapshot tagged `pre-upgrade` (kept apart from the scheduled ones,
 * same retention). A new cluster (no data) and the wanted release already installed take none.
 */
export function upgradeSnapshotScript(o: UpgradeSnapshotOptions): string {
    const script = renderSnapshotScript({ ...o.snapshot, tag: "pre-upgrade" });
    const delim = "ETCD_HA_SNAPSHOT_SCRIPT";
    if (script.split("\n").includes(delim)) throw new Error(`the snapshot script contains ${delim}`);
    return `
# etcd-ha pre-upgrade snapshot: before etcd ${o.release.version} (tarball sha256 ${o.release.sha256}) replaces what the members run
${upgradeGuardShell(o.release.version, `${BIN_DIR}/etcd`).trim()}
release_id=${sq(releaseId(o.release))}
installed=$(cat ${sq(RELEASE_MARKER)} 2>/dev/null || true)
if [ "$installed" = "$release_id" ]; then
  echo "this member already runs the wanted release: no upgrade, no snapshot"
  exit 0
fi
if [ ! -d ${sq(`${o.dataDir}/member`)} ]; then
  echo "no etcd data on this member: a new cluster, nothing to snapshot"
  exit 0
fi
if ! systemctl is-active --quiet etcd; then
  echo "etcd is not running on this member, so the pre-upgrade snapshot cannot be taken: start it (or replace the member), then run pulumi up again" >&2
  exit 1
fi
install -d -m 0700 ${sq(STATE_DIR)}
script=$(mktemp ${sq(`${STATE_DIR}/pre-upgrade-snapshot.XXXXXX`)})
trap 'rm -f "$script"' EXIT
cat > "$script" <<'${delim}'
${script.trimEnd()}
${delim}
bash "$script"
echo "pre-upgrade snapshot taken (installed: \${installed:-unrecorded}; next: ${o.release.version})"
`;
}

/** Where a pushed restore snapshot lands (a 0700 dir of the SSH user; the file is removed once restored). */
export function restoreUploadPath(sha256: string): string {
    return `${STAGING_DIR}/restore/${sha256.slice(0, 16)}.db`;
}

/**
 * restore stop: stops etcd on the member (every member's stop runs before any restore, so no member keeps
 * serving the old cluster) and prepares the upload dir, 0700 for the SSH user. A member already restored
 * by this restore (marker) and running is left alone.
 */
export function restoreStopScript(o: { restoreId: string; sshUser: string }): string {
    if (!/^[a-z_][a-z0-9_-]*$/.test(o.sshUser)) throw new Error(`restore: bad SSH user ${o.sshUser}`);
    return `
# etcd-ha restore ${o.restoreId}: stop etcd before any member is restored.
install -d -m 0755 ${sq(STAGING_DIR)}
install -d -m 0700 -o ${sq(o.sshUser)} ${sq(`${STAGING_DIR}/restore`)}
if [ -f ${sq(restoredMarkerPath(o.restoreId))} ] && systemctl is-active --quiet etcd; then
  echo "already restored by restore ${o.restoreId} and running: not stopping it"
  exit 0
fi
${stopForRestoreScript().trim()}
`;
}

/** What the restore step of one member needs. */
export interface RestoreStepOptions {
    release: EtcdRelease;
    memberName: string;
    peerUrl: string;
    initialCluster: string;
    /** The restored cluster's new token. */
    token: string;
    dataDir: string;
    restoreId: string;
    sha256: string;
    /**
     * An http(s) URL the member downloads, or `s3://bucket/key` it downloads from the store `s3` names (the
     * store's keys on the step's stdin: s3CurlConfig), or undefined when the snapshot was pushed to
     * restoreUploadPath.
     */
    url?: string;
    /** The store of an `s3://` URL. */
    s3?: S3Store;
}

/** The S3 store a member downloads an `s3://` snapshot from (its keys come on the step's stdin). */
export interface S3Store {
    /** `https://host[:port]`. */
    endpoint: string;
    /** The signing region. */
    region: string;
    /** PEM CA bundle for the store's certificate (default: the member's system CAs). */
    caPem?: string;
}

/**
 * restore: (download the snapshot when it comes from a URL,) install the wanted release while etcd is
 * stopped, restore the snapshot (restore.ts: sha256 checked, the old member dir moved aside inside the data
 * dir, marker), then delete the uploaded or downloaded copy.
 */
export function restoreStepScript(o: RestoreStepOptions): string {
    const upload = restoreUploadPath(o.sha256);
    const snapshotPath = o.url ? `${STATE_DIR}/restore-${o.sha256.slice(0, 16)}.db` : upload;
    const object = o.url === undefined ? undefined : parseS3Url(o.url);
    if (o.url !== undefined && object === undefined && !/^https?:\/\/[^\s'"`$\\]+$/.test(o.url)) throw new Error(`restore: bad snapshot URL ${o.url}`);
    if ((object !== undefined) !== (o.s3 !== undefined)) throw new Error("restore: an s3:// snapshot needs its store (s3), and only it");
    if (o.s3 !== undefined && !S3_ENDPOINT.test(o.s3.endpoint)) throw new Error(`restore: bad S3 endpoint ${o.s3.endpoint}`);
    // How the snapshot reaches snapshotPath.part (a URL: the member downloads it; a path: pushed already).
    const download =
        object !== undefined
            ? `  # The store's keys arrive on stdin only; they live in a 0600 file until the download ends.
  s3_auth=$(mktemp ${sq(`${STATE_DIR}/.restore-s3.XXXXXX`)})
  cat > "$s3_auth"
  s3_ca=""
${o.s3!.caPem === undefined ? "" : `  s3_ca=$(mktemp ${sq(`${STATE_DIR}/.restore-s3-ca.XXXXXX`)})
  cat > "$s3_ca" <<'ETCD_HA_S3_CA'
${o.s3!.caPem.trim()}
ETCD_HA_S3_CA
`}${shellFile(S3_SH).trimEnd().replace(/^/gm, "  ")}
  s3_endpoint=${sq(o.s3!.endpoint)}
  s3_bucket=${sq(object.bucket)}
  s3_region=${sq(o.s3!.region)}
  s3_timeout=3600
  if ! s3_get ${sq(object.key)} ${sq(`${snapshotPath}.part`)}; then
    rm -f -- "$s3_auth" \${s3_ca:+"$s3_ca"} ${sq(`${snapshotPath}.part`)}
    echo "downloading ${o.url} from ${o.s3!.endpoint} failed: nothing restored" >&2
    exit 1
  fi
  rm -f -- "$s3_auth" \${s3_ca:+"$s3_ca"}
`
            : `  curl --fail --silent --show-error --location --retry 3 --connect-timeout 20 --max-time 3600 -o ${sq(`${snapshotPath}.part`)} ${sq(o.url ?? "")}
`;
    const fetch = o.url
        ? `if [ ! -f "$marker" ] && ! printf '%s  %s\\n' ${sq(o.sha256)} ${sq(snapshotPath)} | sha256sum --check --status 2>/dev/null; then
  install -d -m 0700 ${sq(STATE_DIR)}
${download}  chmod 0600 ${sq(`${snapshotPath}.part`)}
  mv -f ${sq(`${snapshotPath}.part`)} ${sq(snapshotPath)}
  echo "downloaded the snapshot ${object !== undefined ? `${o.url} from ${o.s3!.endpoint}` : `from ${o.url}`}"
fi
`
        : "";
    const body = restoreScript({
        version: o.release.version,
        memberName: o.memberName,
        peerUrl: o.peerUrl,
        initialCluster: o.initialCluster,
        token: o.token,
        dataDir: o.dataDir,
        snapshotPath,
        sha256: o.sha256,
        restoreId: o.restoreId,
    });
    return `
# etcd-ha restore ${o.restoreId}: member ${o.memberName}
marker=${sq(restoredMarkerPath(o.restoreId))}
${installReleaseShell(o.release)}
${fetch}install_release
(
${body.trim()}
)
rm -f ${sq(snapshotPath)}
`;
}
