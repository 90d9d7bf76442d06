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
//   - Host keys are verified, never ignored, and come from the enrolment
//     (design.md "Reaching the computer"): no bucket, no file. A key pinned
//     by the operator (HostKeyPolicy.Pinned) is checked strictly, always.
//     A key learned after the last load that reimaged the computer
//     (HostKeyPolicy.Learned) is checked strictly while this attempt did
//     not reimage it. Otherwise (Reloaded, or no key known) the first key
//     seen is learned into the step's own HostKeyStore (HostKeyPolicy.Step,
//     one MemHostKeys per step) and every later dial of the step is checked
//     against it; the OS worker reports it in the step's result
//     (messages.Result.LearnedHostKey) and the coordinator writes it into
//     the enrolment. A mismatch names the computer, both fingerprints and
//     where the expected key came from.
package control
