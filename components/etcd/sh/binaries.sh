# shellcheck shell=bash disable=SC2154 # the parameters are the caller's
# etcd-ha binaries step: stages a verified etcd release for the start step to install in the member's turn.
# Sourced after a parameter block rendered from the member's plan (scripts.ts); functions only. Parameters:
#   want release_id sha256 arch        the release: version, "<version> <sha256>", tarball sha256, architecture
#   bins                               the binaries it installs (space-separated: etcd etcdctl [etcdutl])
#   tarball tarball_dir                the tarball's file name and its top directory
#   source_kind source                 "download" and a URL, or "push" and the path the tarball was pushed to
#   staged releases_dir release_marker bin_dir
#                                      where it is staged, the staging root, the installed-release marker, BIN_DIR

# etcd_ha_reports DIR: the binaries in DIR report version $want.
etcd_ha_reports() {
  local out b
  for b in $bins; do
    [ -x "$1/$b" ] || return 1
  done
  # Output captured first: `cmd | grep -q` under pipefail fails when grep exits before cmd finishes writing.
  out=$("$1/etcd" --version 2>/dev/null) || return 1
  grep -qx "etcd Version: $want" <<<"$out" || return 1
  out=$("$1/etcdctl" version 2>/dev/null) || return 1
  grep -qx "etcdctl version: $want" <<<"$out" || return 1
  if [[ " $bins " == *" etcdutl "* ]]; then
    out=$("$1/etcdutl" version 2>/dev/null) || return 1
    grep -qx "etcdutl version: $want" <<<"$out" || return 1
  fi
}

# etcd_ha_binaries: skips when the release is installed or staged; otherwise fetches the tarball, checks its
# sha256 before anything is unpacked, and stages the binaries in a root-only dir.
etcd_ha_binaries() {
  local src b members=()
  if [ "$(cat "$release_marker" 2>/dev/null || true)" = "$release_id" ] && etcd_ha_reports "$bin_dir"; then
    echo "etcd $want (this release) already installed in $bin_dir"
    exit 0
  fi
  if [ "$(cat "$staged/release" 2>/dev/null || true)" = "$release_id" ] && etcd_ha_reports "$staged"; then
    echo "etcd $want already staged in $staged"
    exit 0
  fi
  install -d -m 0700 -o root -g root "$releases_dir"
  rm -rf "$staged.new"
  install -d -m 0700 -o root -g root "$staged.new"
  trap 'rm -rf "$staged.new"' EXIT
  if [ "$source_kind" = download ]; then
    if ! command -v curl >/dev/null; then
      echo "curl is needed to download etcd: install curl, or set etcd-ha:etcd.install.method to push" >&2
      exit 1
    fi
    # Downloaded into the staging dir of its own (root-only), removed with it.
    src="$staged.new/$tarball"
    curl --fail --silent --show-error --location --retry 3 --connect-timeout 20 --max-time 900 -o "$src" "$source"
  else
    src=$source
    if [ ! -f "$src" ]; then
      echo "$src is missing: the tarball push step should have copied it" >&2
      exit 1
    fi
  fi
  if ! printf '%s  %s\n' "$sha256" "$src" | sha256sum --check --status; then
    echo "sha256 mismatch for $tarball: expected $sha256, got $(sha256sum "$src" | cut -d' ' -f1); refusing to install" >&2
    exit 1
  fi
  for b in $bins; do
    members+=("$tarball_dir/$b")
  done
  # Straight into the staging dir: only the named binaries, root-owned, no copy in between.
  tar -xzf "$src" -C "$staged.new" --no-same-owner --no-same-permissions --strip-components=1 "${members[@]}"
  [ "$source_kind" != download ] || rm -f "$src"
  for b in $bins; do
    chown root:root "$staged.new/$b"
    chmod 0755 "$staged.new/$b"
  done
  if ! etcd_ha_reports "$staged.new"; then
    echo "the binaries in $tarball do not report version $want" >&2
    exit 1
  fi
  printf '%s\n' "$release_id" > "$staged.new/release"
  rm -rf "$staged"
  mv -T "$staged.new" "$staged"
  trap - EXIT
  echo "staged etcd $want ($arch) from $tarball, sha256 verified, in $staged: each member's start step installs it in its turn"
}
