# shellcheck shell=bash disable=SC2154 # etcd_ha_ctl is the caller's
# etcd-ha rolling-operation helpers: a cluster-wide lock, a leadership handover, and a catch-up wait.
# Sourced into the member scripts; everything is a function, nothing runs at load. Callers define the array
# `etcd_ha_ctl` (etcdctl with the cluster's client TLS flags and bounded timeouts), run under
# `set -euo pipefail`, and set `trap etcd_ha_lock_release EXIT` before taking the lock.

# etcd_ha_status ENDPOINTS: one line per answering endpoint: "<endpoint> <member id hex> <leader id hex>
# <raft applied index> <is learner>". Endpoints that do not answer within 2 s are left out (each is asked in
# turn, so a member that is down, not yet started or being replaced costs 2 s, not the command timeout).
etcd_ha_status() {
  local ep id leader applied learner
  # IDs are uint64 in decimal; awk's numbers would round them, so awk passes the text and bash's 64-bit
  # arithmetic (which wraps exactly like uint64) turns it into hex.
  while read -r ep id leader applied learner; do
    printf '%s %x %x %s %s\n' "$ep" "$((10#$id))" "$((10#$leader))" "$applied" "$learner"
  done < <("${etcd_ha_ctl[@]}" --endpoints="$1" --dial-timeout=1s --command-timeout=2s endpoint status -w fields 2>/dev/null | awk '
    /^"MemberID" : / { id = $3 }
    /^"Leader" : / { leader = $3 }
    /^"RaftAppliedIndex" : / { applied = $3 }
    /^"IsLearner" : / { learner = $3 }
    /^"Endpoint" : / { ep = $3; gsub(/"/, "", ep); print ep, id, leader, applied, learner }
  ' || true)
}

# etcd_ha_listening ENDPOINT: whether something accepts TCP connections at ENDPOINT's host and port (1 s).
etcd_ha_listening() {
  local hostport=${1#*://}
  hostport=${hostport%%/*}
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "${hostport%:*}" "${hostport##*:}" 2>/dev/null
}

# etcd_ha_status_with SELF_ENDPOINT ENDPOINTS: etcd_ha_status ENDPOINTS, asked again (at most 3 more times,
# 1 s apart) while SELF_ENDPOINT is missing from the answers but its port accepts connections. A running member
# on a loaded machine can miss the 2 s bound; taking it for a stopped one would restart a leader without a
# handover, which costs an election. A member whose port is closed (stopped, its host rebuilt) is not asked again.
etcd_ha_status_with() {
  local self=$1 eps=$2 status="" i
  for ((i = 1; i <= 4; i++)); do
    status=$(etcd_ha_status "$eps")
    if awk -v s="$self" '$1 == s { found = 1 } END { exit !found }' <<<"$status"; then
      break
    fi
    if ((i == 4)) || ! etcd_ha_listening "$self"; then
      break
    fi
    sleep 1
  done
  [ -z "$status" ] || printf '%s\n' "$status"
}

# etcd_ha_lock_acquire NAME ENDPOINTS WAIT_SECONDS HOLD_SECONDS: takes the etcd lock NAME (a key prefix)
# through ENDPOINTS, waiting at most WAIT_SECONDS. The lock lives in a background `etcdctl lock` whose session
# lease (10 s) keeps it only while that process runs: etcd_ha_lock_release ends it (call it from the EXIT
# trap too), and it ends by itself after HOLD_SECONDS, so a failed or killed step never leaves the lock held.
etcd_ha_lock_acquire() {
  local name=$1 eps=$2 wait=$3 hold=$4 key=""
  coproc ETCD_HA_LOCK { exec timeout --kill-after=5 "$hold" "${etcd_ha_ctl[@]}" --endpoints="$eps" lock --ttl=10 "$name" 2>/dev/null; }
  # shellcheck disable=SC2153 # set by coproc
  etcd_ha_lock_pid=$ETCD_HA_LOCK_PID
  if ! IFS= read -r -t "$wait" key <&"${ETCD_HA_LOCK[0]}" || [[ $key != "$name"/* ]]; then
    etcd_ha_lock_release
    echo "could not take the cluster lock $name within ${wait}s${key:+ ($key)}: another member's operation holds it, or the cluster does not answer" >&2
    return 1
  fi
  echo "took the cluster lock $name ($key)"
}

# etcd_ha_lock_release: ends the lock holder (etcdctl releases the lock and revokes its lease on SIGTERM).
etcd_ha_lock_release() {
  local pid=${etcd_ha_lock_pid:-} i
  etcd_ha_lock_pid=""
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

# etcd_ha_handover SELF_ENDPOINT ENDPOINTS WAIT_SECONDS [AVOID]: when the member at SELF_ENDPOINT leads, moves
# leadership to the voting member with the highest raft applied index among the other ENDPOINTS that answer,
# preferring members whose endpoint is not in AVOID (comma-separated: members about to restart themselves),
# then waits (at most WAIT_SECONDS) until every answering member names that member as leader. Does nothing
# when SELF_ENDPOINT does not lead, or does not answer while its port stays closed (etcd_ha_status_with).
# Fails when no other voting member answers.
etcd_ha_handover() {
  local self=$1 eps=$2 wait=$3 avoid=",${4:-}," status self_id leader target="" target_ep="" best=-1 best_applied="" rank ep id applied learner i
  status=$(etcd_ha_status_with "$self" "$eps")
  # A member that does not answer (stopped, or its host rebuilt) has nothing to hand over.
  read -r _ self_id leader _ _ < <(awk -v s="$self" '$1 == s' <<<"$status") || true
  if [ -z "${self_id:-}" ] || [ "$self_id" != "$leader" ]; then
    return 0
  fi
  while read -r ep id _ applied learner; do
    # Members not about to restart rank above every member that is.
    rank=$applied
    if [[ $avoid != *",$ep,"* ]]; then
      rank=$((applied + (1 << 62)))
    fi
    if [ "$ep" != "$self" ] && [ "$learner" = false ] && [ "$rank" -gt "$best" ]; then
      best=$rank best_applied=$applied target=$id target_ep=$ep
    fi
  done <<<"$status"
  if [ -z "$target" ]; then
    echo "this member leads and no other voting member answers: no one to hand leadership to" >&2
    return 1
  fi
  "${etcd_ha_ctl[@]}" --endpoints="$self" move-leader "$target" >/dev/null
  for ((i = 0; i < wait * 10; i++)); do
    if ! awk -v t="$target" '$3 != t { bad = 1 } END { exit bad }' <<<"$(etcd_ha_status "$eps")"; then
      sleep 0.1
      continue
    fi
    echo "handed leadership to $target ($target_ep, applied index $best_applied)"
    return 0
  done
  echo "moved leadership to $target but not every member names it leader after ${wait}s" >&2
  return 1
}

# etcd_ha_caught_up SELF_ENDPOINT ENDPOINTS WAIT_SECONDS: waits (at most WAIT_SECONDS) until the member at
# SELF_ENDPOINT has applied at least what the leader had applied when the wait began, i.e. it serves what the
# cluster had committed by then: more than answering `endpoint health`.
etcd_ha_caught_up() {
  local self=$1 eps=$2 wait=$3 status leader target mine i
  status=$(etcd_ha_status "$eps")
  leader=$(awk 'NR == 1 { print $3 }' <<<"$status")
  target=$(awk -v l="$leader" '$2 == l { print $4 }' <<<"$status")
  if [ -z "$target" ]; then
    echo "no leader answers among $eps: cannot tell whether $self has caught up" >&2
    return 1
  fi
  for ((i = 0; i < wait * 10; i++)); do
    mine=$(awk -v s="$self" '$1 == s { print $4 }' <<<"$(etcd_ha_status "$self")")
    if [ -n "$mine" ] && [ "$mine" -ge "$target" ]; then
      echo "caught up: applied index $mine (the leader's was $target)"
      return 0
    fi
    sleep 0.1
  done
  echo "$self has not caught up with the leader's applied index $target after ${wait}s (it has ${mine:-no answer})" >&2
  return 1
}

# etcd_ha_leads SELF_ENDPOINT: whether the member at SELF_ENDPOINT answers and leads (asked again while it
# listens: etcd_ha_status_with).
etcd_ha_leads() {
  local id="" leader=""
  read -r _ id leader _ _ < <(etcd_ha_status_with "$1" "$1") || true
  [ -n "$id" ] && [ "$id" = "$leader" ]
}

# etcd_ha_turn_begin PREFIX NAME SELF_ENDPOINT ENDPOINTS WAIT_SECONDS HOLD_SECONDS [HEALTH_WAIT]: waits for this member's
# turn to change the live cluster (restart, join, leave), at most WAIT_SECONDS. It marks the member pending
# (PREFIX/pending/NAME, bound to a lease of HOLD_SECONDS), takes the lock PREFIX/rolling through ENDPOINTS
# (the other members), then checks that every other member the cluster lists is healthy (retried while they
# are not, at most HEALTH_WAIT seconds, default 60, the lock given back meanwhile). The leader goes last:
# holding the lock while other members are pending, it gives the lock back for 2 s and asks again. Sets
# `trap etcd_ha_turn_end EXIT`; does nothing when this script already has its turn. Afterwards
# `etcd_ha_pending_others` holds the endpoints of other members still pending (for the handover to avoid).
# When `etcd_ha_turn_check` names a function, it is called at the start of every round of the wait (never
# while the lock is held): once it succeeds, the wait ends without a turn (the marker's lease revoked) and
# `etcd_ha_turn_abandoned` is "yes" (the caller no longer needs the turn: what it waited to change has
# changed meanwhile). It runs as an `if` condition, so without `set -e`: it checks its own commands.
etcd_ha_turn_begin() {
  local prefix=$1 name=$2 self=$3 eps=$4 wait=$5 hold=$6 health_wait=${7:-60}
  local deadline=$((SECONDS + wait)) out pending last_pending="" unchanged=0 health unhealthy voters unhealthy_since=""
  etcd_ha_turn_abandoned=""
  [ -z "${etcd_ha_lock_pid:-}" ] || return 0
  trap etcd_ha_turn_end EXIT
  out=$("${etcd_ha_ctl[@]}" --endpoints="$eps" lease grant "$hold")
  etcd_ha_turn_lease=$(sed -n 's/^lease \([0-9a-f]*\) granted.*/\1/p' <<<"$out")
  etcd_ha_turn_eps=$eps
  "${etcd_ha_ctl[@]}" --endpoints="$eps" put --lease="$etcd_ha_turn_lease" "$prefix/pending/$name" "$self" >/dev/null
  # The leader gives the other members' markers a moment to appear before it queues.
  if etcd_ha_leads "$self"; then
    sleep 3
  fi
  while :; do
    if [ -n "${etcd_ha_turn_check:-}" ] && "$etcd_ha_turn_check"; then
      etcd_ha_turn_end
      # shellcheck disable=SC2034 # read by the caller
      etcd_ha_turn_abandoned=yes
      return 0
    fi
    if ((SECONDS >= deadline)); then
      echo "$name: no turn to change the cluster within ${wait}s: another member's operation holds the lock $prefix/rolling, or the cluster does not answer" >&2
      return 1
    fi
    # Asked in short tries, not one long wait: a waiting `etcdctl lock` holds a watch and a keepalive stream
    # on some member, and a member restarting waits up to 7 s for such streams to end before it stops.
    if ! etcd_ha_lock_acquire "$prefix/rolling" "$eps" 2 "$hold" >/dev/null 2>&1; then
      sleep 0.5
      continue
    fi
    pending=$("${etcd_ha_ctl[@]}" --endpoints="$eps" get --prefix "$prefix/pending/" | awk -v k="$prefix/pending/$name" 'NR % 2 == 1 { key = $0; next } key != k { print }' | paste -sd, -)
    # shellcheck disable=SC2034 # read by the caller
    etcd_ha_pending_others=$pending
    if [ "$pending" != "$last_pending" ]; then
      last_pending=$pending unchanged=0
    fi
    if [ -n "$pending" ] && ((unchanged < 10 && deadline - SECONDS > 60)) && etcd_ha_leads "$self"; then
      # Leader last: while other members are pending, their turns come first (they ask every half second;
      # the lock is left free for 2 s). Markers that stay the same through 10 such rounds belong to steps
      # that stopped asking (killed; a marker lives until its lease ends): the leader goes on.
      unchanged=$((unchanged + 1))
      etcd_ha_lock_release
      sleep 2
      continue
    fi
    health=$("${etcd_ha_ctl[@]}" --endpoints="$eps" endpoint health --cluster 2>&1 || true)
    unhealthy=$(grep -v "^$self " <<<"$health" | grep ' is unhealthy' | cut -d' ' -f1 | paste -sd' ' - || true)
    if [ -z "$unhealthy" ] && ! grep -q ' is healthy' <<<"$health"; then
      unhealthy="(no member answers: $(head -c 300 <<<"$health"))"
    fi
    if [ -z "$unhealthy" ]; then
      break
    fi
    etcd_ha_lock_release
    unhealthy_since=${unhealthy_since:-$SECONDS}
    if ((SECONDS - unhealthy_since >= health_wait || SECONDS >= deadline)); then
      echo "$name: not every other member is healthy, refusing to change the cluster (fix or replace them first): $unhealthy" >&2
      return 1
    fi
    sleep 2
  done
  voters=$("${etcd_ha_ctl[@]}" --endpoints="$eps" member list 2>/dev/null | awk -F', ' '$6 == "false"' | grep -c . || true)
  etcd_ha_turn_name=$name
  echo "$name: my turn to change the cluster from $(date -u +%Y-%m-%dT%H:%M:%S.%3NZ); every other member is healthy (${voters} voters, quorum $((voters / 2 + 1)))"
}

# etcd_ha_turn_end: ends the turn: releases the lock and revokes the pending marker's lease (EXIT trap).
etcd_ha_turn_end() {
  if [ -n "${etcd_ha_lock_pid:-}" ] && [ -n "${etcd_ha_turn_name:-}" ]; then
    echo "$etcd_ha_turn_name: turn ended at $(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)"
  fi
  etcd_ha_lock_release
  if [ -n "${etcd_ha_turn_lease:-}" ]; then
    "${etcd_ha_ctl[@]}" --endpoints="$etcd_ha_turn_eps" lease revoke "$etcd_ha_turn_lease" >/dev/null 2>&1 || true
    etcd_ha_turn_lease=""
  fi
}
