// Package embednats runs the real nats-server in-process, with JetStream:
// the single-machine default of every loadpool command when
// LOADPOOL_NATS_URL is unset, and the server of every test (one node, or a
// three-node cluster on loopback).
//
// Start blocks until the server accepts clients (or fails); Shutdown waits
// for it to stop. Tests start it through natstest, which registers the cleanup.
package embednats
