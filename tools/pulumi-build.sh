#!/usr/bin/env bash
# etcd-ha: the real Pulumi engine for the lab and the offline preview: the CLI, the Node.js language host and
# the four resource plugins the program uses, each built from Go sources once and cached outside the repository.
#
#   bash tools/pulumi-build.sh            prints `bin <dir>` and `home <PULUMI_HOME>`; progress goes to stderr
#
# Where a `pulumi` CLI is already on PATH (a user's machine with internet), it is used as it is: nothing is
# built, the lab uses the user's own Pulumi home and the engine fetches plugins as it always does. Set
# ETCD_HA_PULUMI=build to build anyway (what CI and the tests do, so a result never depends on a download).
#
# What is built (versions are what the npm SDKs of package.json ask for):
#   pulumi                    github.com/pulumi/pulumi/pkg/v3/cmd/pulumi v3.248.0, from the Go module proxy
#   pulumi-language-nodejs    the language host of pulumi v3.248.0 (placed beside the CLI, where it looks)
#   pulumi-resource-command   1.2.1     pulumi-resource-tls 5.6.1
#   pulumi-resource-random    4.21.2    pulumi-resource-proxmoxve 8.6.0
# The language host and the plugins are not served by the Go module proxy; their sources (every dependency
# is served) are read from THIRD_PARTY: $ETCD_HA_THIRD_PARTY, else ../shared/third_party beside the
# repository. Each bridged plugin gets its version stamp (without it the plugin panics at start).
#
# Cached as CACHE/pulumi/<first 16 hex of sha256 of this recipe and the sources' go.mod/go.sum>/:
#   bin/      the CLI and the language host (safe on PATH)
#   plugins/  the plugin binaries (never on PATH: a pulumi-resource-* binary on PATH overrides the installed
#             plugin)
#   home/     a Pulumi home of the lab's own, with the four plugins installed from plugins/ (`pulumi plugin
#             install resource NAME VERSION --file BIN`: no download)
# CACHE is $ETCD_HA_LAB_CACHE, else ~/.cache/etcd-ha-lab. A cold build takes about 15 min on 2 cores (the CLI
# about 8); a warm call returns at once. Concurrent callers wait on one lock (bounded); a half-built set is
# never used (built under a temporary name, renamed when done).
set -euo pipefail

recipe="$(readlink -f "${BASH_SOURCE[0]}")"
repo="$(cd "$(dirname "$recipe")/.." && pwd)"
third="${ETCD_HA_THIRD_PARTY:-$repo/../shared/third_party}"
cache="${ETCD_HA_LAB_CACHE:-${HOME:-/root}/.cache/etcd-ha-lab}/pulumi"

fail() { echo "pulumi-build: $*" >&2; exit 1; }

CLI_VERSION=3.248.0
# name version go-package-dir(relative to THIRD_PARTY) main-package version-variable
PLUGINS=(
  "command 1.2.1 pulumi-command/provider ./cmd/pulumi-resource-command github.com/pulumi/pulumi-command/provider/pkg/version.Version"
  "tls 5.6.1 pulumi-tls/provider ./cmd/pulumi-resource-tls github.com/pulumi/pulumi-tls/provider/v5/pkg/version.Version"
  "random 4.21.2 pulumi-random/provider ./cmd/pulumi-resource-random github.com/pulumi/pulumi-random/provider/v4/pkg/version.Version"
  "proxmoxve 8.6.0 pulumi-proxmoxve/provider ./cmd/pulumi-resource-proxmoxve github.com/muhlba91/pulumi-proxmoxve/provider/pkg/version.Version"
)
LANGHOST_DIR=pulumi-language-nodejs/sdk/nodejs/cmd/pulumi-language-nodejs

if [ "${ETCD_HA_PULUMI:-}" != build ] && command -v pulumi >/dev/null 2>&1; then
  echo "pulumi-build: using the installed $(command -v pulumi) ($(pulumi version 2>/dev/null || echo '?')); plugins come as the engine fetches them" >&2
  echo "bin $(dirname "$(readlink -f "$(command -v pulumi)")")"
  echo "home ${PULUMI_HOME:-${HOME:-/root}/.pulumi}"
  exit 0
fi

command -v go >/dev/null || fail "go is not on PATH: install the Go toolchain (1.26 or later) to build the Pulumi engine, or install the Pulumi CLI (then it is used as it is)"
[ -d "$third/pulumi-cli" ] || fail "the engine's sources are missing: $third/pulumi-cli (set ETCD_HA_THIRD_PARTY to the third_party folder, or install the Pulumi CLI: then it is used as it is)"

hash="$( { cat "$recipe"; cd "$third" && find . -name go.mod -o -name go.sum -o -name version.go | LC_ALL=C sort | xargs sha256sum; } | sha256sum | cut -c1-16)"
final="$cache/$hash"

print() { echo "bin $final/bin"; echo "home $final/home"; }
if [ -f "$final/.done" ]; then print; exit 0; fi

export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -trimpath"
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock -w 2400 9 || fail "another build holds $cache/.build.lock for more than 2400 s"
if [ -f "$final/.done" ]; then print; exit 0; fi

tmp="$cache/.$hash.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/bin" "$tmp/plugins" "$tmp/home"
log="$tmp/build.log"
t_all=$SECONDS

# gobuild WHAT DIR OUT PKG LDFLAGS: go build in DIR (read-only is fine: go.mod and go.sum are complete).
gobuild() {
  local what=$1 dir=$2 out=$3 pkg=$4 ldflags=$5 t0=$SECONDS
  echo "pulumi-build: building $what (go $(go env GOVERSION))" >&2
  if ! (cd "$dir" && timeout 1800 go build -tags osusergo,grpcnotrace -ldflags "-s -w $ldflags" -o "$out" "$pkg") >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    fail "building $what failed (cd $dir && go build $pkg; log: $log)"
  fi
  echo "pulumi-build: $what built in $((SECONDS - t0)) s" >&2
}

sdkver="-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$CLI_VERSION"
gobuild "pulumi $CLI_VERSION" "$third/pulumi-cli" "$tmp/bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi "$sdkver"
gobuild "pulumi-language-nodejs $CLI_VERSION" "$third/$LANGHOST_DIR" "$tmp/bin/pulumi-language-nodejs" . "$sdkver"
got="$("$tmp/bin/pulumi" version)"
[ "$got" = "v$CLI_VERSION" ] || fail "the built CLI reports version '$got', not v$CLI_VERSION"

for p in "${PLUGINS[@]}"; do
  read -r name version dir pkg var <<<"$p"
  gobuild "pulumi-resource-$name $version" "$third/$dir" "$tmp/plugins/pulumi-resource-$name" "$pkg" "-X $var=$version"
  if ! PULUMI_HOME="$tmp/home" PULUMI_SKIP_UPDATE_CHECK=true "$tmp/bin/pulumi" plugin install resource "$name" "$version" \
    --file "$tmp/plugins/pulumi-resource-$name" >>"$log" 2>&1; then
    tail -n 20 "$log" >&2
    fail "installing the $name plugin into $tmp/home failed (log: $log)"
  fi
done

: >"$tmp/.done"
rm -rf "$final"
mv "$tmp" "$final"
echo "pulumi-build: engine and plugins built in $((SECONDS - t_all)) s: $final" >&2
print
