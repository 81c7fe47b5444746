# shellcheck shell=bash disable=SC2154 # the parameters are the caller's
# etcd-ha uninstall: the deletes of a member's install steps, run when the member leaves the program
# (scale-in) or on `pulumi destroy`, after the start step's leave (etcd stopped, disabled, member/ wiped), in
# the engine's order: certs, config and binaries (side by side), then prepare. Sourced after a parameter block
# rendered by scripts.ts; functions only, nothing runs at load. Every function:
# - removes only paths this program writes, each named (no glob outside this program's own dirs);
# - never follows a symbolic link: a path that is one, or that lies in a dir of this program's that is one,
#   is left alone and named;
# - runs again without harm (a path already gone is nothing to do), also where the create never fully ran;
# - prints one line of what it removed, and one line of what it left when it left something.
# Parameters:
#   owned_dirs                    this program's dirs (space-separated): a link among them is never followed
#   pki_dir cert_files            certs: the PKI dir and the file names the certs step installs (space-separated)
#   config_dir config_files unit_path
#                                 config: the config dir, the files the config step writes, the unit
#   bin_dir release_marker releases_dir
#                                 binaries: where the start step installs them, its marker, the staged releases
#   state_dir staging_dir data_dir snapshot_dir
#                                 prepare: this program's state and staging dirs; the dirs it keeps

etcd_ha_removed=()
etcd_ha_left=()

# etcd_ha_link PATH: the symbolic link PATH is, or lies in among this program's dirs (empty: none).
etcd_ha_link() {
  local d owned=()
  read -r -a owned <<<"$owned_dirs"
  for d in "${owned[@]}" "$1"; do
    if { [ "$d" = "$1" ] || [[ $1 == "$d"/* ]]; } && [ -L "$d" ]; then
      printf '%s\n' "$d"
      return 0
    fi
  done
}

# etcd_ha_linked PATH: whether PATH is, or lies in, a symbolic link; it is then left alone and named.
etcd_ha_linked() {
  local link note
  link=$(etcd_ha_link "$1")
  [ -n "$link" ] || return 1
  note="$link (a symbolic link: not followed)"
  if [[ " ${etcd_ha_left[*]} " != *" $note"* ]]; then
    etcd_ha_left+=("$note")
  fi
  return 0
}

# etcd_ha_rm_file PATH: removes a file this program writes (nothing to do when it is gone).
etcd_ha_rm_file() {
  etcd_ha_linked "$1" && return 0
  if [ -d "$1" ]; then
    etcd_ha_left+=("$1 (a directory, not the file this program writes)")
  elif [ -e "$1" ]; then
    rm -f -- "$1"
    etcd_ha_removed+=("$1")
  fi
}

# etcd_ha_rm_tree DIR: removes a directory this program owns, with everything in it.
etcd_ha_rm_tree() {
  etcd_ha_linked "$1" && return 0
  if [ -d "$1" ]; then
    rm -rf -- "$1"
    etcd_ha_removed+=("$1")
  fi
}

# etcd_ha_rmdir DIR: removes a directory of this program's when it is empty; otherwise names what it holds
# (or why it stays: a mount point, say).
etcd_ha_rmdir() {
  local rest err
  etcd_ha_linked "$1" && return 0
  [ -d "$1" ] || return 0
  if err=$(rmdir -- "$1" 2>&1); then
    etcd_ha_removed+=("$1")
    return 0
  fi
  rest=$(find "$1" -mindepth 1 -maxdepth 1 -printf '%f\n' | LC_ALL=C sort | paste -sd' ' -)
  if [ -n "$rest" ]; then
    etcd_ha_left+=("$1 (not empty: $rest)")
  else
    etcd_ha_left+=("$1 ($err)")
  fi
}

# etcd_ha_join ITEM…: the items joined by "; ".
etcd_ha_join() {
  local out="" x
  for x in "$@"; do
    out="${out:+$out; }$x"
  done
  printf '%s\n' "$out"
}

# etcd_ha_report WHAT: the step's line of what it removed, and the line of what it left (when it left any).
etcd_ha_report() {
  echo "removed ($1): ${etcd_ha_removed[*]:-nothing}"
  if [ "${#etcd_ha_left[@]}" -gt 0 ]; then
    echo "left alone: $(etcd_ha_join "${etcd_ha_left[@]}")"
  fi
}

# etcd_ha_uninstall_certs: the certs step's delete: the CA certificate and this member's certificates and
# private keys, the private dir of a certs run that was killed (.incoming.*, keys), then the PKI dir when empty.
etcd_ha_uninstall_certs() {
  local f files=() incoming=()
  read -r -a files <<<"$cert_files"
  for f in "${files[@]}"; do
    etcd_ha_rm_file "$pki_dir/$f"
  done
  if ! etcd_ha_linked "$pki_dir" && [ -d "$pki_dir" ]; then
    mapfile -d '' incoming < <(find "$pki_dir" -mindepth 1 -maxdepth 1 -type d -name '.incoming.*' -print0)
    for f in "${incoming[@]}"; do
      etcd_ha_rm_tree "$f"
    done
  fi
  etcd_ha_rmdir "$pki_dir"
  etcd_ha_report "certificates and keys"
}

# etcd_ha_uninstall_config: the config step's delete: the unit (disabled and stopped first, as the leave left
# it: nothing dangles in the systemd target dirs), the files the step writes, then systemd reloaded when the
# unit went, and the config dir when empty.
etcd_ha_uninstall_config() {
  local f files=() unit_here=""
  read -r -a files <<<"$config_files"
  if [ -f "$unit_path" ] && [ -z "$(etcd_ha_link "$unit_path")" ]; then
    unit_here=yes
    systemctl disable --now etcd || true
  fi
  for f in "${files[@]}"; do
    etcd_ha_rm_file "$f"
  done
  if [ -n "$unit_here" ]; then
    systemctl daemon-reload
  fi
  etcd_ha_rmdir "$config_dir"
  etcd_ha_report "unit and config"
}

# etcd_ha_uninstall_binaries: the binaries step's delete: the binaries the start step installed in bin_dir,
# only when the release marker says this program installed them (etcdutl from 3.5), and their half-installed
# copies (.<name>.new); the staged releases; the marker last (a run cut short still knows the binaries).
etcd_ha_uninstall_binaries() {
  local installed="" b bins=()
  if ! etcd_ha_linked "$release_marker" && [ -f "$release_marker" ]; then
    installed=$(head -n 1 "$release_marker")
  fi
  if [ -n "$installed" ]; then
    bins=(etcd etcdctl)
    case "${installed%% *}" in
      3.[0-4].*) ;;
      *) bins+=(etcdutl) ;;
    esac
    for b in "${bins[@]}"; do
      etcd_ha_rm_file "$bin_dir/$b"
    done
  else
    for b in etcd etcdctl etcdutl; do
      if [ -e "$bin_dir/$b" ]; then
        etcd_ha_left+=("$bin_dir/$b (no release marker $release_marker: not installed by this program)")
      fi
    done
  fi
  for b in etcd etcdctl etcdutl; do
    etcd_ha_rm_file "$bin_dir/.$b.new"
  done
  etcd_ha_rm_tree "$releases_dir"
  etcd_ha_rm_file "$release_marker.tmp"
  etcd_ha_rm_file "$release_marker"
  etcd_ha_report "binaries${installed:+ of etcd ${installed%% *}} and staged releases"
}

# etcd_ha_uninstall_prepare: the prepare step's delete, the member's last: this program's state dir (markers,
# what etcd was started with) and staging dir (pushed tarballs, uploads); the PKI and config dirs when empty
# (the certs and config deletes run side by side, so the one that ends first may find the other's dir still
# there). Keeps, and names, the data dir (etcd's member/ was wiped by the leave; it may be a mount point or
# hold the operator's files), the snapshot dir (backups are the operator's) and the etcd user and group, who
# own the files in both.
etcd_ha_uninstall_prepare() {
  local kept=() d
  etcd_ha_rm_tree "$state_dir"
  etcd_ha_rm_tree "$staging_dir"
  etcd_ha_rmdir "$pki_dir"
  etcd_ha_rmdir "$config_dir"
  etcd_ha_report "this program's state"
  for d in "$data_dir" "$snapshot_dir"; do
    if [ -n "$d" ] && { [ -e "$d" ] || [ -L "$d" ]; }; then
      if [ "$d" = "$data_dir" ]; then
        kept+=("$d (the data dir)")
      else
        kept+=("$d (snapshots)")
      fi
    fi
  done
  if getent passwd etcd >/dev/null; then
    kept+=("the etcd user and group (owners of the data and snapshots)")
  fi
  if [ "${#kept[@]}" -eq 0 ]; then
    kept=(nothing)
  fi
  echo "kept on this host: $(etcd_ha_join "${kept[@]}")"
}
