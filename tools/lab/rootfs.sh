#!/usr/bin/env bash
# etcd-ha lab: builds the lab hosts' root file system (once) and prints its path.
#
#   bash tools/lab/rootfs.sh [CACHE_DIR]      (default $ETCD_HA_LAB_CACHE, else ~/.cache/etcd-ha-lab)
#
# The result is a Debian minbase tree (the machine's own release, from the mirror apt already uses) with
# real systemd as init, dbus, OpenSSH and sudo: what an Ubuntu cloud image is to a Proxmox VM. Every lab
# host boots it read-only under systemd-nspawn with an overlay of its own (tools/lab/host-run.sh).
#
# It is cached outside the repository as CACHE_DIR/rootfs-<first 16 hex of this file's sha256>: editing
# this recipe builds a new tree; an unchanged recipe reuses the old one. Concurrent callers wait on one
# lock (bounded), and a half-built tree is never used (built under a temporary name, renamed when done).
#
# What the tree is made to look like (a cloud image after cloud-init, minus what is per host):
#   - an empty /etc/machine-id (each host writes its own), no /etc/hostname, no SSH host keys: a oneshot
#     (etcd-ha-lab-hostkeys.service) creates a host's own keys on its first boot, before sshd;
#   - the default user `ubuntu` (bash, no password, passwordless sudo in /etc/sudoers.d/90-cloud-init-users,
#     as cloud-init writes it); its authorized_keys arrive per host;
#   - sshd key-only (no passwords, no root login), Debian's AcceptEnv LANG LC_* kept;
#   - no background apt or e2scrub timers (a lab host must not reach the network).
set -euo pipefail

recipe="$(readlink -f "${BASH_SOURCE[0]}")"
cache="${1:-${ETCD_HA_LAB_CACHE:-${HOME:-/root}/.cache/etcd-ha-lab}}"
hash="$(sha256sum "$recipe" | cut -c1-16)"
final="$cache/rootfs-$hash"
ready="$final/.etcd-ha-lab-rootfs"

fail() { echo "lab rootfs: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "building the lab rootfs needs root"
if [ -f "$ready" ]; then echo "$final"; exit 0; fi

for c in debootstrap systemd-nspawn; do
  command -v "$c" >/dev/null || fail "$c is missing: apt-get install -y debootstrap systemd-container (or: bash tools/install-os-deps.sh)"
done

mkdir -p "$cache"
exec 9>"$cache/.build.lock"
# One build at a time; a second caller waits for the first (bounded) and then finds the tree ready.
flock -w 900 9 || fail "another build of $final holds $cache/.build.lock for more than 900 s"
if [ -f "$ready" ]; then echo "$final"; exit 0; fi

suite="$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release | tr -d '"')"
[ -n "$suite" ] || fail "/etc/os-release names no VERSION_CODENAME (the Debian release to bootstrap)"
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] || continue
  mirror="$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")"
  [ -n "$mirror" ] && break
done
if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
  mirror="$(awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)"
fi
[ -n "$mirror" ] || fail "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list"

tmp="$cache/.rootfs-$hash.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
t0=$SECONDS
echo "lab rootfs: debootstrap $suite (minbase) into $tmp (about a minute)" >&2
packages=systemd,systemd-sysv,dbus,openssh-server,sudo,iproute2,procps,openssl,curl,ca-certificates
if ! debootstrap --variant=minbase --include="$packages" "$suite" "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1; then
  tail -n 20 "$cache/debootstrap.log" >&2
  fail "debootstrap failed (log: $cache/debootstrap.log)"
fi

r="$tmp"
# Per-host identity is written by each host (machine-id, hostname, SSH host keys).
: >"$r/etc/machine-id"
mkdir -p "$r/var/lib/dbus"
ln -sf /etc/machine-id "$r/var/lib/dbus/machine-id"
rm -f "$r/etc/hostname" "$r"/etc/ssh/ssh_host_*
cat >"$r/etc/systemd/system/etcd-ha-lab-hostkeys.service" <<'EOF'
# etcd-ha lab: this host's own SSH host keys on its first boot (cloud-init does this on a VM).
[Unit]
Description=etcd-ha lab: generate SSH host keys
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
EOF
mkdir -p "$r/etc/systemd/system/ssh.service.wants"
ln -sf /etc/systemd/system/etcd-ha-lab-hostkeys.service "$r/etc/systemd/system/ssh.service.wants/etcd-ha-lab-hostkeys.service"

# sshd: key only, as cloud-init configures an image (ssh_pwauth: false, disable_root: true).
cat >"$r/etc/ssh/sshd_config.d/50-etcd-ha-lab.conf" <<'EOF'
# etcd-ha lab host: key-only SSH, like a cloud-init VM. ListenAddress is per host (60-listen.conf).
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
EOF

# The system locale, as on an Ubuntu image (sshd's pam_env reads it at every login).
echo 'LANG=C.UTF-8' >"$r/etc/default/locale"

# The default user, as cloud-init creates it on an Ubuntu image.
chroot "$r" useradd --create-home --shell /bin/bash --user-group --comment "Ubuntu" ubuntu
chroot "$r" usermod -p '*' ubuntu
printf '# Created by cloud-init (etcd-ha lab)\nubuntu ALL=(ALL) NOPASSWD:ALL\n' >"$r/etc/sudoers.d/90-cloud-init-users"
chmod 0440 "$r/etc/sudoers.d/90-cloud-init-users"

# Nothing in the background that would reach the network or scrub disks.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer; do
  ln -sf /dev/null "$r/etc/systemd/system/$u"
done

# No leftovers of the build: package caches, logs, a random seed.
chroot "$r" apt-get clean
rm -rf "$r"/var/lib/apt/lists/* "$r"/var/log/journal/* "$r/var/lib/systemd/random-seed" "$r"/var/cache/debconf/*-old
find "$r/var/log" -type f -exec truncate -s 0 {} +

printf 'recipe %s\nsuite %s\nbuilt %s\n' "$hash" "$suite" "$(date -u +%FT%TZ)" >"$r/.etcd-ha-lab-rootfs"
mv "$tmp" "$final"
trap - EXIT
echo "lab rootfs: $final ready in $((SECONDS - t0)) s ($(du -sm "$final" | cut -f1) MB)" >&2
echo "$final"
