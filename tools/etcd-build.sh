#!/usr/bin/env bash
# etcd-ha: builds etcd, etcdctl and etcdutl releases from the Go module proxy and packs each in the upstream
# release layout, for the program's air-gapped install path (etcd.install.method: push) and the lab.
#
#   bash tools/etcd-build.sh [RELEASE | writer | objectstore ...]        (default: 3.5 3.6)
#
# `writer` builds the lab's continuous writer (tools/lab/gowriter, on etcd's Go client) instead, and
# `objectstore` the lab's S3-compatible object store (versitygw, Apache-2.0, pinned in tools/lab/objectstore).
#
# A RELEASE is a minor line (3.5: the newest patch the Go module proxy serves) or an exact version (3.5.36).
# For each it prints one line: `<version> <tarball> <sha256>`; progress goes to stderr.
#
# Per release: a small wrapper module of ours requires go.etcd.io/etcd/{server,etcdctl,etcdutl}/v3 at that
# version (etcd's own modules point at each other with `../` replaces, so `go install pkg@version` refuses
# them; in a wrapper the versions their go.mod files name are used instead), then `go build -trimpath` with
# CGO off builds the three programs, without symbol and DWARF tables (`-ldflags="-s -w"`: a tarball of 23 MB
# instead of 45 MB, which every member copies, verifies and unpacks; stack traces keep their function names).
# Nothing of etcd's repository is used but what the proxy serves.
#
# Cached outside the repository: CACHE/etcd/<version>-<first 16 hex of this file's sha256>/ holds the
# binaries, `etcd-v<version>-linux-<arch>.tar.gz` (sorted, owner 0, mtime 0, gzip -n: reproducible) and its
# `.sha256`. CACHE is $ETCD_HA_LAB_CACHE, else ~/.cache/etcd-ha-lab. An edited recipe builds again. Builds
# of one release wait on one lock (bounded); a half-built release is never used (built under a temporary
# name, renamed when done).
set -euo pipefail

recipe="$(readlink -f "${BASH_SOURCE[0]}")"
hash="$(sha256sum "$recipe" | cut -c1-16)"
cache="${ETCD_HA_LAB_CACHE:-${HOME:-/root}/.cache/etcd-ha-lab}/etcd"
arch="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
case "$arch" in amd64 | arm64) ;; *) arch=amd64 ;; esac

fail() { echo "etcd-build: $*" >&2; exit 1; }
command -v go >/dev/null || fail "go is not on PATH: install the Go toolchain (1.25 or later; etcd 3.5.29+ and 3.6 ask for it)"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0 GOOS=linux GOARCH="$arch"

# served VERSION: true when the proxy serves all three modules at VERSION (a proxy may list a version of
# one module and refuse another's: seen for etcdctl/etcdutl 3.5.23-3.5.32 while server/v3 was served).
served() {
  local m
  for m in server etcdctl etcdutl; do
    timeout 120 go mod download -json "go.etcd.io/etcd/$m/v3@v$1" >/dev/null 2>&1 || return 1
  done
}

# latest LINE: the newest release X.Y.Z of a minor line (no pre-releases) whose three modules are served.
latest() {
  local line=$1 versions v
  versions="$(timeout 120 go list -m -versions go.etcd.io/etcd/server/v3 2>/dev/null)" || fail "cannot list go.etcd.io/etcd/server/v3 versions from the Go module proxy (go list -m -versions): is GOPROXY reachable?"
  for v in $(tr ' ' '\n' <<<"$versions" | grep -E "^v${line//./\\.}\.[0-9]+$" | sed 's/^v//' | sort -rV | head -n 10); do
    if served "$v"; then echo "$v"; return 0; fi
    echo "etcd-build: etcd $v: not every module (server, etcdctl, etcdutl) is served; trying an older patch" >&2
  done
}

# cached DIR WHAT BUILDER: unless DIR is complete, runs `BUILDER TMP` (which fills the empty dir TMP) under a
# lock (bounded) and renames TMP to DIR, so a half-built DIR is never used and concurrent callers build once.
cached() {
  local dir=$1 what=$2 builder=$3 tmp t0 lock
  [ ! -f "$dir/.done" ] || return 0
  mkdir -p "$cache"
  lock="$cache/.build-$(basename "$dir").lock"
  exec 9>"$lock"
  flock -w 1200 9 || fail "another build of $what holds $lock for more than 1200 s"
  if [ ! -f "$dir/.done" ]; then
    t0=$SECONDS
    tmp="$cache/.$(basename "$dir").tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    "$builder" "$tmp"
    : >"$tmp/.done"
    rm -rf "$dir"
    mv "$tmp" "$dir"
    echo "etcd-build: $what built in $((SECONDS - t0)) s: $dir" >&2
  fi
  exec 9>&-
}

# release_into TMP: etcd $v (the caller's) built from a wrapper module and packed in TMP.
release_into() {
  local tmp=$1 top="etcd-v$v-linux-$arch" p got
  mkdir -p "$tmp/wrapper" "$tmp/pack/$top"
  printf 'module etcd-ha.lab/etcd-build\n\ngo 1.25\n' >"$tmp/wrapper/go.mod"
  echo "etcd-build: etcd $v from the Go module proxy (go $(go env GOVERSION), $arch)" >&2
  if ! (cd "$tmp/wrapper" && timeout 600 go get -tool "go.etcd.io/etcd/server/v3@v$v" "go.etcd.io/etcd/etcdctl/v3@v$v" "go.etcd.io/etcd/etcdutl/v3@v$v") >"$tmp/build.log" 2>&1; then
    tail -n 20 "$tmp/build.log" >&2
    fail "resolving etcd $v's modules failed (go get -tool go.etcd.io/etcd/{server,etcdctl,etcdutl}/v3@v$v; log: $tmp/build.log)"
  fi
  for p in server:etcd etcdctl:etcdctl etcdutl:etcdutl; do
    if ! (cd "$tmp/wrapper" && timeout 900 go build -trimpath -ldflags="-s -w" -o "$tmp/pack/$top/${p#*:}" "go.etcd.io/etcd/${p%%:*}/v3") >>"$tmp/build.log" 2>&1; then
      tail -n 20 "$tmp/build.log" >&2
      fail "building ${p#*:} $v failed (log: $tmp/build.log)"
    fi
  done
  got="$("$tmp/pack/$top/etcd" --version | sed -n 's/^etcd Version: //p')"
  [ "$got" = "$v" ] || fail "the built etcd reports version '$got', not $v"
  printf 'etcd %s (etcd, etcdctl, etcdutl) built by etcd-ha from the Go module proxy: go build -trimpath -ldflags="-s -w", CGO off, %s.\n' "$v" "$(go env GOVERSION)" >"$tmp/pack/$top/README-etcd-ha.txt"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$tmp/pack" -cf - "$top" | gzip -n >"$tmp/$top.tar.gz"
  (cd "$tmp" && sha256sum "$top.tar.gz" >"$top.tar.gz.sha256")
  mv "$tmp/pack/$top" "$tmp/bin"
  rm -rf "$tmp/pack" "$tmp/wrapper"
}

build() { # build VERSION: prints "<version> <tarball> <sha256>"
  local v=$1 tarball
  tarball="$cache/$v-$hash/etcd-v$v-linux-$arch.tar.gz"
  cached "$cache/$v-$hash" "etcd $v" release_into
  echo "$v $tarball $(cut -d' ' -f1 "$tarball.sha256")"
}

# writer_into TMP: the lab's continuous writer (tools/lab/gowriter) on go.etcd.io/etcd/client/v3, the
# client kube-apiserver uses, at the versions its go.mod and go.sum pin.
writer_into() {
  local tmp=$1
  if ! (cd "$writer_src" && GOFLAGS=-mod=readonly timeout 900 go build -trimpath -o "$tmp/etcd-ha-writer" .) >"$tmp/build.log" 2>&1; then
    tail -n 20 "$tmp/build.log" >&2
    fail "building the writer failed (cd tools/lab/gowriter && go build; log: $tmp/build.log)"
  fi
}

build_writer() { # prints "writer <binary>"
  local writer_src h
  writer_src="$(dirname "$recipe")/lab/gowriter"
  h="$(cat "$recipe" "$writer_src/go.mod" "$writer_src/go.sum" "$writer_src/main.go" | sha256sum | cut -c1-16)"
  cached "$cache/writer-$h" "the Go writer (go.etcd.io/etcd/client/v3 $(sed -n 's|^\s*go.etcd.io/etcd/client/v3 ||p' "$writer_src/go.mod"))" writer_into
  echo "writer $cache/writer-$h/etcd-ha-writer"
}

# objectstore_into TMP: versitygw (an S3 gateway over a directory) at the version tools/lab/objectstore pins.
objectstore_into() {
  local tmp=$1
  if ! (cd "$store_src" && GOFLAGS=-mod=readonly timeout 1200 go build -trimpath -ldflags="-s -w" -o "$tmp/versitygw" github.com/versity/versitygw/cmd/versitygw) >"$tmp/build.log" 2>&1; then
    tail -n 20 "$tmp/build.log" >&2
    fail "building the object store failed (cd tools/lab/objectstore && go build github.com/versity/versitygw/cmd/versitygw; log: $tmp/build.log)"
  fi
}

build_objectstore() { # prints "objectstore <binary>"
  local store_src h
  store_src="$(dirname "$recipe")/lab/objectstore"
  h="$(cat "$recipe" "$store_src/go.mod" "$store_src/go.sum" | sha256sum | cut -c1-16)"
  cached "$cache/objectstore-$h" "the object store (versitygw $(sed -n 's|^require github.com/versity/versitygw ||p' "$store_src/go.mod"))" objectstore_into
  echo "objectstore $cache/objectstore-$h/versitygw"
}

[ "$#" -gt 0 ] || set -- 3.5 3.6
for r in "$@"; do
  if [ "$r" = writer ]; then
    build_writer
    continue
  fi
  if [ "$r" = objectstore ]; then
    build_objectstore
    continue
  fi
  if [[ $r =~ ^3\.[0-9]+$ ]]; then
    v="$(latest "$r")"
    [ -n "$v" ] || fail "the Go module proxy serves no etcd $r.x release (go list -m -versions go.etcd.io/etcd/server/v3)"
  elif [[ $r =~ ^3\.[0-9]+\.[0-9]+$ ]]; then
    v=$r
  else
    fail "a release is a minor line (3.5), a version (3.5.36), 'writer' or 'objectstore', got '$r'"
  fi
  build "$v"
done
