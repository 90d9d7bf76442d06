package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// runCerts makes a private CA for a lab (or reuses the one in --dir) and
// signs a certificate for each NATS server host (server and route
// authentication) and each client name (for servers that verify clients).
func runCerts(_ context.Context, args []string, stdout io.Writer) error {
	fs := flags(stdout, "certs", "--dir DIR --host NAME[,NAME...] [--client NAME[,NAME...]] [--days N]",
		"Make a private CA (ca.pem, ca-key.pem; an existing one in DIR is reused) and sign a certificate for each\n"+
			"NATS server host (HOST.pem, HOST-key.pem: server and route TLS) and each client (client-NAME.pem).\n"+
			"Point nats-server's LOADPOOL_NATS_TLS_* and loadpool's LOADPOOL_NATS_CA/CERT/KEY at them (deploy/README.md).")
	dir := fs.String("dir", "", "directory for the files (created, mode 0700)")
	hosts := fs.String("host", "", "server host names or IP addresses, comma-separated (one certificate each)")
	clients := fs.String("client", "", "client names, comma-separated (one client certificate each)")
	days := fs.Int("days", 825, "validity of the new certificates in days")
	if err := parse(fs, args, 0); err != nil {
		return err
	}
	if *dir == "" || *hosts == "" && *clients == "" {
		return fmt.Errorf("%w: give --dir and at least one --host or --client", errUsage)
	}
	if *days < 1 || *days > 3650 {
		return fmt.Errorf("%w: --days must be 1 to 3650, not %d", errUsage, *days)
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("certificate directory: %v", err)
	}
	ca, err := loadOrMakeCA(*dir)
	if err != nil {
		return err
	}
	validity := time.Duration(*days) * 24 * time.Hour
	for _, h := range splitList(*hosts) {
		if err := ca.issue(*dir, h, h, validity, true); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "server %s: %s, %s\n", h, filepath.Join(*dir, h+".pem"), filepath.Join(*dir, h+"-key.pem"))
	}
	for _, c := range splitList(*clients) {
		if err := ca.issue(*dir, "client-"+c, c, validity, false); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "client %s: %s\n", c, filepath.Join(*dir, "client-"+c+".pem"))
	}
	fmt.Fprintf(stdout, "CA: %s (give it to every server and client; keep ca-key.pem off the servers)\n", filepath.Join(*dir, "ca.pem"))
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

type certAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// loadOrMakeCA reads ca.pem and ca-key.pem from dir, or makes them.
func loadOrMakeCA(dir string) (*certAuthority, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if errors.Is(err, fs.ErrNotExist) {
		return makeCA(dir)
	}
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "ca-key.pem"))
	if err != nil {
		return nil, fmt.Errorf("%s exists but its key does not (%v): move ca.pem away to make a new CA", filepath.Join(dir, "ca.pem"), err)
	}
	cb, kb := pemBytes(certPEM, "CERTIFICATE"), pemBytes(keyPEM, "EC PRIVATE KEY")
	cert, err := x509.ParseCertificate(cb)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, "ca.pem"), err)
	}
	key, err := x509.ParseECPrivateKey(kb)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", filepath.Join(dir, "ca-key.pem"), err)
	}
	return &certAuthority{cert: cert, key: key}, nil
}

func pemBytes(b []byte, typ string) []byte {
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return nil
		}
		if blk.Type == typ {
			return blk.Bytes
		}
	}
}

func makeCA(dir string) (*certAuthority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "loadpool lab CA", Organization: []string{"loadpool"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	if err := writePEM(filepath.Join(dir, "ca-key.pem"), "EC PRIVATE KEY", mustMarshalEC(key), 0o600); err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, "ca.pem"), "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return &certAuthority{cert: cert, key: key}, nil
}

// issue writes file.pem and file-key.pem: a certificate for name, for
// servers (host name or IP in the SAN; server and client use, since a
// route is both) or for clients.
func (ca *certAuthority) issue(dir, file, name string, validity time.Duration, server bool) error {
	if strings.ContainsAny(name, "/\\ ") || strings.HasPrefix(name, "-") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("%q is not a host or client name", name)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: name, Organization: []string{"loadpool"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		if ip := net.ParseIP(name); ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		} else {
			tmpl.DNSNames = []string{name}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, file+"-key.pem"), "EC PRIVATE KEY", mustMarshalEC(key), 0o600); err != nil {
		return err
	}
	return writePEM(filepath.Join(dir, file+".pem"), "CERTIFICATE", der, 0o644)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func mustMarshalEC(k *ecdsa.PrivateKey) []byte {
	b, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		panic(err) // a P-256 key always marshals
	}
	return b
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	b := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, b, mode); err != nil {
		return fmt.Errorf("write %s: %v", path, err)
	}
	return nil
}
