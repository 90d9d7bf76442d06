// Package vcsim runs govmomi's in-process vCenter simulator for tests and
// the `loadpool dev` demo: a trimmed VPX inventory (one datacenter, one
// standalone host, one datastore) with a template per sample image (each
// with a snapshot "base", so clones are linked), persistent VMs with one
// snapshot per image for the snapshot strategy, and enforced credentials.
//
// Start serializes the simulator's Create (it races on a package global
// otherwise), so several Sims can run in one process. Options.OnPowerOn
// is called (in its own goroutine) with a VM's name whenever a simulated
// VM powers on or is reset; Close waits for those calls. Fault helpers
// inject the errors a real vCenter gives: asynchronous task failures
// (FailTask), synchronous call faults (FailCall, FailCallWith), expired
// sessions (DropSessions) and hanging calls (Options.CallDelay); slow
// tasks are the simulator's package-global TaskDelay (tests that set it
// must not run in parallel). BeforeCall runs a test's hook before the
// next call of a SOAP method is served (the call waits for it), so a
// fault can be timed to a point in a client's work, e.g. the session
// dropped while a task wait is in progress. VM, PowerState and ExtraConfig read what
// vCenter says of a VM, found by its exact name.
//
// What it does not model (see the govmomi reference): linked clones are
// full copies, a revert restores no config or power state, guests never
// boot (OnPowerOn is where a demo boots something behind a VM), and
// CreateScreenshot_Task exists only with Options.Screenshots.
//
// Only this package and _test.go files import govmomi's simulator.
package vcsim
