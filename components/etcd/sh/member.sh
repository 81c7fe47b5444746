# shellcheck shell=bash disable=SC2154 # the parameters are the caller's
# etcd-ha member steps: start (bootstrap, join, restart, replace) and leave. Sourced after the rolling
# helpers (rolling.sh) and a parameter block rendered from the member's plan (scripts.ts); everything is a
# function, nothing runs at load. Parameters:
#   name peer_url client_url data_dir    this member
#   others                               the other planned members' client URLs, comma-separated
#   cluster token                        the planned --initial-cluster and token (used only to bootstrap)
#   replace restore_id restored_marker   a replacement ("yes"), or a restore (its id and marker file)
#   release                              "yes" when the step installs a release (install_release defined)
#   attempts interval                    bounds of the waits for health and promotion
#   coordination turn_wait turn_hold     etcd key prefix and bounds of this member's turn (rolling.sh)
#   teardown_marker                      the key the cluster's teardown step writes on destroy (read by leave)
#   bin_dir unit_path pki_dir stamp bootstrap_env replaced_marker release_marker etcdctl_env
#                                        paths

etcd_ha_pending_others=""
etcd_ha_ctl=("$bin_dir/etcdctl" --cacert="$pki_dir/ca.crt" --cert="$pki_dir/admin.crt" --key="$pki_dir/admin.key" --dial-timeout=3s --command-timeout=15s)
export ETCDCTL_API=3

ctl() {
  "${etcd_ha_ctl[@]}" "$@"
}

# take_turn: waits for this member's turn to change the live cluster (rolling.sh).
take_turn() {
  etcd_ha_turn_begin "$coordination" "$name" "$client_url" "${others:-$client_url}" "$turn_wait" "$turn_hold"
}

# member_line LIST: the member list line of the member with this peer URL (empty when it is not a member).
member_line() {
  awk -F', ' -v p="$peer_url" '$4 == p' <<<"$1"
}

logs() {
  echo "last etcd log lines:" >&2
  journalctl -u etcd -n 50 --no-pager >&2 || true
}

# reconfigure ARGS…: a membership change through the other members, retried (bounded) while etcd answers
# "unhealthy cluster": its strict reconfiguration check wants every voter connected for the last 5 s, which
# a member promoted or restarted moments ago is not yet.
reconfigure() {
  local i out
  for ((i = 1; i <= attempts; i++)); do
    if out=$(ctl --endpoints="$others" "$@" 2>&1); then
      printf '%s\n' "$out"
      return 0
    fi
    case "$out" in
      *"unhealthy cluster"*) sleep "$interval" ;;
      *) printf '%s\n' "$out" >&2; return 1 ;;
    esac
  done
  echo "etcdctl $* still refused after $attempts attempts: $out" >&2
  return 1
}

# fingerprint: what etcd is (re)started with (unit, binary, served certificates, release).
fingerprint() {
  local unit_sum etcd_sum certs_sum
  unit_sum=$(sha256sum "$unit_path" | cut -d' ' -f1) || return 1
  etcd_sum=$(sha256sum "$bin_dir/etcd" | cut -d' ' -f1) || return 1
  certs_sum=$(cat "$pki_dir/ca.crt" "$pki_dir/server.crt" "$pki_dir/peer.crt" | sha256sum | cut -d' ' -f1) || return 1
  if [ -n "$release" ]; then
    echo "unit=$unit_sum etcd=$etcd_sum certs=$certs_sum release=$(cat "$release_marker")"
  else
    echo "unit=$unit_sum etcd=$etcd_sum certs=$certs_sum"
  fi
}

wait_healthy() {
  local i out=""
  for ((i = 1; i <= attempts; i++)); do
    if out=$(ctl --endpoints="$client_url" endpoint health 2>&1); then
      echo "member $name healthy after $i check(s)"
      return 0
    fi
    sleep "$interval"
  done
  echo "member $name not healthy after $attempts checks ${interval}s apart: $out" >&2
  logs
  return 1
}

# write_bootstrap STATE CLUSTER: the bootstrap settings etcd reads while its data dir is empty.
write_bootstrap() {
  local tmp
  tmp=$(mktemp "$bootstrap_env.XXXXXX")
  printf '%s\n' "# Managed by etcd-ha: read by etcd only while its data dir is empty." "ETCD_INITIAL_CLUSTER=$2" "ETCD_INITIAL_CLUSTER_STATE=$1" "ETCD_INITIAL_CLUSTER_TOKEN=$token" > "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$bootstrap_env"
}

# wipe_data: the named removal of this member's data, and nothing else: etcd's member/ dir and this program's
# restore staging dirs (.restore-*). Whatever else the data dir holds stays (pre-restore copies, files that are
# not etcd's), and is listed.
wipe_data() {
  local kept
  : "${data_dir:?}"
  [ -d "$data_dir" ] || return 0
  rm -rf -- "$data_dir/member"
  find "$data_dir" -mindepth 1 -maxdepth 1 -name '.restore-*' -exec rm -rf -- {} +
  kept=$(find "$data_dir" -mindepth 1 -maxdepth 1 -printf '%f\n' | sort | paste -sd' ' -)
  if [ -n "$kept" ]; then
    echo "kept in $data_dir (not etcd's member data): $kept"
  fi
}

# replace_member: once per replacement, in this member's turn: hand leadership over if it leads, stop etcd,
# `member remove` it through the other members, wipe the data dir (the named replacement), then the start
# goes on to join as a new member.
replace_member() {
  local list line
  if [ "$(cat "$replaced_marker" 2>/dev/null || true)" = "$name" ]; then
    return 0
  fi
  echo "replacing member $name: stop it, remove it from the cluster, wipe its data ($data_dir/member), join again"
  take_turn
  etcd_ha_handover "$client_url" "$all" 30 "$etcd_ha_pending_others"
  systemctl stop etcd || true
  if ! list=$(ctl --endpoints="$others" member list 2>&1); then
    echo "cannot reach the other members ($others) to replace $name: $list" >&2
    exit 1
  fi
  line=$(member_line "$list")
  if [ -n "$line" ]; then
    reconfigure member remove "${line%%,*}"
  fi
  wipe_data
  rm -f "$stamp"
  printf '%s\n' "$name" > "$replaced_marker.pending"
}

# run_member WANT: a member with data: restart it (in its turn) when WANT differs from what it was started
# with, start it when stopped, then wait until it is healthy (and caught up after a restart).
run_member() {
  local want=$1 restarted=""
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
  # Enabled for the next boot, which reads the symlink; etcd runs already, so systemd need not re-read every
  # unit now (--no-reload: a reload costs it about 0.2 s of CPU).
  systemctl --no-reload enable etcd
  wait_healthy
  if [ -n "$restarted" ]; then
    etcd_ha_caught_up "$client_url" "$all" $((attempts * interval))
  fi
  printf '%s\n' "$want" > "$stamp"
}

# cluster_listening: whether another member accepts connections (nobody listening: no cluster, and no
# etcdctl timeout to wait for).
cluster_listening() {
  local ep
  for ep in ${others//,/ }; do
    if etcd_ha_listening "$ep"; then
      return 0
    fi
  done
  return 1
}

# promote LEARNER_ID: promotes the learner once it has caught up (bounded retries).
promote() {
  local i out
  for ((i = 1; i <= attempts; i++)); do
    if out=$(ctl --endpoints="$others" member promote "$1" 2>&1); then
      echo "promoted $name ($1) to a voting member after $i attempt(s)"
      return 0
    fi
    case "$out" in
      *"can only promote a learner member which is in sync with leader"* | *"unhealthy cluster"*) sleep "$interval" ;;
      *"can only promote a learner member"*) echo "$name is already a voting member"; return 0 ;;
      *) echo "member promote $1 failed: $out" >&2; exit 1 ;;
    esac
  done
  echo "$name did not catch up with the leader after $attempts attempts ${interval}s apart: still a learner" >&2
  logs
  exit 1
}

# etcd_ha_start: the start step (see startScript in scripts.ts for what it decides).
etcd_ha_start() {
  local want state=new learner_id="" list line added
  all="$client_url${others:+,$others}"
  if [ -n "$release" ]; then
    # The release this member runs, installed in its turn (a running etcd keeps its old binary until the restart below).
    install_release
  fi
  # What etcd is (re)started with; computed first, so a missing unit, binary or certificate fails before anything is done.
  want=$(fingerprint)
  # systemd reads the unit again only when it changed on disk since it last did (the config step reloads when it
  # writes it; a reload costs systemd about 0.2 s of CPU and this runs on every member).
  if [ "$(systemctl show -p NeedDaemonReload --value etcd)" = yes ]; then
    systemctl daemon-reload
  fi
  if [ -n "$replace" ]; then
    replace_member
  else
    rm -f "$replaced_marker"
  fi
  if [ -n "$restore_id" ] && [ -d "$data_dir/member" ] && [ -f "$restored_marker" ] && ! systemctl is-active --quiet etcd; then
    # The restored cluster has no quorum until enough members run: start without waiting; the gate waits.
    systemctl --no-reload enable etcd
    systemctl start --no-block etcd
    printf '%s\n' "$want" > "$stamp"
    echo "started restored member $name (restore $restore_id): the new cluster forms once a quorum of members has started"
    exit 0
  fi
  if [ -d "$data_dir/member" ]; then
    run_member "$want"
    exit 0
  fi

  # An empty data dir: bootstrap the cluster, or join the running one. A member that is starting but has no
  # quorum yet accepts connections without completing TLS, so a short dial timeout tells it from a running
  # cluster, which answers at once.
  if cluster_listening && list=$(ctl --endpoints="$others" --dial-timeout=2s --command-timeout=3s member list 2>/dev/null); then
    line=$(member_line "$list")
    if [ -z "$line" ]; then
      echo "a running cluster does not list $name: joining it as a learner in its turn"
      # One join, restart or removal at a time, every member healthy (checked by take_turn).
      take_turn
      list=$(ctl --endpoints="$others" member list)
      if awk -F', ' '$6 == "true"' <<<"$list" | grep -q .; then
        echo "the cluster already has a learner (etcd allows one): promote or remove it first:" >&2
        printf '%s\n' "$list" >&2
        exit 1
      fi
      added=$(reconfigure member add "$name" --peer-urls="$peer_url" --learner)
      printf '%s\n' "$added"
      # etcdctl prints the ID with %16x: an ID below 2^60 is padded with spaces, not zeros.
      learner_id=$(sed -n 's/^Member  *\([0-9a-f][0-9a-f]*\) added to cluster.*/\1/p' <<<"$added")
      if [ -z "$learner_id" ]; then
        echo "could not read the new member's ID from member add:" >&2
        printf '%s\n' "$added" >&2
        exit 1
      fi
      cluster=$(sed -n 's/^ETCD_INITIAL_CLUSTER="\(.*\)"$/\1/p' <<<"$added")
      state=existing
    elif [ "$(awk -F', ' '{print $6}' <<<"$line")" = "true" ]; then
      echo "$name is already a learner of the running cluster (an earlier join stopped): resuming in its turn"
      take_turn
      learner_id=${line%%,*}
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
  systemctl --no-reload enable etcd
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
    promote "$learner_id"
    wait_healthy
    etcd_ha_caught_up "$client_url" "$all" $((attempts * interval))
  fi
  printf '%s\n' "$want" > "$stamp"
  if [ -f "$replaced_marker.pending" ]; then
    mv -f "$replaced_marker.pending" "$replaced_marker"
  fi
}

# teardown_marked ENDPOINT…: whether the first of these members that answers holds the teardown marker, in a
# serializable (local) read: the cluster's teardown step writes it on `pulumi destroy` before any member
# leaves, and waits until every member has it. Its value is left in `teardown_note`.
teardown_marked() {
  local ep value
  for ep in "$@"; do
    if value=$(ctl --endpoints="$ep" --dial-timeout=1s --command-timeout=3s get --consistency=s --print-value-only "$teardown_marker" 2>/dev/null </dev/null); then
      if [ -n "$value" ]; then
        teardown_note=$(head -n 1 <<<"$value")
        return 0
      fi
      return 1
    fi
  done
  return 1
}

# last_member: whether this member answers and its own member list holds nobody else (the others have left).
last_member() {
  local own
  own=$(ctl --endpoints="$client_url" --dial-timeout=1s --command-timeout=3s member list 2>/dev/null </dev/null) || return 1
  [ "$(grep -c . <<<"$own")" = 1 ] && [ -n "$(member_line "$own")" ]
}

# leave_turn_check: called by etcd_ha_turn_begin while this member waits for its turn to leave (see there):
# whether it need not wait any more: the cluster is being destroyed, or the others have left meanwhile and
# it is the last member. Fails the step when no member answers at all for 30 s.
leave_turn_check() {
  if teardown_marked "$client_url"; then
    leave_reason=teardown
    return 0
  fi
  if last_member; then
    leave_reason=last
    return 0
  fi
  if [ -n "$(etcd_ha_status "$client_url,$others")" ]; then
    leave_silent_since=""
    return 1
  fi
  leave_silent_since=${leave_silent_since:-$SECONDS}
  if ((SECONDS - leave_silent_since >= 30)); then
    echo "$name: no member answers ($client_url,$others) for 30s while waiting to leave: cannot remove it safely. Bring the cluster back, or remove the member by hand (etcdctl member remove) and run pulumi up again" >&2
    exit 1
  fi
  return 1
}

# leave_cluster: removes this member through the others in its turn (scale-in, or a destroy without the
# teardown marker); sets leave_reason to what it found instead when there is nothing to remove it from.
leave_cluster() {
  local list="" line id ok="" i
  if [ -n "$others" ]; then
    list=$(ctl --endpoints="$others" member list 2>/dev/null) || list=""
  fi
  if [ -z "$list" ]; then
    if last_member; then
      leave_reason=last
      return 0
    fi
    echo "no other member answers ($others) and $name is not the last member: cannot remove it safely. Bring the cluster back, or remove the member by hand (etcdctl member remove) and run pulumi up again" >&2
    exit 1
  fi
  line=$(member_line "$list")
  if [ -z "$line" ]; then
    leave_reason=gone
    return 0
  fi
  id=${line%%,*}
  # One removal, join or restart at a time, every other member healthy; a leader hands over first. The turn
  # is taken through this member too (the others may leave meanwhile), and ends early when the others have
  # left (this member is the last) or the cluster is being destroyed.
  # shellcheck disable=SC2034 # read by etcd_ha_turn_begin (rolling.sh)
  etcd_ha_turn_check=leave_turn_check
  etcd_ha_turn_begin "$coordination" "$name" "$client_url" "$client_url,$others" "$turn_wait" "$turn_hold"
  if [ -n "$etcd_ha_turn_abandoned" ]; then
    return 0
  fi
  if last_member; then
    leave_reason=last
    return 0
  fi
  etcd_ha_handover "$client_url" "$client_url,$others" 30 "$etcd_ha_pending_others"
  reconfigure member remove "$id"
  for ((i = 1; i <= attempts; i++)); do
    if ctl --endpoints="$others" endpoint health --cluster >/dev/null 2>&1; then
      ok=yes
      echo "removed $name ($id); the remaining cluster is healthy after $i check(s)"
      break
    fi
    sleep "$interval"
  done
  if [ -z "$ok" ]; then
    echo "removed $name ($id), but the remaining cluster is not healthy after $attempts checks ${interval}s apart" >&2
    exit 1
  fi
  leave_reason=removed
}

# leader_stops_last: in a destroy every member stops at once. A leader stopping while its followers answer
# hands leadership over on its way out and, when they stop meanwhile, waits for that up to etcd's request
# timeout (7 s with the default election timeout); so a leader waits (at most 10 s) until no other member
# accepts connections any more, and then stops at once.
leader_stops_last() {
  local deadline=$((SECONDS + 10))
  if [ -z "$others" ] || ! etcd_ha_leads "$client_url"; then
    return 0
  fi
  while ((SECONDS < deadline)) && cluster_listening; do
    sleep 0.2
  done
}

# kept_on_host: names what stays on the host once a member has left: the data dir (without etcd's member/),
# the snapshots and the etcd user that owns them; and what is still there until this member's later deletes
# (certs, config, binaries, prepare: sh/uninstall.sh) remove it.
kept_on_host() {
  local p next=""
  for p in "$unit_path" "$bin_dir/etcd" "$bin_dir/etcdctl" "$bin_dir/etcdutl" "$bin_dir/etcdctl.sh" "$pki_dir" "$etcdctl_env" "${stamp%/*}"; do
    if [ -e "$p" ]; then
      next="$next $p"
    fi
  done
  echo "kept on this host: the data dir $data_dir, the snapshots and the etcd user; this member's certs, config, binaries and prepare deletes remove the rest:${next:- nothing left}"
}

# etcd_ha_leave: the start step's delete (see leaveScript in scripts.ts).
etcd_ha_leave() {
  local endpoints asked
  leave_reason="" teardown_note="" leave_silent_since=""
  endpoints=$(sed -n 's/^ETCDCTL_ENDPOINTS=//p' "$etcdctl_env" 2>/dev/null || true)
  others=$(tr ',' '\n' <<<"$endpoints" | grep -vxF "$client_url" | paste -sd, - || true)
  # This member first; when it does not answer (stopped), the first other member that does.
  IFS=, read -r -a asked <<<"$client_url${others:+,$others}"
  if teardown_marked "${asked[@]}"; then
    leave_reason=teardown
  else
    leave_cluster
  fi
  case "$leave_reason" in
    teardown) echo "the whole cluster is being destroyed ($teardown_note): $name stops without being removed through the others" ;;
    last) echo "$name is the last member of its cluster: nothing to remove it from" ;;
    gone) echo "$name is not a member of the cluster (any more)" ;;
  esac
  # The turn ends while this member still answers: its lock and pending marker may live on it.
  etcd_ha_turn_end
  if [ "$leave_reason" = teardown ]; then
    leader_stops_last
  fi
  systemctl disable --now etcd || true
  wipe_data
  rm -f "$stamp" "$bootstrap_env"
  echo "stopped etcd on $name and wiped its data ($data_dir/member)"
  kept_on_host
}
