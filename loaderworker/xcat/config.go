package xcat

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// Name is the provisioner token of this package (vcl.load.request.xcat).
const Name = "xcat"

// DefaultMaxAckPending is the pool-wide install limit that suits xCAT:
// VCL's xcat|throttle default. The loader's consumer takes it as its
// MaxAckPending.
const DefaultMaxAckPending = 10

// Defaults of Config's durations.
const (
	DefaultPoll        = 15 * time.Second
	DefaultMinStall    = 10 * time.Minute
	DefaultMinOverall  = 60 * time.Minute
	DefaultCallTimeout = 5 * time.Minute
	DefaultBackoff     = 2 * time.Second
	DefaultMaxBackoff  = 30 * time.Second
	DefaultTries       = 5
)

// Config configures the provisioner. Durations left zero take the
// defaults above; tests shrink them to run in seconds.
type Config struct {
	// URL is the REST API's base, e.g. https://mn.example.org/xcatws (a
	// URL without a path gets /xcatws).
	URL string
	// User and Password are the xCAT web service account (passwd key xcat).
	User, Password string
	// CAFile is a PEM file of CAs that sign the server's certificate (the
	// xCAT CA); Insecure skips verification instead (explicit opt-in).
	CAFile   string
	Insecure bool
	// Poll is the interval between status reads during an install.
	Poll time.Duration
	// MinStall is the least stall timeout: no status change for
	// max(image reload_minutes, MinStall) answers retry.
	MinStall time.Duration
	// MinOverall is the least overall timeout: an install longer than
	// max(2 x reload_minutes, MinOverall) answers retry.
	MinOverall time.Duration
	// CallTimeout bounds one HTTP call (xCAT's calls are synchronous and
	// can be slow: default 5m).
	CallTimeout time.Duration
	// Backoff, MaxBackoff and Tries bound the in-step retries of one call
	// that failed transiently (5xx, timeout, refused, transient 403).
	Backoff, MaxBackoff time.Duration
	Tries               int
	Logger              *slog.Logger
}

// Env is Config as environment variables (envconfig, prefix LOADPOOL):
// LOADPOOL_XCAT_URL, _USER, _PASSWORD, _CA_FILE, _INSECURE.
type Env struct {
	URL      string `envconfig:"XCAT_URL"`
	User     string `envconfig:"XCAT_USER"`
	Password string `envconfig:"XCAT_PASSWORD"`
	CAFile   string `envconfig:"XCAT_CA_FILE"`
	Insecure bool   `envconfig:"XCAT_INSECURE"`
}

// Config returns the Config these variables describe.
func (e Env) Config(log *slog.Logger) Config {
	return Config{URL: e.URL, User: e.User, Password: e.Password, CAFile: e.CAFile, Insecure: e.Insecure, Logger: log}
}

// withDefaults fills zero values.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.Poll, DefaultPoll)
	def(&c.MinStall, DefaultMinStall)
	def(&c.MinOverall, DefaultMinOverall)
	def(&c.CallTimeout, DefaultCallTimeout)
	def(&c.Backoff, DefaultBackoff)
	def(&c.MaxBackoff, DefaultMaxBackoff)
	if c.Tries <= 0 {
		c.Tries = DefaultTries
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// baseURL checks URL and adds /xcatws when it has no path.
func (c Config) baseURL() (*url.URL, error) {
	if c.URL == "" {
		return nil, errors.New("xcat: URL (LOADPOOL_XCAT_URL) is required, e.g. https://mn.example.org/xcatws")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("xcat: URL (LOADPOOL_XCAT_URL) must be https://host[:port]/xcatws, not %q", c.URL)
	}
	if u.User != nil || u.RawQuery != "" {
		return nil, errors.New("xcat: URL (LOADPOOL_XCAT_URL) must not carry credentials or a query: use LOADPOOL_XCAT_USER and LOADPOOL_XCAT_PASSWORD")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if u.Path == "" {
		u.Path = "/xcatws"
	}
	return u, nil
}

// httpClient builds the transport: the CA file, or explicit insecure.
func (c Config) httpClient() (*http.Client, error) {
	if c.CAFile != "" && c.Insecure {
		return nil, errors.New("xcat: set CA_FILE (LOADPOOL_XCAT_CA_FILE) or INSECURE (LOADPOOL_XCAT_INSECURE), not both")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.Insecure}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("xcat: CA file (LOADPOOL_XCAT_CA_FILE): %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("xcat: CA file %s (LOADPOOL_XCAT_CA_FILE) holds no PEM certificate: use the xCAT CA from http://<MN>/install/postscripts/ca/ca-cert.pem", c.CAFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	// Never follow redirects: xCAT's port-80 302 would drop PUT bodies.
	return &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}, nil
}
