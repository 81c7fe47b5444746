# shellcheck shell=bash disable=SC2154 # the parameters are the caller's
# etcd-ha cluster health gate, run on one member with the healthcheck client certificate. Sourced after a
# parameter block (scripts.ts); functions only. Parameters:
#   gate_members                 one line per planned member: "<name> <client URL> <peer URL>"
#   endpoints                    every planned member's client URL, comma-separated (any one can answer)
#   attempts interval timeout    bounds: checks, seconds apart, and seconds in all
#   bin_dir pki_dir              paths

# etcd_ha_gate: passes when `member list` shows every planned member started, a voter, with its URLs, and
# `endpoint health --cluster` reports each healthy. Members no longer planned may still be listed (their
# delete steps remove them at the end of the run): they are named. Fails naming every unhealthy member,
# with both outputs.
etcd_ha_gate() {
  local ctl attempt=0 deadline expected list health problems extra name client peer
  ctl=("$bin_dir/etcdctl" --endpoints="$endpoints" --cacert="$pki_dir/ca.crt" --cert="$pki_dir/healthcheck-client.crt" --key="$pki_dir/healthcheck-client.key" --dial-timeout=3s --command-timeout=5s)
  export ETCDCTL_API=3
  expected=$(grep -c . <<<"$gate_members")
  deadline=$((SECONDS + timeout))
  while :; do
    attempt=$((attempt + 1))
    list=$("${ctl[@]}" member list 2>&1) || true
    health=$("${ctl[@]}" endpoint health --cluster 2>&1) || true
    problems=""
    while read -r name client peer; do
      if ! grep -Fq ", started, $name, $peer, $client, false" <<<"$list"; then
        problems="$problems $name(not a started voting member with $peer)"
      elif ! grep -Fq "$client is healthy" <<<"$health"; then
        problems="$problems $name(unhealthy at $client)"
      fi
    done <<<"$gate_members"
    # Members no longer in the program are removed by their own delete steps at the end of the run.
    extra=$(awk -F', ' 'NR == FNR { planned[$3] = 1; next } /^[0-9a-f]+, / && !($4 in planned) { printf " %s", ($3 == "" ? $1 : $3) }' FS=' ' <(printf '%s\n' "$gate_members") FS=', ' <(printf '%s\n' "$list"))
    if [ -z "$problems" ]; then
      echo "healthy: $expected/$expected members after $attempt attempt(s) in ${SECONDS}s${extra:+; still listed, removed at the end of this run:$extra}"
      exit 0
    fi
    if [ "$attempt" -ge "$attempts" ] || [ "$SECONDS" -ge "$deadline" ]; then
      echo "etcd cluster not healthy after $attempt attempt(s) in ${SECONDS}s; unhealthy:$problems" >&2
      echo "--- etcdctl member list" >&2
      printf '%s\n' "$list" >&2
      echo "--- etcdctl endpoint health --cluster" >&2
      printf '%s\n' "$health" >&2
      exit 1
    fi
    sleep "$interval"
  done
}
