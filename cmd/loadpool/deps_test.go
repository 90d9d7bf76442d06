package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The dependency rules of the layout: the binary operators deploy links
// nothing test-only or simulated (the demo is built with -tags dev), the
// coordinator does not link the worker runtime, and provisioners never
// link SSH (invariant 7).
func TestDependencyRules(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pkgs   string
		banned []string
	}{
		{"github.com/loadpool/loadpool/cmd/loadpool", []string{"testing", "github.com/loadpool/loadpool/devlab",
			"github.com/vmware/govmomi/simulator", "github.com/loadpool/loadpool/embednats/natstest",
			"github.com/loadpool/loadpool/stepworker/steptest", "github.com/loadpool/loadpool/internal/poll"}},
		{"github.com/loadpool/loadpool/coordinator", []string{"github.com/loadpool/loadpool/stepworker"}},
		{"github.com/loadpool/loadpool/loaderworker/...", []string{"golang.org/x/crypto/ssh", "github.com/vmware/govmomi/simulator"}},
	}
	for _, c := range cases {
		deps := goListDeps(t, c.pkgs)
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed only %v", c.pkgs, deps)
		}
		for _, bad := range c.banned {
			for _, d := range deps {
				if d == bad || strings.HasPrefix(d, bad+"/") {
					t.Errorf("%s depends on %s (via %s)", c.pkgs, bad, d)
				}
			}
		}
	}
}

// goListDeps lists the packages pkgs link, as the product build sees them:
// without build tags (GOFLAGS cleared, so make's -tags dev does not leak in).
func goListDeps(t *testing.T, pkgs string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", pkgs)
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkgs, err)
	}
	return strings.Fields(string(out))
}
