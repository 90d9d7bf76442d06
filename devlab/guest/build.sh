#!/usr/bin/env bash
# Builds the Debian 12 guest image loadpool's real lab boots (see doc.go),
# and its failure-catalogue variants, into CACHE/<hash of this script>/images:
#
#   debian12/             disk.qcow2 vmlinuz initrd.img cmdline   the base
#   debian12-slow/        a unit holds multi-user.target for 25 s   (loadpool.slow=25)
#   debian12-nossh/       sshd never starts                        (loadpool.variant=nossh)
#   debian12-failedunit/  loadpool-broken.service fails            (loadpool.variant=failedunit)
#
# A variant is the base's files (symlinks) and its own kernel command line:
# one image is built, never four. Nothing is built when the hash's
# directory is complete. Needs root, mmdebstrap, e2fsprogs, qemu-utils and
# the Debian archive.
#
# Usage: build.sh [CACHE]   (default /var/cache/loadpool/guest); prints the images directory.
set -euo pipefail

# customize ROOT: everything the image holds beyond its packages.
customize() {
  local r=$1
  echo lab > "$r/etc/hostname"
  : > "$r/etc/machine-id"
  rm -f "$r"/etc/ssh/ssh_host_*
  echo 'LABEL=root / ext4 defaults 0 0' > "$r/etc/fstab"
  cat > "$r/etc/systemd/network/50-dhcp.network" <<'N'
[Match]
Name=en* eth*
[Network]
DHCP=ipv4
N
  cat > "$r/etc/ssh/sshd_config.d/loadpool.conf" <<'N'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
N
  # First boot identity: hostname and authorized keys from fw_cfg, one
  # ed25519 host key made here and validated (a 0-byte key left by a hard
  # power-off is made again).
  cat > "$r/usr/local/sbin/loadpool-identity" <<'N'
#!/bin/sh
set -u
modprobe qemu_fw_cfg 2>/dev/null
modprobe virtio_rng 2>/dev/null # ssh-keygen waits for the kernel's entropy
fw=/sys/firmware/qemu_fw_cfg/by_name/opt/loadpool
if [ -r "$fw/hostname/raw" ]; then
  h=$(cat "$fw/hostname/raw")
  [ -n "$h" ] && { echo "$h" > /etc/hostname; hostname "$h"; }
fi
if [ -r "$fw/authorized_keys/raw" ]; then
  install -d -m 0700 /root/.ssh
  cat "$fw/authorized_keys/raw" > /root/.ssh/authorized_keys
  chmod 0600 /root/.ssh/authorized_keys
fi
k=/etc/ssh/ssh_host_ed25519_key
if ! ssh-keygen -y -f "$k" >/dev/null 2>&1; then
  rm -f "$k" "$k.pub"
  ssh-keygen -q -t ed25519 -N '' -C "$(hostname)" -f "$k"
  sync
fi
exit 0
N
  # Failure-catalogue variants, chosen on the kernel command line.
  cat > "$r/usr/local/sbin/loadpool-slow" <<'N'
#!/bin/sh
for w in $(cat /proc/cmdline); do
  case $w in loadpool.slow=*) exec sleep "${w#loadpool.slow=}";; esac
done
N
  chmod 0755 "$r/usr/local/sbin/loadpool-identity" "$r/usr/local/sbin/loadpool-slow"
  cat > "$r/etc/systemd/system/loadpool-identity.service" <<'N'
[Unit]
Description=loadpool identity from fw_cfg (hostname, authorized keys, host key)
Before=ssh.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/loadpool-identity
[Install]
WantedBy=multi-user.target
N
  cat > "$r/etc/systemd/system/loadpool-slow.service" <<'N'
[Unit]
Description=loadpool slow-boot variant: holds multi-user.target (kernel loadpool.slow=SECONDS)
ConditionKernelCommandLine=loadpool.slow
Before=multi-user.target
[Service]
Type=oneshot
RemainAfterExit=yes
TimeoutStartSec=infinity
ExecStart=/usr/local/sbin/loadpool-slow
[Install]
WantedBy=multi-user.target
N
  cat > "$r/etc/systemd/system/loadpool-broken.service" <<'N'
[Unit]
Description=loadpool failed-unit variant (kernel loadpool.variant=failedunit)
ConditionKernelCommandLine=loadpool.variant=failedunit
[Service]
Type=oneshot
ExecStart=/bin/false
[Install]
WantedBy=multi-user.target
N
  mkdir -p "$r/etc/systemd/system/ssh.service.d"
  cat > "$r/etc/systemd/system/ssh.service.d/loadpool.conf" <<'N'
[Unit]
# The nossh variant: sshd never starts.
ConditionKernelCommandLine=!loadpool.variant=nossh
N
  chroot "$r" systemctl enable -q systemd-networkd loadpool-identity loadpool-slow loadpool-broken ssh qemu-guest-agent 2>/dev/null || true
  chroot "$r" systemctl mask -q systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer e2scrub_reap.service
  rm -f "$r"/etc/ssh/ssh_host_*
}
self=$(readlink -f "$0")
if [ "${1:-}" = --customize ]; then customize "$2"; exit 0; fi
cache=${1:-/var/cache/loadpool/guest}
hash=$(sha256sum "$0" | cut -c1-12)
out=$cache/$hash
if [ -f "$out/images/debian12/disk.qcow2" ]; then echo "$out/images"; exit 0; fi
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9 # one build at a time (test packages run in parallel); then look again
if [ -f "$out/images/debian12/disk.qcow2" ]; then echo "$out/images"; exit 0; fi
for tool in mmdebstrap mkfs.ext4 qemu-img; do
  command -v "$tool" >/dev/null || { echo "build.sh: $tool is missing: apt-get install --no-install-recommends mmdebstrap e2fsprogs qemu-utils" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "build.sh: needs root (mmdebstrap --mode=root)" >&2; exit 1; }
mkdir -p "$cache"
chmod 0755 "$cache"
work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/root
mirror=${LOADPOOL_DEBIAN_MIRROR:-http://deb.debian.org/debian}

mmdebstrap --variant=apt --mode=root --quiet \
  --include=systemd-sysv,udev,dbus,openssh-server,linux-image-cloud-amd64,iproute2,qemu-guest-agent,procps,kmod,e2fsprogs \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --customize-hook="bash '$self' --customize \"\$1\"" \
  bookworm "$root" "$mirror" \
  < /dev/null 2>&1 | grep -v '^I: ' >&2 || true
[ -x "$root/usr/sbin/sshd" ] || { echo "build.sh: mmdebstrap did not produce a root tree" >&2; exit 1; }

mkdir -p "$work/images/debian12"
img=$work/images/debian12
cp "$root"/boot/vmlinuz-* "$img/vmlinuz"
cp "$root"/boot/initrd.img-* "$img/initrd.img"
chmod 0644 "$img/vmlinuz" "$img/initrd.img"
truncate -s 2G "$work/disk.raw"
mkfs.ext4 -q -F -L root -d "$root" "$work/disk.raw"
qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$img/disk.qcow2"
chmod 0644 "$img/disk.qcow2"
base="root=/dev/vda rw console=ttyS0 loglevel=4 systemd.show_status=1 random.trust_cpu=on"
echo "$base" > "$img/cmdline"
variant() { # name, extra kernel arguments
  mkdir "$work/images/$1"
  for f in disk.qcow2 vmlinuz initrd.img; do ln -s ../debian12/$f "$work/images/$1/$f"; done
  echo "$base $2" > "$work/images/$1/cmdline"
}
variant debian12-slow loadpool.slow=25
variant debian12-nossh loadpool.variant=nossh
variant debian12-failedunit loadpool.variant=failedunit
rm -rf "$root" "$work/disk.raw"
chmod -R a+rX "$work/images"
rm -rf "$out"
mkdir -p "$out"
mv "$work/images" "$out/images"
chmod 0755 "$out"
# Images of other versions of this script are not used any more.
for old in "$cache"/*; do
  case ${old##*/} in
    "$hash") ;;
    [0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]) rm -rf "$old" ;;
    build-*.sh) [ "${old##*/}" = "build-$hash.sh" ] || rm -f "$old" ;;
  esac
done
echo "$out/images"
