// Package devlab is an in-process lab for the demo, tests and benchmarks:
// simulated computers (Computer: an x/crypto/ssh server on a loopback port
// that powers on, boots with a new host key, answers or not, and runs an OS
// personality behind the Shell interface), a Linux personality (Linux),
// a fleet helper (Lab), and the ed25519 client keys the computers
// authorize (NewSigner, WriteKey; tests use devlab/labtest). Windows personalities and
// the provisioner emulators live beside it (devlab/vcsim, devlab/xcatemu,
// ...).
//
// A Computer is cheap: while off it holds no goroutine, while up one
// accept goroutine plus a few per open connection; boot transitions are
// timers. Timings are configurable down to milliseconds for tests. What
// it does not model is listed on Computer and on each personality.
package devlab
