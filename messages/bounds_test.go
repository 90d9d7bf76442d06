package messages

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncateDetail(t *testing.T) {
	t.Parallel()
	if s := TruncateDetail("short"); s != "short" {
		t.Errorf("short detail changed: %q", s)
	}
	long := strings.Repeat("é", 600000) // 1.2 MB of two-byte runes
	s := TruncateDetail(long)
	if len(s) > MaxDetailBytes || !utf8.ValidString(s) || !strings.Contains(s, "[truncated: 1200000 bytes in all]") {
		t.Errorf("truncated detail: %d bytes, valid %v, tail %q", len(s), utf8.ValidString(s), s[len(s)-60:])
	}
}

func TestSpecProblemsAllNamed(t *testing.T) {
	t.Parallel()
	// DecodeJobSpec validates too.
	_, err := DecodeJobSpec([]byte(`{"computer": {"type": "desk"}, "image": {"os_family": "linux"}, "reload": "never"}`))
	for _, field := range []string{"computer.name", "image.name", "reload"} {
		if err == nil || !strings.Contains(err.Error(), field+":") {
			t.Errorf("the error does not name %s: %v", field, err)
		}
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "computer.name" {
		t.Errorf("errors.As finds %+v first, want computer.name", fe)
	}
}

func TestBoundedInputs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body, field string
	}{
		{"address of 60000 characters", `"computer": {"name": "vm-1", "address": "` + strings.Repeat("a", 60000) + `"}`, "computer.address"},
		{"address with a path", `"computer": {"name": "vm-1", "address": "h\u0000x:22"}`, "computer.address"},
		{"computer name as an option", `"computer": "-oProxyCommand=x"`, "computer.name"},
		{"provisioner as an option", `"computer": {"name": "vm-1", "provisioner": "-rf"}`, "computer.provisioner"},
		{"image name with a control character", `"computer": "vm-1", "image": {"name": "a\u001b[2Jb", "os_family": "linux"}`, "image.name"},
		{"image name as an option", `"computer": "vm-1", "image": {"name": "--help", "os_family": "linux"}`, "image.name"},
		{"answer timeout of 48h", `"computer": "vm-1", "image": {"name": "u", "os_family": "linux", "wait_profile": {"answer_timeout": "48h"}}`, "image.wait_profile.answer_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := "{" + tc.body
			if !strings.Contains(tc.body, `"image"`) {
				body += `, "image": {"name": "u", "os_family": "linux"}`
			}
			spec, err := DecodeJobSpec([]byte(body + "}"))
			if err == nil {
				spec.Normalize()
				err = spec.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.field+":") || len(err.Error()) > 600 {
				t.Errorf("error %.300v does not name %s (or is long)", err, tc.field)
			}
		})
	}
	img := Image{Name: "u", OSFamily: "linux", WaitProfile: []byte(`{"poll": "1ns"}`)}
	if err := img.CheckPollFloor("image", MinPoll); err == nil || !strings.Contains(err.Error(), "image.wait_profile.poll: must be at least 1s, not 1ns") {
		t.Errorf("poll of 1ns: %v", err)
	}
	ok := `{"computer": {"name": "vm-1", "address": "vm-1.lab.example.edu:2222"}, "image": {"name": "ubuntu-24.04", "os_family": "linux", "wait_profile": {"poll": "1s", "answer_timeout": "24h"}}}`
	spec, err := DecodeJobSpec([]byte(ok))
	if err == nil {
		spec.Normalize()
		err = spec.Validate()
	}
	if err != nil {
		t.Errorf("a spec at the bounds is refused: %v", err)
	}
}
