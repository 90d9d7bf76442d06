package coordinator

import (
	"bytes"
	"sync"
)

// inFlight holds this process's writes to a KV bucket whose
// acknowledgement has not come yet, by key, with what an index keeps of
// each (T): a watcher's delivery often comes before the ack, and one that
// carries exactly a write's bytes is that write, indexed without decoding
// it.
type inFlight[T any] struct {
	mu sync.Mutex
	m  map[string]ownWrite[T]
}

type ownWrite[T any] struct {
	data []byte
	v    T
}

func newInFlight[T any]() *inFlight[T] { return &inFlight[T]{m: map[string]ownWrite[T]{}} }

// expect registers data, the encoding of v, as key's write in flight.
func (f *inFlight[T]) expect(key string, data []byte, v T) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[key] = ownWrite[T]{data: data, v: v}
}

// settled ends the write of data registered by expect (once its ack or
// its failure is in).
func (f *inFlight[T]) settled(key string, data []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if w, ok := f.m[key]; ok && len(w.data) == len(data) && len(data) > 0 && &w.data[0] == &data[0] {
		delete(f.m, key)
	}
}

// match returns what expect registered for key when data is that write's
// bytes; ok false: the delivery is someone else's (decode it).
func (f *inFlight[T]) match(key string, data []byte) (v T, ok bool) {
	f.mu.Lock()
	w, found := f.m[key]
	f.mu.Unlock()
	if !found || !bytes.Equal(w.data, data) {
		return v, false
	}
	return w.v, true
}
