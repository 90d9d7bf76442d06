// Package steptest is the wire of a pool without a coordinator: publish
// requests, read results. Tests of the workers (loader and OS) and the
// conformance suites stand it up instead of a coordinator.
//
// New starts a one-node embedded NATS server (natstest.New), connects,
// creates the streams of design.md (pool.Topology with Subjects) and
// one durable results consumer ("steptest"); the server and connection go
// away when the test ends. A Wire has the results stream's only consumer:
// do not start a coordinator on it.
//
// Contract: call a Wire's methods from the test's goroutine (they fail the
// test with tb.Fatal). Result blocks until the next result arrives, acks
// it and returns it decoded, failing the test after timeout; NoResult
// blocks for d and fails the test if a result arrives. Every call to the
// server has a deadline (CallTimeout).
package steptest
