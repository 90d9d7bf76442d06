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
// is re-read and re-decided); vcl_inventory holds one enrolment per
// computer, and the enrolment is the computer's lock: a compare-and-set
// marks it held by a job (job, reloading) before the job can run, and the
// one that records the job's end (job_ended) frees it, so no two jobs
// hold one computer and the next job sees how the last left it. Any number of coordinators run side by
// side: they share the micro queue group, the durable result consumer and
// the max-deliveries advisories (queue group).
//
// # Exactly once
//
// Exactly-once effects: a result is acknowledged only after the record is
// written and the next request is out. Only the winner of the write
// dispatches, with Msg-Id <job>.<attempt>.<step>. A crash in between
// redelivers the result; it is then a duplicate of the record's last step
// and its effects (dispatch, event, computer's end) are repeated, which
// JetStream deduplicates (within pool.DuplicateWindow). A job's record is
// born loading at attempt 1 and its load is dispatched once the record is
// stored; the sweeper sends that first load again (the same Msg-Id) for a
// job that has no step relaunchAfter later, once per process, while the
// record is younger than half the duplicate window, so a submit that died
// before its dispatch costs a second, not a step cap (unless no coordinator
// ran for half the window: then the step cap retries it, since a job
// whose long first load is running looks the same). (Records of older
// coordinators may be queued: a queued job counts as waiting for the load
// of attempt 1, so an early result is applied, not lost.)
// Duplicate and stale results (older attempt, another step, an ended or
// canceled job) change nothing. Events carry Msg-Ids too.
//
// # The index of live jobs
//
// vcl_jobs keeps every ended job for JobRetention (a million records is
// ordinary), so no coordinator replays or holds it: its memory and its
// start are bounded by the lab's size, not by the bucket's. The in-memory
// index holds the live jobs only (and the inventory, one per computer).
// At start the vcl_jobs watcher begins with updates only; then the
// vcl_inventory watcher replays that bucket, and the records of the jobs
// its held computers name are read (16 at a time). That finds every live
// job: a live job holds its computer from its record's creation (the hold
// is sent with it, first) until its end, and a record written after the
// watcher started comes through it. The watcher decodes only the fields the
// index needs, and none of this process's own writes (a delivery that
// carries the bytes of a write in flight is indexed from that write); an
// ended record leaves the index (a short memory of its revision keeps a
// slower read of an older one from bringing it back). The job-state gauge
// loadpool_jobs counts the live states only.
//
// job.list pages by KV revision, the last changed job first, with a next
// cursor: live states from the index, ended jobs (or every state) from the
// bucket's stream read backwards with batched direct gets, at most 20,000
// messages a page.
//
// # The sweeper
//
// One sweeper goroutine per coordinator (no per-job timer) applies a
// synthetic retry to steps past their safety cap (Config.StepCap) and
// aborts them, dispatches first loads a crashed submit left undispatched,
// and frees computers held by a job that ended or was never recorded. It
// sweeps when it starts and then when the next of these falls due, not
// only every SweepInterval, so a coordinator restarted every few seconds
// still repairs: a fresh job relaunchAfter (1s) after its record, since a
// dispatch again is idempotent (the Msg-Id of the load); a step at
// its deadline; a computer held by a job that is not live repairAfter
// (min(30s, StepCap/2)) after it was held. That delay stays long: a hold
// without a record may belong to a submit that is still writing the
// record, and freeing it would let a second job onto the computer; a
// submit's calls are each bounded by 10s, so only a hold older than that
// is known to be orphaned.
//
// BenchmarkRestartOverRetained measures a restart over retained records
// (LOADPOOL_BENCH_RETAINED=1000000 go test -run '^$' -bench
// RestartOverRetained -benchtime 1x -timeout 1h ./coordinator). With
// 1,000,000 ended records (1.2 KB each), 50 live jobs and 1,000 computers,
// before the index of live jobs the coordinator did not start: its 30 s
// set-up ran out while it replayed vcl_jobs (RSS 281 MB by then; with
// 200,000 records: first submit after 12.3 s, RSS 164 MB, 77 ms a sweep);
// after: first submit 0.12 s after the process started, RSS 22 MB (peak
// 22 MB), 0.2 ms a sweep (0.08 ms with no records retained; 2 shared
// cores).
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
// # Reads and round trips
//
// Records are read through the stream leader ($JS.API.STREAM.MSG.GET), not
// with direct gets, which a replica may answer before it has the newest
// write: a compare-and-set loop must see the last write. Most decisions
// need no read at all: each process keeps a copy of the live records it
// wrote or read (with their revisions) and of the inventory (the watcher's
// index), decides on that copy and writes with a compare-and-set on its
// revision. A won write proves the copy was current; a lost one drops it
// and the leader's record is read and the decision made again. A verdict
// that needs no write (a stale or duplicate result, a redelivery's
// repeated effects) is never taken on a copy: the leader's record decides.
//
// The writes of one step go out together and are awaited together
// (JetStream asynchronous publishes): submit sends the hold of the
// computer and the record (one round trip), then the load request with
// the events (a second); a result writes the
// record, then sends the next request and the event; a job's end writes
// the record, then the computer's state (which frees it), then the
// events, in that order, so that on one server a client that sees the end
// finds the computer free. Events (the jobs' and the computers') are
// published into the events stream without asking for
// its acknowledgement (core NATS; the stream stores them, deduplicated by
// their Msg-Ids, in the order sent): the records are the truth, and an
// event lost to an outage was only logged before, never sent again;
// dropping the acknowledgements saved 20-30% of the throughput at 256
// jobs in flight (bench/pipeline.sh, side by side). Step durations are learned in
// memory and merged into their bucket every 250 ms, one compare-and-set
// per key. `bash bench/pipeline.sh` measures the result against the ideal
// pipeline (README, "Tests and figures").
//
// # Errors
//
// Errors of the micro endpoints: 400 bad input (the message names the
// field), 404 unknown job, 409 computer busy (names the holding job) or id
// conflict, 503 not ready or KV unreachable; the body is {"error": "..."}.
// job.list answers the last changed job first (a direct get may lag the
// newest write by a moment).
//
// # Who blocks
//
// [Coordinator.Start] returns once the coordinator serves (its ctx bounds the set-up
// only); Stop (idempotent, not concurrent with Start) stops the service
// and the consumer, waits for in-flight handlers (at most
// [Config].Handlers at once), then ends the background goroutines. The
// [Client] is what other programs use.
package coordinator
