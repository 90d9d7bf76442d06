package control_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loadpool/loadpool/osworker/control"
	"golang.org/x/crypto/ssh"
)

func writeKey(t *testing.T, key any, passphrase string) string {
	t.Helper()
	var blk *pem.Block
	var err error
	if passphrase == "" {
		blk, err = ssh.MarshalPrivateKey(key, "")
	} else {
		blk, err = ssh.MarshalPrivateKeyWithPassphrase(key, "", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "id")
	if err := os.WriteFile(p, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadSigner(t *testing.T) {
	t.Parallel()
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, wantErr, keyType string
	}{
		{name: "ed25519", path: writeKey(t, ed, ""), keyType: ssh.KeyAlgoED25519},
		{name: "rsa", path: writeKey(t, rsaKey, ""), keyType: ssh.KeyAlgoRSA},
		{name: "encrypted", path: writeKey(t, ed, "secret"), wantErr: "encrypted"},
		{name: "garbage", path: garbage, wantErr: "not a private key"},
		{name: "missing", path: filepath.Join(t.TempDir(), "none"), wantErr: "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := control.LoadSigner(tc.path)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "PRIVATE KEY") {
					t.Fatalf("err = %v, want %q and no key material", err, tc.wantErr)
				}
				return
			}
			if err != nil || s.PublicKey().Type() != tc.keyType {
				t.Fatalf("signer %v, %v", s, err)
			}
		})
	}
	t.Run("rsa client logs in", func(t *testing.T) {
		s, err := control.LoadSigner(tests[1].path)
		if err != nil {
			t.Fatal(err)
		}
		c := upComputer(t, s, nil)
		conn, err := dialer(t, s, 5*time.Second).Dial(context.Background(),
			control.Target{Address: c.Addr(), Computer: "vm-1", HostKey: learning()})
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
	})
	if _, err := control.NewSSHDialer(control.SSHConfig{}); err == nil || !strings.Contains(err.Error(), "LOADPOOL_SSH_KEY") {
		t.Fatalf("no key = %v", err)
	}
}
