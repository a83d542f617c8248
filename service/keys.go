package service

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/pikcio/pikcio/internal/privfile"
)

// Keys of a node's services, kept in a directory of its own (KeyDir):
// NAME.key holds the 32-byte seed of service NAME's Identity, so its
// address stays the same across restarts; ClientKeyFile the node's X25519
// key for its contacts' contacts-only services. Both mode 0600.
const (
	// ServicesDir is the directory in a node's data directory.
	ServicesDir = "services"
	// ClientKeyFile is the client key's file in it.
	ClientKeyFile = "client.key"
	// keySuffix ends the file of a service's key.
	keySuffix = ".key"
	// MaxNameLen bounds a service's name, well below an address's 56
	// characters, so a name is never taken for an address under .pikcio.
	MaxNameLen = 40
)

// ErrBadName: a service name that is not a lower-case DNS label.
var ErrBadName = errors.New("a service name is 1 to 40 of a-z, 0-9 and '-', not starting or ending with '-'")

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// CheckName checks a service's name: it names a key file and is reached
// as NAME.pikcio, so it is one lower-case DNS label ("client" is taken by
// the client key).
func CheckName(name string) error {
	if len(name) > MaxNameLen || !nameRE.MatchString(name) || name+keySuffix == ClientKeyFile {
		return fmt.Errorf("%q: %w", name, ErrBadName)
	}
	return nil
}

// KeyDir is a directory of service keys ("": none; every key is then
// fresh and forgotten on exit).
type KeyDir string

// KeyDirOf is the KeyDir of a node's data directory ("" for none).
func KeyDirOf(dataDir string) KeyDir {
	if dataDir == "" {
		return ""
	}
	return KeyDir(filepath.Join(dataDir, ServicesDir))
}

// secret returns the 32 secret bytes in file, made with fresh the first
// time. Two processes creating the same file at once end with one key.
func (d KeyDir) secret(file string, fresh func() ([]byte, error)) ([]byte, error) {
	if d == "" {
		return fresh()
	}
	if _, err := privfile.EnsureDir(string(d)); err != nil {
		return nil, fmt.Errorf("service keys: %w", err)
	}
	path := filepath.Join(string(d), file)
	for range 2 {
		b, err := privfile.Read(path, 64)
		if !errors.Is(err, os.ErrNotExist) {
			if err != nil {
				return nil, fmt.Errorf("service key %s: %w", file, err)
			}
			return b, nil
		}
		if b, err = fresh(); err != nil {
			return nil, err
		}
		err = privfile.Create(path, b)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("service key %s: %w", file, err)
		}
	}
	return nil, fmt.Errorf("service key %s: created and removed at once", file)
}

// Identity loads or creates the key of service name.
func (d KeyDir) Identity(name string) (*Identity, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	seed, err := d.secret(name+keySuffix, func() ([]byte, error) {
		id, err := NewIdentity(rand.Reader)
		if err != nil {
			return nil, err
		}
		return id.Seed(), nil
	})
	if err != nil {
		return nil, err
	}
	return IdentityFromSeed(seed)
}

// ClientKey loads or creates the node's client key.
func (d KeyDir) ClientKey() (*ecdh.PrivateKey, error) {
	b, err := d.secret(ClientKeyFile, func() ([]byte, error) {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return k.Bytes(), nil
	})
	if err != nil {
		return nil, err
	}
	k, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("service client key: %w", err)
	}
	return k, nil
}

// Local is a service whose key a KeyDir holds.
type Local struct {
	Name    string
	Address Address
}

// List lists the services whose keys d holds, by name (`pikcio service
// list`: the node need not run).
func (d KeyDir) List() ([]Local, error) {
	if d == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(string(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	var out []Local
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), keySuffix)
		if !ok || e.Name() == ClientKeyFile || CheckName(name) != nil {
			continue
		}
		seed, err := privfile.Read(filepath.Join(string(d), e.Name()), 64)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		id, err := IdentityFromSeed(seed)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		out = append(out, Local{Name: name, Address: id.Address()})
	}
	return out, nil
}

// Card is what a node tells a new contact in the invite exchange: the
// address of its first service (zero: none) and its client key, so the
// contact can reach it by name and admit it to contacts-only services.
type Card struct {
	Address   Address
	ClientKey [32]byte
}

// Card is the card of d's node whose first service is first ("": none),
// for an exchange made without the node running (`pikcio contacts
// accept`): the same card the running node presents.
func (d KeyDir) Card(first string) (Card, error) {
	k, err := d.ClientKey()
	if err != nil {
		return Card{}, err
	}
	var c Card
	copy(c.ClientKey[:], k.PublicKey().Bytes())
	if first != "" {
		id, err := d.Identity(first)
		if err != nil {
			return Card{}, err
		}
		c.Address = id.Address()
	}
	return c, nil
}
