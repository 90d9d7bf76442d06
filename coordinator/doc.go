// Package coordinator is Apache VCL's new.pm as a stateless service over
// NATS JetStream: it takes jobs (micro service loadpool-coordinator,
// endpoints <prefix>.job.submit|get|list|cancel), counts install
// attempts, dispatches load and post-load requests to the worker pools,
// applies their tri-state results and decides on retries.
//
// # State
//
// State lives only in KV: vcl_jobs holds one messages.JobRecord per job and
// every change to it is a compare-and-set on the revision read (a lost race
// is re-read and re-decided); vcl_computers holds one key per computer a
// live job holds, created with kv.Create (the lock) and deleted with its
// last revision when the job ends. Any number of coordinators run side by
// side: they share the micro queue group, the durable result consumer and
// the max-deliveries advisories (queue group).
//
// # Exactly once
//
// Exactly-once effects: a result is acknowledged only after the record is
// written and the next request is out. Only the winner of the write
// dispatches, with Msg-Id <job>.<attempt>.<step>. A crash in between
// redelivers the result; it is then a duplicate of the record's last step
// and its effects (dispatch, event, lock release) are repeated, which
// JetStream deduplicates (within pool.DuplicateWindow). Submit
// dispatches load(1) before it marks the job loading; a queued job counts
// as waiting for that load, so an early result is applied, not lost.
// Duplicate and stale results (older attempt, another step, an ended or
// canceled job) change nothing. Events carry Msg-Ids too.
//
// # The sweeper
//
// One sweeper goroutine per coordinator (no per-job timer) applies a
// synthetic retry to steps past their safety cap (Config.StepCap) and
// aborts them, launches jobs a crashed submit left queued, and frees locks
// whose job ended or was never recorded. It works from an in-memory index
// fed by one KV watcher per bucket (also used by job.list).
//
// A load result without "reloaded" is taken to have reimaged the computer
// (the post-load then expects a new SSH host key).
//
// # Cancel
//
// Cancel: a live job becomes canceled, workers get vcl.abort.<id>
// (attempt 0: all), the computer is freed. Cancelling a job that has
// already ended returns its record unchanged, without error.
//
// Known window: a request dispatched in the instant a cancel wins the race
// for the record may reach a worker after the abort; its result is
// ignored, and the request's Deadline lets a worker drop it.
//
// # Reads
//
// Records are read through the stream leader ($JS.API.STREAM.MSG.GET), not
// with direct gets, which a replica may answer before it has the newest
// write: a compare-and-set loop must see the last write.
//
// # Errors
//
// Errors of the micro endpoints: 400 bad input (the message names the
// field), 404 unknown job, 409 computer busy (names the holding job) or id
// conflict, 503 not ready or KV unreachable; the body is {"error": "..."}.
// job.list answers newest first, from the index (a job submitted a moment
// ago through another coordinator may be missing for that moment).
//
// # Who blocks
//
// [Coordinator.Start] returns once the coordinator serves (its ctx bounds the set-up
// only); Stop (idempotent, not concurrent with Start) stops the service
// and the consumer, waits for in-flight handlers (at most
// [Config].Handlers at once), then ends the background goroutines. The
// [Client] is what other programs use.
package coordinator
