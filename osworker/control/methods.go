package control

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/loadpool/loadpool/outcome"
)

// MethodSSH is the control method of a Target whose Control is empty.
const MethodSSH = "ssh"

// Methods dials each computer with the dialer of its enrolment's control
// method (Target.Control; empty means "ssh"). A method it does not have
// is a Permanent error that names the methods it has.
type Methods map[string]Dialer

var _ Dialer = Methods(nil)

// Dial implements Dialer.
func (m Methods) Dial(ctx context.Context, t Target) (Conn, error) {
	method := t.Control
	if method == "" {
		method = MethodSSH
	}
	d, ok := m[method]
	if !ok || d == nil {
		have := make([]string, 0, len(m))
		for k := range m {
			have = append(have, k)
		}
		sort.Strings(have)
		return nil, outcome.Permanent(fmt.Errorf("computer %s is reached by control %q, which this OS worker does not offer (it has %s): fix the computer's enrolment, or run an OS worker that has it",
			t.Computer, method, strings.Join(have, ", ")))
	}
	return d.Dial(ctx, t)
}
