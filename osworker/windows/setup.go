package windows

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/osworker"
)

// Registry keys read and written by the module.
const (
	StateKey  = `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Setup\State`
	SetupKey  = `HKLM\SYSTEM\Setup`
	TSKey     = `HKLM\SYSTEM\CurrentControlSet\Control\Terminal Server`
	ServerKey = `HKLM\SYSTEM\CurrentControlSet\Services\LanmanServer\Parameters`
)

// ImageState words (Microsoft Learn "Windows Setup States").
const (
	ImageComplete     = "IMAGE_STATE_COMPLETE"
	ImageUndeployable = "IMAGE_STATE_UNDEPLOYABLE"
)

// dword is a DWORD value that may be absent.
type dword struct {
	v     uint32
	found bool
}

func (d dword) String() string {
	if !d.found {
		return "absent"
	}
	return fmt.Sprint(d.v)
}

// zero: 0 or absent.
func (d dword) zero() bool { return !d.found || d.v == 0 }

// SetupState is what the registry says about setup.
type SetupState struct {
	Legacy bool
	// Image is ImageState ("" when absent; always "" on XP/2003).
	Image                string
	System, OOBE, MiniXP dword
}

// String is the observed state: the progress of the wait.
func (s SetupState) String() string {
	if s.Legacy {
		return fmt.Sprintf("SystemSetupInProgress=%s MiniSetupInProgress=%s", s.System, s.MiniXP)
	}
	img := s.Image
	if img == "" {
		img = "absent"
	}
	return fmt.Sprintf("ImageState=%s SystemSetupInProgress=%s OOBEInProgress=%s", img, s.System, s.OOBE)
}

// SetupFailedError is a setup pass that ended without completing: the
// image must be loaded again (retry).
type SetupFailedError struct{ State SetupState }

func (e *SetupFailedError) Error() string {
	return fmt.Sprintf("Windows setup failed: %s (setup no longer running but the image is not deployed); load the image again", e.State)
}

// Reason is the result's machine reason.
func (e *SetupFailedError) Reason() string { return "setup-failed" }

// Done decides: finished, still running (false, nil), failed (a
// *SetupFailedError, retry) or never going to be ready (Permanent).
func (s SetupState) Done() (bool, error) {
	if !s.System.found {
		return false, fmt.Errorf("SystemSetupInProgress is absent from %s", SetupKey)
	}
	running := s.System.v != 0
	if s.Legacy {
		return !running && s.MiniXP.zero(), nil
	}
	switch {
	case running:
		return false, nil
	case s.Image == ImageComplete:
		return s.OOBE.zero(), nil
	case s.Image == ImageUndeployable:
		return false, &SetupFailedError{State: s}
	case strings.HasSuffix(s.Image, "_TO_AUDIT"):
		return false, outcome.Permanent(fmt.Errorf("the image boots into audit mode (%s): sysprep it with /oobe, not /audit", s))
	case s.Image == "":
		return false, outcome.Permanent(fmt.Errorf("no ImageState in %s although setup is not running (%s): is the image's os_version right (XP/2003 have none)?", StateKey, s))
	}
	return false, nil
}

// failedReads is how many polls in a row must see a failed setup before
// the wait gives up: the values are read one by one, so one read can
// straddle setup's own update of them.
const failedReads = 2

// waitSetup waits until setup is finished and returns the final state.
func (s *session) waitSetup(ctx context.Context) (string, error) {
	gen := "Vista+"
	if s.legacy {
		gen = "XP/2003"
	}
	s.env.Event("waiting for Windows setup to finish (%s registry values)", gen)
	var last SetupState
	var final error // a failed setup ends the wait at once, with retry
	failed := 0
	err := osworker.WaitUntil(ctx, s.env, "setup", func(ctx context.Context) (bool, string, error) {
		st, err := s.readSetup(ctx)
		if err != nil {
			return false, "", err
		}
		last = st
		done, err := st.Done()
		var sf *SetupFailedError
		if !errors.As(err, &sf) {
			failed = 0
			return done, st.String(), err
		}
		if failed++; failed >= failedReads {
			final = err
			return true, st.String(), nil
		}
		return false, st.String(), nil
	})
	if err == nil {
		err = final
	}
	if err != nil {
		return "", err
	}
	s.env.Event("Windows setup finished: %s", last)
	return "setup finished (" + last.String() + ")", nil
}

// readSetup reads the setup values of this Windows generation.
func (s *session) readSetup(ctx context.Context) (SetupState, error) {
	st := SetupState{Legacy: s.legacy}
	var err error
	if st.System, err = s.dword(ctx, SetupKey, "SystemSetupInProgress"); err != nil {
		return st, err
	}
	if s.legacy {
		st.MiniXP, err = s.dword(ctx, SetupKey, "MiniSetupInProgress")
		return st, err
	}
	if st.OOBE, err = s.dword(ctx, SetupKey, "OOBEInProgress"); err != nil {
		return st, err
	}
	v, found, err := s.regQuery(ctx, StateKey, "ImageState")
	if found {
		st.Image = strings.ToUpper(strings.TrimSpace(v.Data))
	}
	return st, err
}

// regQuery reads one value. Exit status 1 means absent (the text is
// localized; only an English "Access is denied" is told apart).
func (s *session) regQuery(ctx context.Context, key, name string) (RegValue, bool, error) {
	cmd := `reg query "` + key + `" /v ` + name
	out, err := s.Run(ctx, cmd)
	switch {
	case err != nil:
		return RegValue{}, false, fmt.Errorf("read %s: %w", name, err)
	case out.Exit == 1 && !accessDenied(out):
		return RegValue{}, false, nil
	case !out.OK():
		return RegValue{}, false, commandError("read "+name, cmd, out)
	}
	v, ok := FindValue(ParseRegQuery(out.Stdout), name)
	if !ok {
		return v, false, fmt.Errorf("read %s: %q exited 0 but printed no value line: %q", name, cmd, firstText(out))
	}
	return v, true, nil
}

func (s *session) dword(ctx context.Context, key, name string) (dword, error) {
	v, found, err := s.regQuery(ctx, key, name)
	if err != nil || !found {
		return dword{}, err
	}
	n, err := v.DWORD()
	return dword{v: n, found: true}, err
}
