// Package control is how an OS module reaches a computer: run a command,
// read its output and exit status. The modules (osworker/linux,
// osworker/windows) see only Conn and Dialer; SSH over
// golang.org/x/crypto/ssh is the first implementation (SSHDialer), and the
// interfaces leave room for others (VMware guest operations, WinRM).
//
// # Contract
//
//   - Conn.Run blocks until the command ends, the connection breaks or ctx
//     ends (the session is then closed). A non-zero exit status is not an
//     error: it is Output.Exit. Run's error means the command could not be
//     run or the connection broke.
//   - Dial has a deadline that covers the TCP connect AND the SSH
//     handshake (SSHConfig.Timeout, or ctx's deadline when sooner).
//   - Errors are classified here, in one place: a computer that is not
//     answering yet (connection refused, timeout, EOF, reset) wraps
//     ErrNotAnswering so a wait loop keeps polling; authentication refused
//     and a host key mismatch are wrapped with outcome.Permanent (the
//     step answers fail); a *HostKeyMismatchError names the computer and
//     both SHA256 fingerprints.
//   - Host keys are verified, never ignored. A key pinned by the image
//     (HostKeyPolicy.Pinned, authorized_keys form) is checked strictly.
//     Otherwise trust on first use, per reload, through a HostKeyStore
//     (NATS KV bucket Subjects.HostKeysBucket(), compare-and-set updates):
//     when this job's attempt reimaged the computer (Reloaded) the first
//     key seen is recorded with the job id and attempt, and checked
//     strictly from then on. With Reloaded false and no record the first
//     key seen is recorded too (the computer was loaded before loadpool
//     knew it; refusing it would make an "if-needed" job unusable); the
//     choice is logged in the record's JobID. A key that differs from the
//     record outside the reload window is a mismatch.
package control
