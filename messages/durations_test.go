package messages

import (
	"strings"
	"testing"
	"time"
)

func TestDurationsStats(t *testing.T) {
	var d Durations
	if d.Stats(1) != nil {
		t.Fatal("stats of no samples")
	}
	for i := 1; i <= 100; i++ {
		d.Add(time.Duration(i) * time.Second)
	}
	s := d.Stats(5)
	if s.Samples != 100 || s.P50.D() != 50*time.Second || s.P90.D() != 90*time.Second || s.P99.D() != 99*time.Second {
		t.Errorf("stats %+v", s)
	}
	if d.Stats(101) != nil {
		t.Error("stats with fewer samples than asked")
	}
	for range MaxDurationSamples {
		d.Add(time.Hour)
	}
	if len(d.Seconds) != MaxDurationSamples || d.Stats(1).P50.D() != time.Hour {
		t.Errorf("bounded to %d: kept %d, p50 %s", MaxDurationSamples, len(d.Seconds), d.Stats(1).P50)
	}
}

func TestDurationsKey(t *testing.T) {
	for _, c := range []struct{ image, want string }{
		{"win7-sp1-v3", "postload.virtualmachine.win7-sp1-v3"},
		{"rocky9.4-x86_64-install-compute", "postload.virtualmachine.rocky9.4-x86_64-install-compute"},
		{"ubuntu 24.04/lts*", "postload.virtualmachine.b64_"},
	} {
		if got := DurationsKey(c.image, "virtualmachine", "postload"); !strings.HasPrefix(got, c.want) || strings.ContainsAny(got, " */") {
			t.Errorf("key of %q: %q, want %q...", c.image, got, c.want)
		}
	}
}
