package steptest

import (
	"bytes"
	"sync"
)

// Buffer is an io.Writer safe for concurrent writers: a log sink or a
// command's output that a test reads while goroutines still write.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
