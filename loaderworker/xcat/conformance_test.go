package xcat

import (
	"testing"
	"time"

	"github.com/loadpool/loadpool/devlab/xcatemu"
	"github.com/loadpool/loadpool/loaderworker/provisionertest"
	"github.com/loadpool/loadpool/messages"
)

func TestConformance(t *testing.T) {
	provisionertest.Run(t, func(t *testing.T) provisionertest.Fixture {
		// Slow phases must stay inside the stall timeout.
		r := newRig(t, rigOpt{cfg: func(c *Config) { c.MinStall, c.MinOverall = 10*time.Second, 30*time.Second }})
		return provisionertest.Fixture{
			Provisioner:  r.prov,
			Name:         Name,
			Computer:     messages.Computer{Name: testNode, Provisioner: Name, Type: messages.TypeBlade},
			Image:        messages.Image{Name: testImage, OSFamily: "linux"},
			MissingImage: messages.Image{Name: "no-such-osimage", OSFamily: "linux"},
			// A transient failure that outlasts the in-step backoff: the
			// next install ends in failed (retry), the one after works.
			InjectTransient: func() { _ = r.emu.FailNextInstall(testNode) },
			Slow: func(d time.Duration) {
				r.emu.SetTiming(xcatemu.Timing{PoweringOn: d / 4, Installing: d / 4, Booting: d / 4, Postbooting: d / 4})
			},
			PowerState: func() string {
				st, err := r.emu.Node(testNode)
				if err != nil {
					t.Fatal(err)
				}
				return st.Power
			},
		}
	})
}
