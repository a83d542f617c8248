// Package datadir is a node's data directory: created with mode 0700,
// locked while a node runs (LockFile), and holding the node's libp2p
// identity (IdentityFile), an Ed25519 key created on first run with mode
// 0600 and reused afterwards. A key file that others can read is refused
// (ErrPermissions).
package datadir

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"

	"github.com/pikcio/pikcio/internal/filelock"
	"github.com/pikcio/pikcio/internal/privfile"
)

const (
	// IdentityFile is the name of the node's libp2p identity key in its
	// data directory: a libp2p-marshalled Ed25519 private key, mode 0600.
	IdentityFile = "identity.key"
	// LockFile is locked while a node runs, so that two processes never
	// share an identity and its state.
	LockFile = "lock"
)

// maxKeyFile bounds what is read as a key file.
const maxKeyFile = 4 << 10

var (
	// ErrPermissions reports an identity key file that others may read.
	ErrPermissions = privfile.ErrPermissions
	// ErrInUse reports a data directory another process holds (Lock).
	ErrInUse = errors.New("data directory in use by another pikcio process")
)

// Prepare creates dir with mode 0700 if it does not exist, and refuses a
// path that is not a directory. An existing directory keeps its mode, but
// the warning says when others can enter it.
func Prepare(dir string) (warn string, err error) {
	perm, err := privfile.EnsureDir(dir)
	if err != nil {
		return "", fmt.Errorf("data directory: %w", err)
	}
	if perm&0o077 != 0 {
		return fmt.Sprintf("data directory %s has mode %04o; 0700 keeps its keys private", dir, perm), nil
	}
	return "", nil
}

// Lock takes an exclusive lock on dir's LockFile, so that two nodes never
// run with the same identity and state (ErrInUse). The lock ends with the
// process or with release. Where flock is not available it does nothing.
func Lock(dir string) (release func(), err error) {
	release, err = filelock.TryLock(filepath.Join(dir, LockFile))
	if errors.Is(err, filelock.ErrLocked) {
		return nil, fmt.Errorf("%w: %s", ErrInUse, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return release, nil
}

// Identity reads the identity key in dir, or creates it on first run
// (created). The key file is created with mode 0600 and never replaced:
// two nodes starting at once in the same directory end up with the same
// key. dir must exist (Prepare).
func Identity(dir string) (k crypto.PrivKey, created bool, err error) {
	path := filepath.Join(dir, IdentityFile)
	k, err = readIdentity(path)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	k, _, err = crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("generate identity key: %w", err)
	}
	b, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, false, fmt.Errorf("encode identity key: %w", err)
	}
	if err := privfile.Create(path, b); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process made it first: use that one.
			k, err := readIdentity(path)
			return k, false, err
		}
		return nil, false, err
	}
	return k, true, nil
}

func readIdentity(path string) (crypto.PrivKey, error) {
	b, err := privfile.Read(path, maxKeyFile)
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	k, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("identity key %s: %w", path, err)
	}
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("identity key %s: %s key, want Ed25519", path, k.Type())
	}
	return k, nil
}

// LoadOrCreateIdentity returns the node identity key in the data
// directory dir, creating the directory (mode 0700) and the key (mode
// 0600) if the node never ran: what `pikcio enroll` certifies.
func LoadOrCreateIdentity(dir string) (crypto.PrivKey, error) {
	if _, err := Prepare(dir); err != nil {
		return nil, err
	}
	k, _, err := Identity(dir)
	return k, err
}
