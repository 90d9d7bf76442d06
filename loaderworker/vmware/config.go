package vmware

import (
	"fmt"
	"log/slog"
	"net/url"
	"time"
)

// Strategies of a load.
const (
	// StrategyClone destroys the computer's VM and clones it again from a
	// template named by the image.
	StrategyClone = "clone"
	// StrategySnapshot reverts the computer's persistent VM to a snapshot
	// named by the image.
	StrategySnapshot = "snapshot"
)

// Defaults of Config.
const (
	DefaultCallTimeout = time.Minute
	DefaultTaskTimeout = 30 * time.Minute
)

// Config says where vCenter (or ESXi) is and where loaded VMs go.
type Config struct {
	// URL of the SDK endpoint, e.g. https://vcenter.example.edu/sdk; a bare
	// host name is accepted. Credentials in the URL are ignored.
	URL      string
	User     string
	Password string
	// Insecure skips TLS certificate verification (off by default).
	Insecure bool
	// Datacenter is a name or inventory path; empty means the only one.
	Datacenter string
	// Folder is the VM folder clones go to; empty means the datacenter's
	// root VM folder.
	Folder string
	// ResourcePool clones run in (inventory path); empty means the
	// datacenter's default pool.
	ResourcePool string
	// Datastore of clones; empty means the template's.
	Datastore string
	// Strategy is the default when a job's image names none: "clone"
	// (default) or "snapshot".
	Strategy string
	// CallTimeout bounds every single vSphere call (default 1m).
	CallTimeout time.Duration
	// TaskTimeout bounds the wait for one vSphere task such as a clone
	// (default 30m).
	TaskTimeout time.Duration
	// Logger; nil means slog.Default().
	Logger *slog.Logger
}

// Env is the environment of a vmware loader (prefix LOADPOOL_), for
// envconfig.Process("LOADPOOL", &env).
type Env struct {
	URL          string        `envconfig:"VSPHERE_URL"`
	User         string        `envconfig:"VSPHERE_USER"`
	Password     string        `envconfig:"VSPHERE_PASSWORD"`
	Insecure     bool          `envconfig:"VSPHERE_INSECURE"`
	Datacenter   string        `envconfig:"VSPHERE_DATACENTER"`
	Folder       string        `envconfig:"VSPHERE_FOLDER"`
	ResourcePool string        `envconfig:"VSPHERE_RESOURCE_POOL"`
	Datastore    string        `envconfig:"VSPHERE_DATASTORE"`
	Strategy     string        `envconfig:"VSPHERE_STRATEGY"`
	CallTimeout  time.Duration `envconfig:"VSPHERE_CALL_TIMEOUT"`
	TaskTimeout  time.Duration `envconfig:"VSPHERE_TASK_TIMEOUT"`
}

// Config maps the environment onto a Config with logger log.
func (e Env) Config(log *slog.Logger) Config {
	return Config{URL: e.URL, User: e.User, Password: e.Password, Insecure: e.Insecure,
		Datacenter: e.Datacenter, Folder: e.Folder, ResourcePool: e.ResourcePool,
		Datastore: e.Datastore, Strategy: e.Strategy, CallTimeout: e.CallTimeout,
		TaskTimeout: e.TaskTimeout, Logger: log}
}

// withDefaults fills zero values.
func (c Config) withDefaults() Config {
	if c.Strategy == "" {
		c.Strategy = StrategyClone
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = DefaultCallTimeout
	}
	if c.TaskTimeout <= 0 {
		c.TaskTimeout = DefaultTaskTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// validate checks a defaulted config; the error names the setting.
func (c Config) validate() error {
	switch {
	case c.URL == "":
		return fmt.Errorf("vmware: URL (LOADPOOL_VSPHERE_URL) is required, e.g. https://vcenter.example.edu/sdk")
	case c.User == "":
		return fmt.Errorf("vmware: User (LOADPOOL_VSPHERE_USER) is required")
	case c.Password == "":
		return fmt.Errorf("vmware: Password (LOADPOOL_VSPHERE_PASSWORD) is required")
	}
	if err := validStrategy(c.Strategy); err != nil {
		return fmt.Errorf("vmware: Strategy (LOADPOOL_VSPHERE_STRATEGY) %w", err)
	}
	if u, err := url.Parse(c.URL); err != nil || u.Scheme != "" && u.Scheme != "https" && u.Scheme != "http" {
		return fmt.Errorf("vmware: URL (LOADPOOL_VSPHERE_URL) must be an http(s) URL such as https://vcenter.example.edu/sdk, not %q", redactURL(c.URL))
	}
	return nil
}

func validStrategy(s string) error {
	if s != StrategyClone && s != StrategySnapshot {
		return fmt.Errorf("must be %q or %q, not %q", StrategyClone, StrategySnapshot, s)
	}
	return nil
}

// redactURL drops any password from a URL for messages and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
