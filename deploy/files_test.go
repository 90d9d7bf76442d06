package deploy

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/loadpool/loadpool/internal/poll"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/messages"
	"golang.org/x/crypto/ssh"
)

// TestSystemdUnits: every unit reads an environment file, is hardened, and
// passes systemd-analyze verify and security (exposure at most 2.0) when
// systemd-analyze is installed (the binaries' paths point at an existing
// executable for the check).
func TestSystemdUnits(t *testing.T) {
	t.Parallel()
	units, _ := filepath.Glob("systemd/*.service")
	if len(units) != 5 {
		t.Fatalf("units: %v", units)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var copies []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range []string{"EnvironmentFile=/etc/", "DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "Restart=on-failure", "CapabilityBoundingSet=\n"} {
			if !strings.Contains(string(b), "\n"+line) {
				t.Errorf("%s has no %q", u, strings.TrimSpace(line))
			}
		}
		if strings.Contains(u, "@") && !strings.Contains(string(b), "\nExecStart=/usr/local/bin/loadpool ") || strings.Contains(u, "@") && !strings.Contains(string(b), " %i\n") {
			t.Errorf("%s: the instance is not the pool of ExecStart", u)
		}
		text := strings.NewReplacer("/usr/local/bin/loadpool", exe, "/usr/local/bin/nats-server", exe).Replace(string(b))
		name := filepath.Join(dir, strings.Replace(filepath.Base(u), "@.", "@test.", 1))
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		copies = append(copies, name)
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed: units checked by text only")
	}
	out, err := exec.Command("systemd-analyze", append([]string{"verify", "--man=no"}, copies...)...).CombinedOutput()
	if err != nil || strings.Contains(string(out), dir) || strings.Contains(string(out), "loadpool") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// systemd's own exposure score (0 best, 10 worst) stays at or below 2.0.
	for _, u := range copies {
		out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--threshold=20", u).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security %s: %v\n%s", filepath.Base(u), err, out)
		}
	}
}

// knownKeys is every LOADPOOL_ variable loadpool reads, with its Go type:
// the envconfig tags of the module's code, and the variables the
// configurations of nats-server read (strings).
func knownKeys(t *testing.T) map[string]string {
	t.Helper()
	tag := regexp.MustCompile("(?m)^\\s*\\w+\\s+([\\w.\\[\\]*]+)\\s+`[^`]*envconfig:\"(\\w+)\"")
	keys := map[string]string{}
	err := filepath.WalkDir("..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		for _, m := range tag.FindAllStringSubmatch(string(b), -1) {
			keys["LOADPOOL_"+m[2]] = m[1]
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	confs, _ := filepath.Glob("*.conf")
	for _, f := range confs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`\$(LOADPOOL_\w+)`).FindAllStringSubmatch(string(b), -1) {
			keys[m[1]] = "string"
		}
	}
	for _, k := range []string{"LOADPOOL_NATS_URL", "LOADPOOL_VSPHERE_URL", "LOADPOOL_XCAT_URL", "LOADPOOL_SSH_USER", "LOADPOOL_MONITOR_PASSWORD"} {
		if keys[k] == "" {
			t.Fatalf("found no %s in the code: %v", k, keys)
		}
	}
	return keys
}

// TestEnvExamples: each example file is comments and KEY=VALUE lines; every
// key (commented-out ones too) is a LOADPOOL_ variable loadpool reads, with
// a value of its type; secrets are placeholders; the NATS user is the
// role's; a unit reads the file.
func TestEnvExamples(t *testing.T) {
	t.Parallel()
	keys := knownKeys(t)
	files, _ := filepath.Glob("env/*.env.example")
	want := []string{"all", "client", "coordinator", "loader-lab", "loader-vmware", "loader-xcat", "nats", "os-linux", "os-windows"}
	var got []string
	for _, f := range files {
		got = append(got, strings.TrimSuffix(filepath.Base(f), ".env.example"))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("examples %v, want %v", got, want)
	}
	units, err := os.ReadFile("systemd/" + "loadpool-coordinator.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"loadpool-loader@.service", "loadpool-os@.service", "loadpool-all.service", "loadpool-nats.service"} {
		b, err := os.ReadFile("systemd/" + u)
		if err != nil {
			t.Fatal(err)
		}
		units = append(units, b...)
	}
	for _, name := range got {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			role, _, _ := strings.Cut(name, "-")
			file := name + ".env"
			if pool, ok := strings.CutPrefix(name, role+"-"); ok {
				file = strings.Replace(file, pool, "%i", 1)
			}
			if role != "client" && !strings.Contains(string(units), "EnvironmentFile=/etc/loadpool/"+file+"\n") && !strings.Contains(string(units), "/"+"loadpool-"+file+"\n") {
				t.Errorf("no unit reads %s", file)
			}
			checkEnvFile(t, "env/"+name+".env.example", role, keys)
		})
	}
}

var (
	settingRE = regexp.MustCompile(`^([A-Za-z0-9_]+)=(.*)$`)
	commented = regexp.MustCompile(`^#\s*(LOADPOOL_\w+=.*)$`)
)

func checkEnvFile(t *testing.T, path, role string, keys map[string]string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if m := commented.FindStringSubmatch(line); m != nil {
			line = m[1]
		} else if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := settingRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("%s:%d is neither KEY=VALUE nor a comment: %q", path, i+1, line)
			continue
		}
		key, val := m[1], m[2]
		typ, ok := keys[key]
		if !ok {
			t.Errorf("%s:%d: %s is not a variable loadpool reads", path, i+1, key)
			continue
		}
		if err := checkValue(typ, val); err != nil {
			t.Errorf("%s:%d: %s=%q: %v", path, i+1, key, val, err)
		}
		if strings.HasSuffix(key, "_PASSWORD") && !strings.HasPrefix(val, "change-me") {
			t.Errorf("%s:%d: %s must be a change-me placeholder", path, i+1, key)
		}
		if key == "LOADPOOL_NATS_USER" && val != role {
			t.Errorf("%s:%d: the NATS user is %q, want the role %q of accounts.conf", path, i+1, val, role)
		}
		if seen[key] {
			t.Errorf("%s:%d: %s set twice", path, i+1, key)
		}
		seen[key] = true
	}
}

func checkValue(typ, v string) error {
	var err error
	switch typ {
	case "int":
		_, err = strconv.Atoi(v)
	case "bool":
		_, err = strconv.ParseBool(v)
	case "time.Duration":
		_, err = time.ParseDuration(v)
	case "[]string":
		for _, p := range strings.Split(v, ",") {
			if err == nil {
				err = messages.ValidToken("entry", p)
			}
		}
	}
	return err
}

// TestBinaryWithExampleEnv runs the real loadpool binary the way the units
// do (their ExecStart, their instance) with the example environment files,
// changed only where a host differs (server URL, passwords, file paths),
// against a server from nats-single.conf: a job submitted with client.env
// reaches ready, a monitor watches it, and the server refuses nothing;
// SIGTERM stops every process with exit 0.
func TestBinaryWithExampleEnv(t *testing.T) {
	t.Parallel()
	dir, bin := t.TempDir(), loadpoolBin
	var vl violationLog
	addr := startConf(t, "nats-single.conf", nil, &vl).ClientURL()
	comp, files := labComputer(t, dir)
	env := func(example, role string, more ...string) []string {
		return envFrom(t, "env/"+example+".env.example", append([]string{"LOADPOOL_NATS_URL=" + addr,
			"LOADPOOL_NATS_PASSWORD=" + os.Getenv(passwordVar(role)), "LOADPOOL_LOG_LEVEL=warn"}, more...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := func(role string, args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env("client", role, "LOADPOOL_NATS_USER="+role)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	startUnit(t, bin, "loadpool-coordinator.service", "", env("coordinator", "coordinator"))
	poll.Until(t, "the coordinator to serve", func() bool { _, err := client("client", "status"); return err == nil })
	startUnit(t, bin, "loadpool-loader@.service", "lab", env("loader-lab", "loader", "LOADPOOL_LAB_INVENTORY="+files["inventory"]))
	startUnit(t, bin, "loadpool-os@.service", "linux", env("os-linux", "os", "LOADPOOL_SSH_KEY="+files["key"],
		"LOADPOOL_PROFILES="+files["profiles"], "LOADPOOL_DATA_DIR="+dir))

	if out, err := client("operator", "computer", "add", comp.Name(), "--provisioner", "lab", "--type", "lab", "--address", comp.Addr()); err != nil {
		t.Fatalf("computer add as the operator: %v\n%s", err, out)
	}
	out, err := client("client", "submit", "--id", "deploy-bin", "--computer", comp.Name(),
		"--image", "ubuntu-24.04", "--os-family", "linux", "--wait")
	if err != nil || !strings.Contains(out, "job ready") {
		t.Fatalf("submit --wait: %v\n%s", err, out)
	}
	if out, err := client("monitor", "watch", "deploy-bin"); err != nil || !strings.Contains(out, "ready") {
		t.Errorf("watch as monitor: %v\n%s", err, out)
	}
	vl.none(t)
}

// labComputer is a running simulated lab computer with ubuntu-24.04, and
// the files the loader and OS worker need: inventory, SSH key, profiles.
func labComputer(t *testing.T, dir string) (*devlab.Computer, map[string]string) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "deploy test")
	if err != nil {
		t.Fatal(err)
	}
	comp, err := devlab.NewComputer(devlab.Config{Name: "lab-01", Shell: &devlab.Linux{}, Authorized: signer.PublicKey(),
		BootDelay: time.Millisecond, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(comp.Close)
	if err := comp.Boot("ubuntu-24.04"); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"inventory": []byte(`{"computers":[{"name":"lab-01","images":["ubuntu-24.04"]}]}`),
		"key":       pem.EncodeToMemory(block),
		"profiles":  []byte(`[{"family":"linux","set":{"initial_delay":"0s","poll":"50ms","answer_timeout":"20s"}}]`),
	}
	paths := map[string]string{}
	for name, b := range files {
		paths[name] = filepath.Join(dir, name)
		if err := os.WriteFile(paths[name], b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return comp, paths
}

// envFrom is the environment an example file describes (its uncommented
// settings), then more on top.
func envFrom(t *testing.T, path string, more []string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(b), "\n") {
		if settingRE.MatchString(line) {
			env = append(env, line)
		}
	}
	return append(env, more...)
}

// startUnit starts what a unit's ExecStart runs, for instance, with env
// (and nothing else); it is stopped with SIGTERM when the test ends and
// must then exit 0.
func startUnit(t *testing.T, bin, unit, instance string, env []string) {
	t.Helper()
	b, err := os.ReadFile("systemd/" + unit)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^ExecStart=/usr/local/bin/loadpool(.*)$`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("%s: no ExecStart of /usr/local/bin/loadpool", unit)
	}
	cmd := exec.Command(bin, strings.Fields(strings.ReplaceAll(m[1], "%i", instance))...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil || t.Failed() {
			t.Errorf("%s (%s): exit %v\n%s", unit, instance, err, stderr.String())
		}
	})
}
