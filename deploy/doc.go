// Package deploy holds no code: it is the deployment files of loadpool
// (nats-server configurations for one node and for a three-node cluster
// with TLS, one account and one least-privilege user per role, systemd
// units and example environment files; see README.md) and the tests that
// prove them, against real servers started from these files.
//
//   - deploy_test.go: every .conf parses with nats-server's own parser and
//     holds no secret; an unset password variable stops the server.
//   - roles_test.go: a real server from nats-single.conf runs the real
//     pipeline (coordinator, loader, OS worker, client, monitor) with each
//     role on its own user and refuses nothing; what a role must not do is
//     refused with a permissions violation.
//   - attacks_test.go, attacks_reply_test.go: every attack of issue 10 works
//     on testdata/before-issue-10 (or the test would show nothing) and is
//     refused on the shipped files, the job under attack unharmed.
//   - monitor_test.go: each NATS CLI command of the README, by the requests
//     it makes, works for the monitor user.
//   - bounds_test.go: bounded inputs (address, poll, detail, two problems
//     in one 400), expiring pool consumers and requests.
//   - variants_test.go: the three node files form a cluster over TLS with
//     authenticated routes and R3 streams, run the pipeline and refuse
//     every attack, a plaintext client and a plaintext route; a loader
//     pinned to one provisioner as accounts.conf says serves it and no
//     other.
//   - files_test.go: the systemd units pass systemd-analyze verify (when it
//     is installed); every key of the example environment files is one
//     loadpool reads; the loadpool binary, run as the units run it with the
//     example environments, takes a job to ready.
//
// Subjects in accounts.conf are written for the default prefix "vcl"; the
// tests fail if messages.DefaultPrefix changes without them.
package deploy
