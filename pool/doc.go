// Package pool is the vocabulary of JetStream that the coordinator and both
// worker pools share: the streams of the design ([Topology]), the durable
// consumer a pool's workers pull from ([Consumer]), and a pool's settings
// ([Config]) with their defaults and validation in one place.
//
// # Who creates what
//
// [Topology.Ensure] creates missing streams and brings a changed one back
// to its configuration; a stream that already matches is left alone (an
// update racing a consumer's creation is a data race inside nats-server
// 2.15.2). [Consumer.Ensure] creates a pool's consumer or binds to it; the
// coordinator makes it the first time it dispatches to the pool, and the
// project's workers with the same settings when they start first.
//
// # Zero values
//
// A zero field of [Config] or [Consumer] means its default (the Default
// constants); [Config.WithDefaults] fills them, [Config.Validate] names the
// LOADPOOL_ variable of a bad one.
package pool
