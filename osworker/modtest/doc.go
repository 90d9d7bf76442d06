// Package modtest is the conformance suite every OS module must pass
// (Run), and the harness it is built on (Harness), which a module's own
// tests can reuse. Everything is real but the computer: an embedded NATS
// server with loadpool's streams, the OS-worker runtime (osworker.Worker)
// with SSH, and a real loader worker (loaderworker + devlab.Sim) serving
// the power endpoint; the computer is a devlab.Computer with the module's
// personality. The harness plays the coordinator: it "loads" the computer
// (Boot), writes the job's record into the jobs bucket (the loader's power
// endpoint checks it), publishes the post-load request with the computer's
// enrolment, reads the result from the results stream and keeps the host
// key a result reports learned in the enrolment, as the coordinator does.
package modtest
