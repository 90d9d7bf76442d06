// Package loaderworker is the runtime of a loader pool: one process serves
// one provisioner (vmware, xcat, lab, ...). It pulls load requests from the
// pool's durable consumer (loader-<provisioner> on VCL_LOAD) through
// stepworker.Runtime, runs the Provisioner's Load with the request's lease
// kept alive, publishes the tri-state result and progress events, and
// answers the power endpoint vcl.power.<provisioner> that OS workers call
// when a boot hangs.
//
// A Provisioner only puts the image on the computer and starts it: it never
// waits for the OS and never speaks SSH (go list -deps ./loaderworker/...
// has no golang.org/x/crypto/ssh; a test proves it).
//
// Start returns once the consumer is bound and the power endpoint answers.
// Stop is idempotent: it stops the power endpoint, then stops the runtime in
// two phases (drain for the grace period, then cancel with
// stepworker.ErrShutdown so the request returns to the pool).
package loaderworker
