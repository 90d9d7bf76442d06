package devlab_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/loadpool/loadpool/devlab"
	"github.com/loadpool/loadpool/devlab/labtest"
	"golang.org/x/crypto/ssh"
)

// NewSigner makes a new ed25519 key each time.
func TestNewSigner(t *testing.T) {
	t.Parallel()
	a, b := labtest.Signer(t), labtest.Signer(t)
	if a.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Fatalf("key type %s, want ed25519", a.PublicKey().Type())
	}
	if bytes.Equal(a.PublicKey().Marshal(), b.PublicKey().Marshal()) {
		t.Fatal("two signers share one key")
	}
}

// WriteKey's file is an unencrypted private key, readable only by its
// owner, of the signer it returns; an unwritable path is an error.
func TestWriteKey(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "id_ed25519")
	s, err := devlab.WriteKey(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	read, err := ssh.ParsePrivateKey(data)
	if err != nil || !bytes.Equal(read.PublicKey().Marshal(), s.PublicKey().Marshal()) {
		t.Fatalf("the file holds another key (%v)", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	if _, err := devlab.WriteKey(filepath.Join(t.TempDir(), "missing", "key")); err == nil {
		t.Fatal("writing into a missing directory did not fail")
	}
}
