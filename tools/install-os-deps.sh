#!/usr/bin/env bash
# Installs the OS packages the tests need (Debian/Ubuntu): shellcheck (script lint), etcd-server and
# etcd-client (Debian's real etcd 3.4: flag checks now, the lab later). Installs only what is missing;
# without root or apt-get it fails naming the command to run.
set -euo pipefail
need=()
command -v shellcheck >/dev/null || need+=(shellcheck)
command -v etcd >/dev/null || need+=(etcd-server)
command -v etcdctl >/dev/null || need+=(etcd-client)
command -v unshare >/dev/null || need+=(util-linux)
command -v openssl >/dev/null || need+=(openssl)
if [ "${#need[@]}" -eq 0 ]; then
  echo "os deps: present (shellcheck, etcd, etcdctl, unshare, openssl)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "missing OS packages: ${need[*]}; install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "os deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${need[@]}"
