package tis

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/pikcio/pikcio/internal/privfile"
)

// Files of a TIS directory, all mode 0600 in a directory of mode 0700.
const (
	// RootKeyFile holds the root Ed25519 private key (64 raw bytes).
	RootKeyFile = "root.key"
	// SecretFile holds the 32-byte secret of the keyed hashes.
	SecretFile = "hash.secret"
	// StateFile held the state of TIS versions before the database
	// (DBFile); a server migrates it on its first start (ConfirmMigration).
	StateFile = "state.json"
)

const secretSize = 32

// Root is an opened TIS directory: the root signing key and the secret of
// the keyed hashes.
type Root struct {
	dir    string
	key    ed25519.PrivateKey
	secret []byte
}

// Init creates a TIS in dir (created if missing, and made mode 0700): a new
// root key and a new secret, each 0600. It refuses, with ErrExists, a directory that
// already holds either, or a state file. It returns the root public key,
// which nodes pin.
func Init(dir string) (ed25519.PublicKey, error) { return InitWithSecret(dir, "") }

// InitWithSecret is Init with the secret written to secretFile (mode 0600,
// never overwritten) instead of SecretFile in dir, so that it can be kept
// apart from the directory ("" is the directory's).
func InitWithSecret(dir, secretFile string) (ed25519.PublicKey, error) {
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("init %s: %w", dir, err)
	}
	for _, name := range []string{RootKeyFile, SecretFile, StateFile, DBFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("init %s: %s: %w", dir, name, ErrExists)
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate root key: %w", err)
	}
	secret := make([]byte, secretSize)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("generate secret: %w", err)
	}
	keyPath := filepath.Join(dir, RootKeyFile)
	if err := privfile.Create(keyPath, priv); err != nil {
		if errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("init %s: %w", dir, ErrExists)
		}
		return nil, err
	}
	if secretFile == "" {
		secretFile = filepath.Join(dir, SecretFile)
	}
	if err := privfile.Create(secretFile, secret); err != nil {
		os.Remove(keyPath)
		if errors.Is(err, fs.ErrExist) {
			err = fmt.Errorf("init %s: %w", dir, ErrExists)
		}
		return nil, err
	}
	return pub, nil
}

// Open loads the root key and secret of the TIS in dir.
func Open(dir string) (*Root, error) { return OpenWithSecret(dir, "", nil) }

// OpenWithSecret loads the root key of the TIS in dir and its secret: the
// bytes secret if given, else the file secretFile (mode 0600), else
// SecretFile in dir. Keeping the secret apart means a stolen directory
// does not let anyone test guessed e-mails against its hashes.
func OpenWithSecret(dir, secretFile string, secret []byte) (*Root, error) {
	key, err := OpenKey(dir)
	if err != nil {
		return nil, err
	}
	if secret == nil {
		if secretFile == "" {
			secretFile = filepath.Join(dir, SecretFile)
		}
		if secret, err = readPrivate(secretFile, secretSize); err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
	}
	if len(secret) != secretSize {
		return nil, fmt.Errorf("secret: %d bytes, want %d: %w", len(secret), secretSize, ErrMalformed)
	}
	return &Root{dir: dir, key: key, secret: secret}, nil
}

// OpenKey loads the root private key of the TIS in dir, without the
// secret (which may be kept elsewhere): what signing attestations and seed
// lists needs.
func OpenKey(dir string) (ed25519.PrivateKey, error) {
	key, err := readPrivate(filepath.Join(dir, RootKeyFile), ed25519.PrivateKeySize)
	if err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	if len(key) != ed25519.PrivateKeySize ||
		!bytes.Equal(ed25519.NewKeyFromSeed(key[:ed25519.SeedSize]), key) {
		return nil, fmt.Errorf("root key in %s: %w", dir, ErrMalformed)
	}
	return ed25519.PrivateKey(key), nil
}

// PublicKey returns the root public key.
func (r *Root) PublicKey() ed25519.PublicKey {
	return r.key.Public().(ed25519.PublicKey)
}

// Dir returns the TIS directory.
func (r *Root) Dir() string { return r.dir }

// FormatKey returns the text form of a root public key, for printing and
// for --tis-key / config: standard base64 of the 32 raw bytes.
func FormatKey(pub ed25519.PublicKey) string {
	return base64.StdEncoding.EncodeToString(pub)
}

// ParseKey parses the text form of FormatKey (surrounding white space is
// ignored).
func ParseKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("TIS key %q: want base64 of %d bytes: %w", s, ed25519.PublicKeySize, ErrMalformed)
	}
	return ed25519.PublicKey(b), nil
}
