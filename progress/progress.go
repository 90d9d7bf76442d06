// Package progress is how a running step tells people what it is doing
// (cloning, powering on, waiting for SSH): each report becomes an event on
// vcl.event.<job_id>. Reporting is for people; leases are kept by the
// worker runtime on its own.
package progress

// Progress receives a running step's reports. Implementations must be safe
// for concurrent use and must not block for long.
type Progress interface {
	Event(msg string)
}

// Func adapts a function to Progress.
type Func func(msg string)

// Event calls f(msg).
func (f Func) Event(msg string) { f(msg) }

// Discard drops every report.
var Discard Progress = Func(func(string) {})
