// Package sshd runs Debian's real OpenSSH server (/usr/sbin/sshd) as a
// child process of a test, on a random loopback port, so that tests can
// talk to a real SSH server: real key exchange, public key authentication,
// host keys, a real login shell, exit statuses, stderr.
//
// Start(tb, Options) returns a listening *Server and registers its Stop
// with tb.Cleanup. Everything it writes lives in tb.TempDir(): the host
// key and the authorized client key (both ed25519, made in Go), the
// config (passed with -f, so nothing under /etc/ssh is read or changed)
// and sshd's pid file.
//
// Isolation: sshd runs as root INSIDE new UTS and mount namespaces
// (`unshare --uts --mount --propagation private`, which execs in place, so
// the child's pid is the listener's) where
//   - /etc is a private copy of the host's /etc, on a tmpfs of the mount
//     namespace, bind-mounted over /etc: whatever a session writes to /etc
//     (hostname, /etc/loadpool-image) lands in the copy, which goes away
//     with the server;
//   - `hostname NAME` changes only the namespace's hostname;
//   - root's home directory (/root) is a bind-mounted clean HOME: root's
//     own ~/.bashrc can take hundreds of milliseconds per command, and
//     must not run anyway;
//   - /run is a private tmpfs holding the privilege separation directory
//     /run/sshd, which also hides the host's D-Bus and systemd sockets, so
//     hostnamectl and systemctl cannot reach the host's services.
//
// The machine the tests run on is not changed: no mount, file or hostname
// of the host's namespaces is touched. Server.Hostname, Server.ReadFile and
// Server.EtcDir show the namespace's view (nsenter on the listener's pid,
// /proc/<pid>/root) while the server runs.
//
// systemd: PID 1 of a test machine (a container) is usually not systemd,
// so `systemctl is-system-running` says "offline". Options.SystemState
// puts a stand-in systemctl first in root's PATH for SSH sessions
// (PermitUserEnvironment PATH + ~/.ssh/environment in the private HOME)
// that answers is-system-running with that word and lists no failed units.
// It is the one simulated part; sshd, the shell, hostname and files are
// real.
//
// Requirements: /usr/sbin/sshd (Debian's openssh-server), unshare and
// nsenter (util-linux), euid 0 with the right to create namespaces
// (CAP_SYS_ADMIN). Start skips the test when sshd is missing or the test
// does not run as root, and fails it, saying why, when the namespaces
// cannot be made.
//
// Stop sends SIGTERM to the per-connection sshd processes and their
// descendants (each sits in its own session, so killing the listener
// alone would leave them running), then to the listener, and waits for
// it; it is idempotent and safe to call before the cleanup runs, e.g. to
// restart a server on the same port with a new host key
// (Options.Port).
package sshd
