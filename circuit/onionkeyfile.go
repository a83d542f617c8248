package circuit

import (
	"crypto/ecdh"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/pikcio/pikcio/internal/privfile"
)

// OnionKeysFile is the usual name of a relay's onion key file in its data
// directory (RelayOptions.OnionKeyFile).
const OnionKeysFile = "onion-keys.json"

const onionKeyFileVersion = 1

// ErrOnionKeyFile reports an onion key file that cannot be used.
var ErrOnionKeyFile = errors.New("bad onion key file")

// onionKeyFile is the on-disk form of a keyring: the current key first,
// then the previous one. Signatures are not stored: they are made again
// with the identity key on load, so the file can only ever serve the
// identity that loads it.
type onionKeyFile struct {
	Version int               `json:"version"`
	Keys    []onionKeyFileKey `json:"keys"`
}

type onionKeyFileKey struct {
	Private     []byte    `json:"private"` // X25519 scalar
	Expires     time.Time `json:"expires"`
	AcceptUntil time.Time `json:"accept_until"`
}

// openOnionKeyring returns the keyring kept in path ("" keeps it in memory
// only): the keys stored there if the current one is still valid at now,
// else a fresh current key (the stored one staying acceptable as the
// previous key while its grace lasts). Every rotation is saved to path,
// mode 0600, so that a relay that restarts keeps the keys its published
// descriptor names.
func openOnionKeyring(sk crypto.PrivKey, lifetime, grace time.Duration, now time.Time, path string) (*onionKeyring, error) {
	if path == "" {
		return newOnionKeyring(sk, lifetime, grace, now)
	}
	kr, err := loadOnionKeyring(sk, lifetime, grace, path)
	if err != nil {
		return nil, err
	}
	kr.path = path
	if kr.cur.priv != nil && now.Before(kr.cur.pub.Expires) {
		// Drop a previous key whose grace ended.
		if kr.prev.priv != nil && !now.Before(kr.prev.acceptTil) {
			kr.prev = keyEntry{}
		}
		return kr, nil
	}
	if kr.cur.priv != nil && !now.Before(kr.cur.acceptTil) {
		kr.cur = keyEntry{}
	}
	if err := kr.rotate(now); err != nil {
		return nil, err
	}
	return kr, nil
}

// loadOnionKeyring reads path; a missing file gives an empty keyring.
func loadOnionKeyring(sk crypto.PrivKey, lifetime, grace time.Duration, path string) (*onionKeyring, error) {
	kr, err := newEmptyKeyring(sk, lifetime, grace)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return kr, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read onion keys: %w", err)
	}
	var f onionKeyFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("parse %s: %w: %w", path, ErrOnionKeyFile, err)
	}
	if f.Version != onionKeyFileVersion || len(f.Keys) == 0 || len(f.Keys) > 2 {
		return nil, fmt.Errorf("%s: version %d with %d keys: %w", path, f.Version, len(f.Keys), ErrOnionKeyFile)
	}
	entries := make([]keyEntry, len(f.Keys))
	for i, k := range f.Keys {
		e, err := kr.entry(k)
		if err != nil {
			return nil, fmt.Errorf("%s: key %d: %w: %w", path, i, ErrOnionKeyFile, err)
		}
		entries[i] = e
	}
	kr.cur = entries[0]
	if len(entries) > 1 {
		kr.prev = entries[1]
	}
	return kr, nil
}

// entry rebuilds a stored key and signs it again.
func (kr *onionKeyring) entry(k onionKeyFileKey) (keyEntry, error) {
	priv, err := ecdh.X25519().NewPrivateKey(k.Private)
	if err != nil {
		return keyEntry{}, err
	}
	var pub [32]byte
	copy(pub[:], priv.PublicKey().Bytes())
	expires := k.Expires.Truncate(time.Second)
	sig, err := kr.sk.Sign(onionKeySigned(kr.id, pub, expires))
	if err != nil {
		return keyEntry{}, fmt.Errorf("sign onion key: %w", err)
	}
	return keyEntry{priv: priv, pub: OnionKey{Public: pub, Expires: expires, Sig: sig}, acceptTil: k.AcceptUntil}, nil
}

// save writes the keyring to its file, if it has one. The caller holds kr.mu.
func (kr *onionKeyring) save() error {
	if kr.path == "" {
		return nil
	}
	var f onionKeyFile
	f.Version = onionKeyFileVersion
	for _, e := range []keyEntry{kr.cur, kr.prev} {
		if e.priv == nil {
			continue
		}
		f.Keys = append(f.Keys, onionKeyFileKey{Private: e.priv.Bytes(), Expires: e.pub.Expires.UTC(), AcceptUntil: e.acceptTil.UTC()})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode onion keys: %w", err)
	}
	if err := privfile.Replace(kr.path, append(b, '\n')); err != nil {
		return fmt.Errorf("save onion keys: %w", err)
	}
	return nil
}
