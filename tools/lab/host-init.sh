#!/bin/bash
# etcd-ha lab: the first program of one lab host. `lab up` starts it under
#   unshare --mount --uts --propagation private
# so every mount below is private to this host. It builds what a fresh cloud-init VM would have, then
# execs the host's own sshd (which keeps the namespace alive; every SSH session, script, systemctl
# stand-in and etcd process of this host descends from it):
#   - /etc: an overlay on the machine's /etc. The upper layer holds this host's passwd/group/shadow
#     (without the machine's own etcd user, as on a fresh VM), hostname, hosts, sudoers and a login.defs
#     whose system uid range is this host's own, so each host's `etcd` user gets a distinct uid (the
#     partition rules match on it).
#   - fresh directories for what the program writes, on the host's own tmpfs "disk": /etc/systemd/system,
#     /usr/local/bin, /usr/local/sbin, /var/lib/etcd-ha, /var/tmp, /var/backups, /home; /var/lib/etcd on
#     a tmpfs of its own; a private /run (with /run/sshd, and /run/lock as on Ubuntu; the systemctl stand-in keeps its state there).
#   - the admin user (passwordless sudo, the lab's public key), like cloud-init's default user.
#   - the systemctl/journalctl stand-in in /usr/local/sbin, and over /usr/bin/systemctl and
#     /usr/bin/journalctl when the machine has them.
# Arguments: host dir, host name, address, admin user, index (0-based), stand-in script, public key file.
set -euo pipefail
dir=$1 name=$2 address=$3 admin=$4 index=$5 standin=$6 pubkey=$7

fail() { echo "lab host $name: $*" >&2; exit 90; }
[ "$(readlink /proc/self/ns/mnt)" != "$(readlink /proc/1/ns/mnt)" ] || fail "not in a private mount namespace"

hostname "$name"

# The host's own "disk": a tmpfs private to this namespace (one shared machine disk would serialize every
# host's writes; each VM has a disk of its own). It vanishes with the namespace.
mkdir -p "$dir/fs"
mount -t tmpfs -o mode=0700,size=2g "etcd-ha-lab-$name" "$dir/fs"

# /etc overlay with this host's account databases.
up="$dir/fs/etc-upper"
mkdir -p "$up/sudoers.d" "$dir/fs/etc-work"
for f in passwd group shadow gshadow; do
  grep -v "^etcd:" "/etc/$f" > "$up/$f" || true
done
chmod 0644 "$up/passwd" "$up/group"
chmod 0640 "$up/shadow" "$up/gshadow"
chgrp shadow "$up/shadow" "$up/gshadow" 2>/dev/null || true
lo=$((900 + 10 * index)) hi=$((909 + 10 * index))
sed -E -e '/^#?[[:space:]]*SYS_(UID|GID)_(MIN|MAX)[[:space:]]/d' /etc/login.defs > "$up/login.defs"
printf 'SYS_UID_MIN %s\nSYS_UID_MAX %s\nSYS_GID_MIN %s\nSYS_GID_MAX %s\n' "$lo" "$hi" "$lo" "$hi" >> "$up/login.defs"
echo "$name" > "$up/hostname"
{ cat /etc/hosts; printf '%s %s\n' "$address" "$name"; } > "$up/hosts"
mount -t overlay "etcd-ha-lab-$name" -o "lowerdir=/etc,upperdir=$up,workdir=$dir/fs/etc-work" /etc
[ "$(findmnt -n -o FSTYPE /etc)" = overlay ] || fail "/etc is not the overlay"

bindfresh() { # bindfresh <path>: an empty directory of this host's over <path>
  local src="$dir/fs$1"
  mkdir -p "$src" "$1"
  mount --bind "$src" "$1"
}
mkdir -p /etc/systemd/system
for p in /etc/systemd/system /usr/local/bin /usr/local/sbin /var/lib/etcd-ha /var/tmp /var/backups /home; do
  bindfresh "$p"
done
chmod 1777 /var/tmp
mkdir -p /var/lib/etcd
mount -t tmpfs -o mode=0755,size=1g "etcd-ha-lab-$name" /var/lib/etcd
mount -t tmpfs -o mode=0755 "etcd-ha-lab-$name" /run
mkdir -p /run/sshd
chmod 0755 /run/sshd
# What systemd-tmpfiles creates on Ubuntu (tmpfiles.d/legacy.conf): /run/lock, 1777.
mkdir -p /run/lock
chmod 1777 /run/lock

# A fresh VM has no etcd: hide the machine's Debian etcd (its binaries and its packaged unit) inside the host.
for b in /usr/bin/etcd /usr/bin/etcdctl; do
  if [ -e "$b" ]; then mount --bind /dev/null "$b"; fi
done
if [ -d /lib/systemd/system ]; then
  mkdir -p "$dir/fs/lib-systemd-system"
  mount --bind "$dir/fs/lib-systemd-system" /lib/systemd/system
fi

# The systemctl stand-in.
for t in systemctl journalctl; do
  install -m 0755 "$standin" "/usr/local/sbin/$t"
  if [ -e "/usr/bin/$t" ]; then mount --bind "/usr/local/sbin/$t" "/usr/bin/$t"; fi
done

# The admin user, as cloud-init creates it: a home, the key, passwordless sudo, no password.
useradd --create-home --shell /bin/bash --user-group --comment "lab admin" "$admin"
usermod -p '*' "$admin"
install -d -m 0700 -o "$admin" -g "$admin" "/home/$admin/.ssh"
install -m 0600 -o "$admin" -g "$admin" "$pubkey" "/home/$admin/.ssh/authorized_keys"
printf '%s ALL=(ALL) NOPASSWD:ALL\n' "$admin" > "/etc/sudoers.d/90-etcd-ha-lab"
chmod 0440 "/etc/sudoers.d/90-etcd-ha-lab"

echo "lab host $name ready at $address (pid $$); starting sshd"
exec /usr/sbin/sshd -D -e -f "$dir/sshd/sshd_config"
