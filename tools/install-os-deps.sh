#!/usr/bin/env bash
# Installs the OS packages the tests and the lab need (Debian/Ubuntu): shellcheck (script lint),
# etcd-server and etcd-client (Debian's real etcd 3.4: the lab packs it for its hosts, the tests use etcdctl),
# systemd-container (systemd-nspawn: every lab host is a container with real systemd) and debootstrap (builds
# the hosts' root file system, tools/lab/rootfs.sh), openssh-client (ssh-keygen), iptables (partitions),
# iproute2 (ss), procps, util-linux (unshare, nsenter, findmnt), openssl. Installs only what is missing;
# without root or apt-get it fails naming the command to run.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ]; }
have shellcheck || need+=(shellcheck)
have etcd || need+=(etcd-server)
have etcdctl || need+=(etcd-client)
have systemd-nspawn || need+=(systemd-container)
{ have systemd-analyze && have systemd-id128; } || need+=(systemd)
have debootstrap || need+=(debootstrap)
{ have unshare && have nsenter && have findmnt; } || need+=(util-linux)
have openssl || need+=(openssl)
have ssh-keygen || need+=(openssh-client)
have iptables || need+=(iptables)
have ss || need+=(iproute2)
have ps || need+=(procps)
if [ "${#need[@]}" -eq 0 ]; then
  echo "os deps: present (shellcheck, etcd, etcdctl, systemd-nspawn, debootstrap, unshare, openssl, ssh-keygen, iptables, ss)"
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
