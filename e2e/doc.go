// Package e2e holds tests and benchmarks that span the whole pipeline —
// coordinator, loader and OS worker runtimes — on real embedded NATS
// servers, including a three-node cluster that loses a node mid-job.
// It has no code of its own.
package e2e
