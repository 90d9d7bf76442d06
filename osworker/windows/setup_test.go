package windows

import (
	"errors"
	"testing"

	"github.com/loadpool/loadpool/outcome"
)

func TestSetupStateDone(t *testing.T) {
	t.Parallel()
	zero, one, absent := dword{0, true}, dword{1, true}, dword{}
	type verdict int
	const (
		running verdict = iota
		done
		failed    // retry, setup-failed
		permanent // fail
		retry     // plain error
	)
	cases := []struct {
		name string
		st   SetupState
		want verdict
	}{
		{"complete", SetupState{Image: ImageComplete, System: zero, OOBE: zero}, done},
		{"complete, OOBE absent", SetupState{Image: ImageComplete, System: zero, OOBE: absent}, done},
		{"complete but OOBE pending", SetupState{Image: ImageComplete, System: zero, OOBE: one}, running},
		{"specialize running", SetupState{Image: ImageUndeployable, System: one, OOBE: one}, running},
		{"oobe to come", SetupState{Image: "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE", System: one, OOBE: one}, running},
		{"generalized, not started", SetupState{Image: "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE", System: one, OOBE: one}, running},
		{"reseal to OOBE, setup not flagged", SetupState{Image: "IMAGE_STATE_SPECIALIZE_RESEAL_TO_OOBE", System: zero, OOBE: one}, running},
		{"stuck undeployable", SetupState{Image: ImageUndeployable, System: zero, OOBE: one}, failed},
		{"stuck undeployable, no OOBE", SetupState{Image: ImageUndeployable, System: zero}, failed},
		{"audit mode", SetupState{Image: "IMAGE_STATE_SPECIALIZE_RESEAL_TO_AUDIT", System: zero}, permanent},
		{"no ImageState on Vista+", SetupState{System: zero}, permanent},
		{"no ImageState while running", SetupState{System: one}, running},
		{"SystemSetupInProgress absent", SetupState{Image: ImageComplete}, retry},
		{"xp done", SetupState{Legacy: true, System: zero}, done},
		{"xp done, mini 0", SetupState{Legacy: true, System: zero, MiniXP: zero}, done},
		{"xp mini-setup", SetupState{Legacy: true, System: one, MiniXP: one}, running},
		{"xp mini flag left", SetupState{Legacy: true, System: zero, MiniXP: one}, running},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ok, err := c.st.Done()
			var sf *SetupFailedError
			got := running
			switch {
			case ok && err == nil:
				got = done
			case errors.As(err, &sf):
				got = failed
			case outcome.IsPermanent(err):
				got = permanent
			case err != nil:
				got = retry
			}
			if got != c.want {
				t.Errorf("%s: Done() = %v, %v: verdict %d, want %d", c.st, ok, err, got, c.want)
			}
		})
	}
}
