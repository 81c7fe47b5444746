#!/usr/bin/env bash
# Installs the OS packages the tests and the lab need (Debian/Ubuntu): shellcheck (script lint),
# etcd-server and etcd-client (Debian's real etcd 3.4), and for the lab's hosts openssh-server (sshd and
# sftp-server), openssh-client (ssh-keygen), sudo, iptables (partitions), python3 (the systemctl stand-in),
# iproute2 (ss), procps and util-linux (unshare, nsenter). Installs only what is missing; without root or
# apt-get it fails naming the command to run.
set -euo pipefail
need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ]; }
have shellcheck || need+=(shellcheck)
have etcd || need+=(etcd-server)
have etcdctl || need+=(etcd-client)
{ have unshare && have nsenter && have findmnt; } || need+=(util-linux)
have openssl || need+=(openssl)
{ have /usr/sbin/sshd && have /usr/lib/openssh/sftp-server; } || need+=(openssh-server)
have ssh-keygen || need+=(openssh-client)
have sudo || need+=(sudo)
have iptables || need+=(iptables)
have /usr/bin/python3 || need+=(python3)
have ss || need+=(iproute2)
have ps || need+=(procps)
if [ "${#need[@]}" -eq 0 ]; then
  echo "os deps: present (shellcheck, etcd, etcdctl, unshare, openssl, sshd, sudo, iptables, python3, ss)"
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
