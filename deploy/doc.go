// Package deploy holds no code: it is the deployment files of loadpool
// (nats-server configurations for one node and for a three-node cluster,
// the LOADPOOL account with one least-privilege user per role, systemd
// units and example environment files; see README.md) and the tests that
// prove them.
//
//   - deploy_test.go: every .conf parses with nats-server's own parser and
//     holds no secret; an unset password variable stops the server.
//   - roles_test.go: a real server from nats-single.conf runs the real
//     pipeline (coordinator, loader, OS worker, client, monitor) with each
//     role on its own user and refuses nothing; what a role must not do is
//     refused with a permissions violation.
//   - variants_test.go: the three node files form a cluster with
//     authenticated routes and R3 streams; a loader pinned to one
//     provisioner as accounts.conf says serves it and no other.
//   - files_test.go: the systemd units pass systemd-analyze verify (when it
//     is installed); every key of the example environment files is one
//     loadpool reads; the loadpool binary, run as the units run it with the
//     example environments, takes a job to ready.
//
// Subjects in accounts.conf are written for the default prefix "vcl"; the
// tests fail if messages.DefaultPrefix changes without them.
package deploy
