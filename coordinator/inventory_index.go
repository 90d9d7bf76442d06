package coordinator

import (
	"slices"
	"sync"

	"github.com/loadpool/loadpool/messages"
)

// invIndex is the coordinator's in-memory copy of vcl_inventory, fed by a
// KV watcher: what computer.list pages through and what the sweeper
// checks against the job records. Decisions always re-read the enrolment
// from KV.
type invIndex struct {
	mu    sync.Mutex
	items map[string]invItem
	names []string // sorted; nil when it must be rebuilt
	// own are this process's writes of enrolments in flight, by name.
	own *inFlight[messages.Enrollment]
}

type invItem struct {
	rev  uint64
	e    messages.Enrollment
	size int // of its JSON, for the page budget
}

func newInvIndex() *invIndex {
	return &invIndex{items: map[string]invItem{}, own: newInFlight[messages.Enrollment]()}
}

// delivered indexes a watcher's delivery of name at rev when it is this
// process's write in flight (the same bytes); false: decode it.
func (x *invIndex) delivered(name string, data []byte, rev uint64) bool {
	e, ok := x.own.match(name, data)
	if ok {
		x.putSized(e, rev, len(data))
	}
	return ok
}

func (x *invIndex) put(e messages.Enrollment, rev uint64) {
	x.putSized(e, rev, 0)
}

// putSized is put with the size of e's JSON when the caller has it (0:
// encode to learn it).
func (x *invIndex) putSized(e messages.Enrollment, rev uint64, size int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	old, ok := x.items[e.Name]
	if ok && old.rev >= rev {
		return
	}
	if size == 0 {
		size = len(messages.Encode(e))
	}
	if !ok {
		x.names = nil
	}
	x.items[e.Name] = invItem{rev: rev, e: e, size: size}
}

// rev is the revision of name the index has (0: none).
func (x *invIndex) rev(name string) uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.items[name].rev
}

func (x *invIndex) drop(name string, rev uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.items[name]; ok && old.rev <= rev {
		delete(x.items, name)
		x.names = nil
	}
}

// sortedLocked returns the names in order, rebuilding after an add or a
// removal.
func (x *invIndex) sortedLocked() []string {
	if x.names == nil {
		x.names = make([]string, 0, len(x.items))
		for n := range x.items {
			x.names = append(x.names, n)
		}
		slices.Sort(x.names)
	}
	return x.names
}

// page returns up to limit enrolments after the name after (by name) that
// match state and provisioner (empty: any), whose encoded size stays
// within budget bytes; next is the name to continue after ("" at the
// end).
func (x *invIndex) page(state, provisioner, after string, limit, budget int) ([]messages.Enrollment, string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	names := x.sortedLocked()
	i, _ := slices.BinarySearch(names, after)
	if i < len(names) && names[i] == after {
		i++
	}
	out := []messages.Enrollment{}
	size := 0
	for ; i < len(names); i++ {
		it := x.items[names[i]]
		e := it.e
		if (state != "" && e.State != state) || (provisioner != "" && e.Provisioner != provisioner) {
			continue
		}
		n := it.size + 1
		if len(out) == limit || (size+n > budget && len(out) > 0) {
			return out, out[len(out)-1].Name
		}
		out = append(out, e)
		size += n
	}
	return out, ""
}

// held returns the computers the index sees held by a job, with that job.
func (x *invIndex) held() map[string]string {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := map[string]string{}
	for n, it := range x.items {
		if job := heldJob(it.e); job != "" {
			out[n] = job
		}
	}
	return out
}

// item is the enrolment the index last saw, with its revision.
func (x *invIndex) item(name string) (invItem, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	it, ok := x.items[name]
	return it, ok
}

func (x *invIndex) len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.items)
}
