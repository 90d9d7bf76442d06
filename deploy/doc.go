// Package deploy holds no code: it is the deployment files of loadpool
// (nats-server configurations for one node and for a three-node cluster,
// the LOADPOOL account with one least-privilege user per role, systemd
// units and example environment files; see README.md) and the test that
// proves them.
//
// The test parses every .conf with nats-server's own parser, starts a real
// server from nats-single.conf and runs the real pipeline (coordinator,
// loader, OS worker, client, monitor) with each role on its own user,
// checks that what a role must not do is refused with a permissions
// violation, forms a cluster from the three node files, verifies the
// systemd units with systemd-analyze when it is installed, and checks that
// every key of the example environment files is one loadpool reads.
//
// Subjects in accounts.conf are written for the default prefix "vcl"; the
// test fails if messages.DefaultPrefix changes without them.
package deploy
