/**
 * The readiness step of a new VM, as pure functions: the SSH dial budget that makes the command provider
 * wait for sshd, and the script that then waits (bounded) for cloud-init and keeps the /etc/hosts member
 * block in sync. No Pulumi imports.
 */
import { sq } from "../etcd/scripts";
import { HostsEntry, hostsMarkers, renderHostsBlock } from "./cloudInit";

/** Seconds each SSH connect may take before the attempt counts as failed. */
export const PER_DIAL_TIMEOUT_SECONDS = 5;
/** The command provider's retry sleeps: 100 ms × 1.5ⁿ, capped at 5 s. */
const RETRY_CAP_SECONDS = 5;

/** Total sleep of the provider's dial retries for `attempts` failed dials (100 ms × 1.5ⁿ, capped). */
export function retrySleepSeconds(attempts: number): number {
    let total = 0;
    let wait = 0.1;
    for (let i = 0; i < attempts - 1; i++) {
        total += Math.min(wait, RETRY_CAP_SECONDS);
        wait *= 1.5;
    }
    return total;
}

/**
 * `dialErrorLimit` and `perDialTimeout` for a readiness check that should wait about `seconds` for sshd:
 * the smallest limit whose retry sleeps alone reach `seconds` (a VM that refuses at once), so the wait is
 * at least `seconds` and, when every connect times out, at most `seconds` + attempts × perDialTimeout.
 */
export function sshDialBudget(seconds: number): { dialErrorLimit: number; perDialTimeout: number } {
    let limit = 10;
    while (retrySleepSeconds(limit + 1) < seconds) limit++;
    return { dialErrorLimit: limit, perDialTimeout: PER_DIAL_TIMEOUT_SECONDS };
}

/** What the readiness script needs. */
export interface ReadinessArgs {
    /** VM (member) name, for messages. */
    vmName: string;
    clusterName: string;
    /** Seconds to wait for cloud-init (`proxmox.readyTimeoutSeconds`). */
    timeoutSeconds: number;
    /** Every member, for the /etc/hosts block. */
    members: readonly HostsEntry[];
    /**
     * cloud-init's hosts template, which gets the same block when present: without a snippet, Proxmox's
     * generated user data sets `manage_etc_hosts: true`, and cloud-init re-renders /etc/hosts from it at
     * every boot. Default Ubuntu's path.
     */
    hostsTemplate?: string;
}

/** Ubuntu's cloud-init template for /etc/hosts. */
export const CLOUD_INIT_HOSTS_TEMPLATE = "/etc/cloud/templates/hosts.debian.tmpl";

/**
 * Waits for cloud-init to finish (bounded by `timeout`), fails naming the VM when it does not or when it
 * failed, then makes the member block of /etc/hosts (and of cloud-init's hosts template, when present)
 * match, rewriting a file only when its block differs. Idempotent: on a finished VM it returns at once and
 * changes nothing.
 */
export function readinessScript(a: ReadinessArgs): string {
    const { begin, end } = hostsMarkers(a.clusterName);
    const block = renderHostsBlock(a.clusterName, a.members);
    const vm = sq(a.vmName);
    return `
# etcd-ha readiness: ${a.vmName} answers SSH (the dial budget), cloud-init done, /etc/hosts block current.
vm=${vm}
limit=${a.timeoutSeconds}
if command -v cloud-init >/dev/null 2>&1; then
  rc=0
  timeout "$limit" cloud-init status --wait >/dev/null || rc=$?
  case "$rc" in
    0) echo "$vm: cloud-init done" ;;
    2) echo "$vm: cloud-init done with recoverable errors:"; cloud-init status --long || true ;;
    124)
      echo "$vm: cloud-init did not finish within $limit s (proxmox.readyTimeoutSeconds); see /var/log/cloud-init-output.log on the VM" >&2
      cloud-init status --long >&2 || true
      exit 1 ;;
    *)
      echo "$vm: cloud-init failed (exit $rc); see /var/log/cloud-init-output.log on the VM" >&2
      cloud-init status --long >&2 || true
      exit 1 ;;
  esac
else
  echo "$vm: no cloud-init on this host: nothing to wait for"
fi
block=$(cat <<'ETCD_HA_HOSTS'
${block}
ETCD_HA_HOSTS
)
begin=${sq(begin)}
end=${sq(end)}
sync_block() {
  local file=$1 current tmp
  current=$(awk -v b="$begin" -v e="$end" '$0 == b {f = 1} f {print} $0 == e {f = 0}' "$file")
  if [ "$current" = "$block" ]; then
    echo "$vm: $file member block current"
    return 0
  fi
  tmp=$(mktemp)
  awk -v b="$begin" -v e="$end" '$0 == b {s = 1} !s {print} $0 == e {s = 0}' "$file" >"$tmp"
  printf '%s\n' "$block" >>"$tmp"
  cat "$tmp" >"$file"
  rm -f "$tmp"
  echo "$vm: $file member block updated"
}
sync_block /etc/hosts
template=${sq(a.hostsTemplate ?? CLOUD_INIT_HOSTS_TEMPLATE)}
if [ -f "$template" ]; then
  sync_block "$template"
fi
`;
}
