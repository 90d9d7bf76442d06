// Package osworker is the OS-worker side of loadpool: the runtime that
// takes post-load requests of one OS family (built on stepworker), the
// Module interface each family implements (osworker/linux,
// osworker/windows), the Env a module gets for one step, and the wait
// machinery every module shares.
//
// # Wait profiles
//
// Wait profiles are data (design.md "Wait profiles"). Each module owns its
// rows of the built-in table ([Module].Profile: linux.Profile,
// windows.Profile); a module without a row for its family is refused at
// start ([CheckModule]). An operator's profiles file ([ParseOverrides],
// LOADPOOL_PROFILES) and the image's wait_profile lay fields over the row,
// and the attempt factor scales it ([EffectiveProfile]). The effective
// profile of each step is written into its result.
//
// # Waiting
//
// [WaitForAnswer] and [WaitUntil] run in the step's goroutine: no goroutine
// per poll, one timer per sleep. They return a *TimeoutError (retry, reason
// "timeout") when a budget runs out, a Permanent error at once when the
// computer cannot be trusted or refuses loadpool's key, and the context's
// cause when the runtime cancels the step.
//
// # Who blocks
//
// [Module].PostLoad blocks for the whole step; the runtime
// cancels its context (with stepworker's causes) on shutdown, abort, lost
// lease or the request's deadline. Power requests go to the loader's
// Subjects.Power(provisioner) endpoint with their own deadline.
package osworker
