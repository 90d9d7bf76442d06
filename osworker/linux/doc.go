// Package linux is the OS module of family "linux": after a load it waits
// for SSH (osworker.WaitForAnswer), for systemd to finish booting
// (`systemctl is-system-running --wait`, bounded by `timeout`; running
// and degraded are accepted, a degraded system's failed units are named in
// the detail), for cloud-init when it is installed (`cloud-init status
// --wait --format json`), then sets the hostname to the computer's name
// and records the image in /etc/loadpool-image (what reload if-needed
// reads back). Configuration is idempotent: values already set are not
// written again.
//
// Commands run as the SSH user, which must be root (or a user allowed to
// run hostnamectl and write /etc). Every interpolated value is
// single-quoted (Quote). The module never imports x/crypto/ssh.
package linux
