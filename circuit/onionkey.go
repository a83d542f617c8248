package circuit

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

const onionKeySigContext = "pikcio-onion-key-v1"

// OnionKey is a relay's public X25519 onion key bound to its libp2p identity
// by a signature of the identity key.
type OnionKey struct {
	Public  [32]byte
	Expires time.Time
	Sig     []byte
}

func onionKeySigned(id peer.ID, pub [32]byte, expires time.Time) []byte {
	msg := make([]byte, 0, len(onionKeySigContext)+len(id)+32+8)
	msg = append(msg, onionKeySigContext...)
	msg = append(msg, id...)
	msg = append(msg, pub[:]...)
	return binary.BigEndian.AppendUint64(msg, uint64(expires.Unix()))
}

// ErrOnionKey reports an onion key that is not validly bound to its relay.
var ErrOnionKey = errors.New("onion key not valid for relay")

// Verify checks that k was signed by id's identity key and has not expired.
func (k OnionKey) Verify(id peer.ID, now time.Time) error {
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("identity key of %s: %w", id.ShortString(), ErrOnionKey)
	}
	ok, err := pub.Verify(onionKeySigned(id, k.Public, k.Expires), k.Sig)
	if err != nil || !ok {
		return fmt.Errorf("signature by %s: %w", id.ShortString(), ErrOnionKey)
	}
	if !now.Before(k.Expires) {
		return fmt.Errorf("expired %s: %w", k.Expires.UTC().Format(time.RFC3339), ErrOnionKey)
	}
	return nil
}

// onionKeyring holds a relay's current onion key and the previous one, which
// is still accepted until its grace period ends.
type onionKeyring struct {
	mu       sync.RWMutex
	id       peer.ID
	sk       crypto.PrivKey
	lifetime time.Duration
	grace    time.Duration
	path     string // where rotations are saved; "" for none
	cur      keyEntry
	prev     keyEntry
}

type keyEntry struct {
	priv      *ecdh.PrivateKey
	pub       OnionKey
	acceptTil time.Time
}

func newOnionKeyring(sk crypto.PrivKey, lifetime, grace time.Duration, now time.Time) (*onionKeyring, error) {
	kr, err := newEmptyKeyring(sk, lifetime, grace)
	if err != nil {
		return nil, err
	}
	if err := kr.rotate(now); err != nil {
		return nil, err
	}
	return kr, nil
}

func newEmptyKeyring(sk crypto.PrivKey, lifetime, grace time.Duration) (*onionKeyring, error) {
	id, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		return nil, fmt.Errorf("peer ID: %w", err)
	}
	return &onionKeyring{id: id, sk: sk, lifetime: lifetime, grace: grace}, nil
}

// rotate makes a new current key; the old one stays acceptable for the
// grace period. The keyring is saved if it has a file.
func (kr *onionKeyring) rotate(now time.Time) error {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("onion key: %w", err)
	}
	var pub [32]byte
	copy(pub[:], priv.PublicKey().Bytes())
	expires := now.Add(kr.lifetime).Truncate(time.Second)
	sig, err := kr.sk.Sign(onionKeySigned(kr.id, pub, expires))
	if err != nil {
		return fmt.Errorf("sign onion key: %w", err)
	}
	e := keyEntry{priv: priv, pub: OnionKey{Public: pub, Expires: expires, Sig: sig}, acceptTil: expires.Add(kr.grace)}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	prevCur, prevPrev := kr.cur, kr.prev
	if kr.cur.priv != nil {
		kr.prev = kr.cur
		kr.prev.acceptTil = now.Add(kr.grace)
		if kr.prev.acceptTil.After(kr.cur.acceptTil) {
			kr.prev.acceptTil = kr.cur.acceptTil
		}
	}
	kr.cur = e
	if err := kr.save(); err != nil {
		// Keep serving the keys the file still holds: a relay whose
		// disk refused the new key must not publish it.
		kr.cur, kr.prev = prevCur, prevPrev
		return err
	}
	return nil
}

func (kr *onionKeyring) current() OnionKey {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.cur.pub
}

// lookup returns the private key for pub if it is still accepted.
func (kr *onionKeyring) lookup(pub []byte, now time.Time) *ecdh.PrivateKey {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	for _, e := range []keyEntry{kr.cur, kr.prev} {
		if e.priv != nil && now.Before(e.acceptTil) && bytes.Equal(e.pub.Public[:], pub) {
			return e.priv
		}
	}
	return nil
}

// replayCache refuses a client ephemeral key seen before, and handshakes
// whose timestamp is outside the window, so that the cache stays bounded.
type replayCache struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	seen   map[[32]byte]time.Time
	order  [][32]byte
}

func newReplayCache(window time.Duration, max int) *replayCache {
	return &replayCache{window: window, max: max, seen: make(map[[32]byte]time.Time)}
}

func (c *replayCache) check(x []byte, ts, now time.Time) bool {
	// A client's time is rounded down to clockGranularity, so it may lag
	// by that much more.
	if ts.Before(now.Add(-c.window-clockGranularity)) || ts.After(now.Add(c.window)) {
		return false
	}
	var k [32]byte
	copy(k[:], x)
	c.mu.Lock()
	defer c.mu.Unlock()
	// Drop entries from the front that are out of the window, and the
	// oldest beyond the cap.
	for len(c.order) > 0 {
		old := c.order[0]
		if t, ok := c.seen[old]; ok && now.Sub(t) <= 2*c.window && len(c.order) < c.max {
			break
		}
		delete(c.seen, old)
		c.order = c.order[1:]
	}
	if _, dup := c.seen[k]; dup {
		return false
	}
	c.seen[k] = now
	c.order = append(c.order, k)
	return true
}
