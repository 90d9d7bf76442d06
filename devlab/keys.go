package devlab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"

	"golang.org/x/crypto/ssh"
)

// NewSigner makes a new ed25519 key: the client key a test or the demo
// gives the OS workers, whose public half the simulated computers
// authorize (Config.Authorized = s.PublicKey()). Computers make their host
// keys with it too.
func NewSigner() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(priv)
}

// WriteKey makes a new ed25519 client key, writes its private half to path
// (OpenSSH PEM, no passphrase, mode 0600: what LOADPOOL_SSH_KEY names) and
// returns its signer.
func WriteKey(path string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("devlab: writing the client key: %w", err)
	}
	return ssh.NewSignerFromKey(priv)
}
