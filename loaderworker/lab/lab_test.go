package lab_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/loadpool/loadpool/outcome"

	"github.com/loadpool/loadpool/loaderworker/lab"
	"github.com/loadpool/loadpool/messages"
)

type events []string

func (e *events) Event(m string) { *e = append(*e, m) }

func req(name, typ, image string) messages.Request {
	return messages.Request{JobID: "j", Attempt: 1, Step: messages.StepLoad,
		Computer: messages.Computer{Name: name, Provisioner: lab.Name, Type: typ},
		Image:    messages.Image{Name: image, OSFamily: "linux"}}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	p, err := lab.New(lab.Inventory{Computers: []lab.Computer{{Name: "lab-01", Images: []string{"ubuntu-24.04", "win10-lab"}}}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, computer, typ, image string
		outcome                    messages.Outcome
		want                       string
	}{
		{"has image", "lab-01", messages.TypeLab, "win10-lab", messages.OutcomeReady, "already has win10-lab"},
		{"missing image", "lab-01", messages.TypeLab, "rhel9", messages.OutcomeFail, "does not have image rhel9"},
		{"unknown computer", "lab-99", messages.TypeLab, "win10-lab", messages.OutcomeFail, "not in the lab inventory"},
		{"not a lab computer", "lab-01", messages.TypeBlade, "win10-lab", messages.OutcomeFail, "only serves"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ev events
			rep, err := p.Load(context.Background(), req(c.computer, c.typ, c.image), &ev)
			if got := outcome.Of(err); got != c.outcome {
				t.Fatalf("outcome %s (%v), want %s", got, err, c.outcome)
			}
			text := rep.Detail
			if err != nil {
				text = err.Error()
			}
			if !strings.Contains(text, c.want) {
				t.Fatalf("%q does not contain %q", text, c.want)
			}
			if rep.Reloaded {
				t.Fatal("a lab computer is never reloaded")
			}
		})
	}
	st, err := p.Power(context.Background(), messages.PowerRequest{Action: messages.PowerStatus, Computer: req("lab-01", messages.TypeLab, "x").Computer})
	if err != nil || st.State != "unknown" {
		t.Fatalf("status %+v %v", st, err)
	}
	if _, err := p.Power(context.Background(), messages.PowerRequest{Action: messages.PowerReset, Computer: req("lab-01", messages.TypeLab, "x").Computer}); !outcome.IsPermanent(err) {
		t.Fatalf("reset of a lab computer must fail permanently, got %v", err)
	}
}

func TestInventoryFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "lab.json")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"computers":[{"name":"lab-01","images":["a"]}]}`)
	p, err := lab.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		`{"computers":[{"name":"lab 01","images":["a"]}]}`:                        "computers[0].name",
		`{"computers":[{"name":"lab-01","images":[]}]}`:                           "computers[0].images",
		`{"computers":[{"name":"a","images":["x"]},{"name":"a","images":["x"]}]}`: "computers[1].name",
		`{"computers":[{"name":"lab-01","imagez":["a"]}]}`:                        "unknown field",
		`not json`: "not a JSON object",
	}
	for body, want := range bad {
		write(body)
		if err := p.Reload(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want it to mention %q", body, err, want)
		}
	}
	// The old inventory survives a bad reload.
	var ev events
	if _, err := p.Load(context.Background(), req("lab-01", messages.TypeLab, "a"), &ev); err != nil {
		t.Fatalf("inventory lost after a bad reload: %v", err)
	}
	if _, err := lab.Open(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "LOADPOOL_LAB_INVENTORY") {
		t.Fatalf("missing file: %v", err)
	}
}
