// Package guest is loadpool's real lab on this machine: Debian 12 guests
// that really boot under QEMU through libvirtd, for the libvirt
// provisioner's tests, the end-to-end tests and make run-real.
//
// build.sh (embedded here, and run by make guest-image) builds the image
// with mmdebstrap in about a minute and caches it under
// CacheDir()/<first 12 hex digits of the script's SHA-256>/images, so a
// changed script builds again and an unchanged one never does. The image:
// systemd, openssh-server, qemu-guest-agent, systemd-networkd (DHCP on the
// restricted user network), no SSH host keys shipped — loadpool-identity
// makes one ed25519 key at first boot (validated with ssh-keygen -y, so a
// 0-byte key left by a hard power-off is made again) and installs the
// hostname and root's authorized keys from the fw_cfg entries
// opt/loadpool/hostname and opt/loadpool/authorized_keys.
//
// Variants for the failure catalogue share the base's disk, kernel and
// initrd (symlinks) and differ only by their kernel command line file:
// Slow (a unit holds multi-user.target for SlowSeconds), NoSSH (sshd's
// unit has a condition that fails), FailedUnit (loadpool-broken.service
// exits 1: the system is degraded).
//
// Require is the gate of every test that boots guests: it skips (with the
// reason) only when the tools are missing and the test does not run as
// root; as root it starts virtlogd and libvirtd when they are not
// running, builds the image once per cache and fails when that cannot
// be done. Lab gives a test its state directory (under /var/tmp, readable
// by QEMU's user) and destroys and undefines its domains at cleanup.
package guest
