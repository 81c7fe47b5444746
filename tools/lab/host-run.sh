#!/usr/bin/env bash
# etcd-ha lab: the power switch of one lab host. `lab up` starts it detached; it runs the host as a
# systemd-nspawn machine with real systemd as PID 1 and exits when the machine is off.
#
#   host-run.sh HOST_DIR NAME MACHINE ROOTFS CGROUP
#
#   HOST_DIR  the host's own files: upper/ and work/ (its overlay over ROOTFS: everything it writes, kept
#             across boots), disk/ (its dedicated etcd disk, mounted at /var/lib/etcd), console.log, run.pid,
#             nspawn.pid, and `stop` (present: a reboot inside ends the run instead of booting again).
#   NAME      the host name inside (etcd1, …).
#   MACHINE   the nspawn machine name, unique on this machine (several labs may run at once).
#   ROOTFS    the read-only base tree (tools/lab/rootfs.sh).
#   CGROUP    a cgroup path of its own (e.g. etcd-ha-lab/127-66-0/etcd1): nspawn puts itself into
#             CGROUP/supervisor and the machine into CGROUP/payload, in the name=systemd and the unified
#             hierarchy. Hosts started from one shared cgroup would share one payload.
#
# The overlay (and a tmpfs over /run/systemd for nspawn's own state) is mounted in a private mount
# namespace of this script (unshare), so it disappears with the host: the machine's own mounts and /run
# never change, and nothing is left to unmount after a power cut.
# The machine shares this machine's network stack (no --private-network): its sshd and etcd listen on the
# host's own 127.x address. `systemctl reboot` inside makes nspawn exit 133; this loop then boots it again
# (at most 100 boots per run). Any other exit (poweroff, SIGTERM to nspawn, a killed PID 1) ends the run.
set -euo pipefail
dir=$1 name=$2 machine=$3 rootfs=$4 cgroup=$5

if [ "${ETCD_HA_LAB_IN_NS:-}" != 1 ]; then
  for h in systemd unified; do
    mkdir -p "/sys/fs/cgroup/$h/$cgroup"
    echo $$ >"/sys/fs/cgroup/$h/$cgroup/cgroup.procs"
  done
  echo $$ >"$dir/run.pid"
  ETCD_HA_LAB_IN_NS=1 exec unshare --mount --propagation private -- /bin/bash "$0" "$@"
fi

mkdir -p "$dir/upper" "$dir/work" "$dir/root" "$dir/disk"
# nspawn keeps its own state (propagation dirs, locks) under /run/systemd/nspawn: a tmpfs of this namespace.
mount -t tmpfs -o mode=0755,size=16m "etcd-ha-lab-$machine" /run/systemd
mount -t overlay "etcd-ha-lab-$machine" -o "lowerdir=$rootfs,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"

boots=0
while [ "$boots" -lt 100 ]; do
  boots=$((boots + 1))
  echo "== $(date -u +%FT%T.%3NZ) boot $boots of $name ($machine)"
  rc=0
  systemd-nspawn --quiet --directory="$dir/root" --machine="$machine" --hostname="$name" \
    --boot --register=no --keep-unit --console=pipe --link-journal=no --resolv-conf=off --timezone=off \
    --bind="$dir/disk:/var/lib/etcd" </dev/null &
  echo $! >"$dir/nspawn.pid"
  wait $! || rc=$?
  echo "== $(date -u +%FT%T.%3NZ) $name off (nspawn exit $rc)"
  rm -f "$dir/nspawn.pid"
  if [ "$rc" -ne 133 ] || [ -e "$dir/stop" ]; then break; fi
done
