# shellcheck shell=bash disable=SC2154 # the parameters are the caller's
# etcd-ha cluster teardown step: the destroy marker. Sourced after a parameter block rendered by teardown.ts;
# everything is a function, nothing runs at load. Parameters:
#   cluster marker          the cluster's name and the key of its teardown marker (rolling.ts)
#   endpoints               every planned member's client URL, comma-separated
#   marker_ttl              the marker's lease, seconds
#   ack_wait clear_wait     bounds (seconds) of the wait until every member sees the marker, and of the
#                           create's wait for the cluster to answer
#   bin_dir pki_dir         paths

etcd_ha_ctl=("$bin_dir/etcdctl" --cacert="$pki_dir/ca.crt" --cert="$pki_dir/admin.crt" --key="$pki_dir/admin.key" --dial-timeout=2s --command-timeout=5s)
export ETCDCTL_API=3

teardown_ctl() {
  "${etcd_ha_ctl[@]}" "$@" </dev/null
}

# etcd_ha_teardown_clear: the step's create (and update): deletes the marker, so a marker that an unfinished
# destroy left (or the old half of a replacement, deleted first) never makes a later scale-in skip the
# removal. Waits for the cluster to answer (a new or restored cluster forms its quorum meanwhile), at most
# clear_wait seconds, then fails: the step is created only once the marker is known to be gone.
etcd_ha_teardown_clear() {
  local deadline=$((SECONDS + clear_wait)) out=""
  while :; do
    if out=$(teardown_ctl --endpoints="$endpoints" del --prev-kv "$marker" 2>&1); then
      if [ "$(head -n 1 <<<"$out")" = 0 ]; then
        echo "cluster $cluster: no teardown marker ($marker): pulumi destroy sets it before the members leave"
      else
        echo "cluster $cluster: cleared the teardown marker an unfinished destroy left ($marker: $(sed -n 3p <<<"$out"))"
      fi
      return 0
    fi
    if ((SECONDS >= deadline)); then
      echo "cluster $cluster: could not clear the teardown marker $marker within ${clear_wait}s, the cluster does not answer: $(tail -n 3 <<<"$out")" >&2
      exit 1
    fi
    sleep 2
  done
}

# teardown_warn MESSAGE: the marker could not do its part: every member's leave falls back to removing the
# member through the others in turns. Never fails the destroy.
teardown_warn() {
  echo "warning: cluster $cluster: $1; each member's leave falls back to removing it through the others in turns" >&2
  exit 0
}

# etcd_ha_teardown_mark: the step's delete, on `pulumi destroy` before any member leaves: writes the marker
# (under a lease of marker_ttl seconds), then waits (at most ack_wait seconds) until every member the cluster
# lists answers it in a serializable (local) read, so each member's leave sees it on its own member. A
# cluster without quorum, or a member that does not answer, is a warning, never a failure.
etcd_ha_teardown_mark() {
  local value out="" lease="" i list members missing deadline mname url got n
  value="pulumi destroy of cluster $cluster from ${HOSTNAME:-?} at $(date -u +%Y-%m-%dT%H:%M:%SZ) ($$.$RANDOM)"
  for ((i = 1; i <= 3; i++)); do
    if out=$(teardown_ctl --endpoints="$endpoints" lease grant "$marker_ttl" 2>&1); then
      lease=$(sed -n 's/^lease \([0-9a-f]*\) granted.*/\1/p' <<<"$out")
      if [ -n "$lease" ] && out=$(teardown_ctl --endpoints="$endpoints" put --lease="$lease" "$marker" "$value" 2>&1); then
        break
      fi
      if [ -n "$lease" ]; then
        teardown_ctl --endpoints="$endpoints" lease revoke "$lease" >/dev/null 2>&1 || true
      fi
    fi
    lease=""
    sleep 1
  done
  if [ -z "$lease" ]; then
    teardown_warn "could not write the teardown marker $marker (no quorum, or no member answers: $(tail -n 1 <<<"$out"))"
  fi
  if ! list=$(teardown_ctl --endpoints="$endpoints" member list 2>&1); then
    teardown_warn "wrote the teardown marker $marker but cannot list the members to check that each sees it: $(tail -n 1 <<<"$list")"
  fi
  # One line per member: its name and first client URL (none: it never started).
  members=$(awk -F', ' '{ split($5, u, ","); print $3, u[1] }' <<<"$list")
  n=$(grep -c . <<<"$members" || true)
  deadline=$((SECONDS + ack_wait))
  while :; do
    missing=""
    while read -r mname url; do
      got=""
      if [ -n "$url" ]; then
        got=$(teardown_ctl --endpoints="$url" --dial-timeout=1s --command-timeout=2s get --consistency=s --print-value-only "$marker" 2>/dev/null || true)
      fi
      if [ "$got" != "$value" ]; then
        missing="$missing ${mname:-?}${url:+ ($url)}"
      fi
    done <<<"$members"
    if [ -z "$missing" ]; then
      break
    fi
    if ((SECONDS >= deadline)); then
      teardown_warn "wrote the teardown marker $marker, but after ${ack_wait}s these members do not answer it:$missing"
    fi
    sleep 0.5
  done
  echo "cluster $cluster is being destroyed: every member ($n) sees the teardown marker $marker; each leaves by stopping etcd and wiping its data, without being removed through the others"
}
