package token

import (
	"crypto/ed25519"
	"fmt"
	"sync"
	"time"

	"github.com/cloudflare/circl/blindsign/blindrsa"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/tis"
)

// Redeemer is the guard side: it holds the token keys of one TIS and
// accepts each valid token made for this guard once. Its spent-token cache is bounded per key
// and dropped with the key when the key's period and grace are over, so
// memory stays at most MaxSpent entries per published key.
type Redeemer struct {
	root ed25519.PublicKey
	self peer.ID
	opts RedeemerOptions

	mu   sync.Mutex
	keys map[KeyID]*redeemKey
}

type redeemKey struct {
	key      *Key
	verifier blindrsa.Verifier
	spent    map[[seedSize]byte]struct{}
}

// NewRedeemer returns a redeemer for the guard self of tokens of the TIS
// whose root key is root. It accepts none until AddKeys.
func NewRedeemer(root ed25519.PublicKey, self peer.ID, opts RedeemerOptions) *Redeemer {
	return &Redeemer{root: root, self: self, opts: opts.withDefaults(), keys: make(map[KeyID]*redeemKey)}
}

// AddKeys adds the keys (from FetchKeys, or any copy: each is checked
// against the root) and forgets those whose period and grace ended before
// now. A key of another TIS is refused with ErrUnknownKey, a bad
// signature with tis.ErrSignature, and a key whose period overlaps a
// different known key's with ErrKeyConflict; the keys before the refused
// one are kept.
func (r *Redeemer) AddKeys(keys []*Key, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pruneLocked(now)
	for _, k := range keys {
		if err := k.Verify(r.root); err != nil {
			return err
		}
		if _, ok := r.keys[k.ID()]; ok {
			continue
		}
		for _, o := range r.keys {
			if o.key.overlaps(k) {
				return fmt.Errorf("token key %s and %s: %w", k.ID(), o.key.ID(), ErrKeyConflict)
			}
		}
		if !now.Before(k.End.Add(r.opts.Grace)) {
			continue
		}
		v, err := blindrsa.NewVerifier(variant, k.PublicKey)
		if err != nil {
			return fmt.Errorf("token key %s: %w", k.ID(), err)
		}
		r.keys[k.ID()] = &redeemKey{key: k, verifier: v, spent: make(map[[seedSize]byte]struct{})}
	}
	return nil
}

func (r *Redeemer) pruneLocked(now time.Time) {
	for id, k := range r.keys {
		if !now.Before(k.key.End.Add(r.opts.Grace)) {
			delete(r.keys, id)
		}
	}
}

// Redeem checks an encoded token at now and marks it spent. A token is
// good from tis.DefaultMaxClockSkew before its key's period (a client's
// clock may be ahead) to Grace after it. It returns
// ErrMalformed, ErrUnknownKey (a key this TIS did not publish, e.g. a
// token of another TIS), ErrNotYetValid, ErrExpired, ErrForged (also for
// a token made for another guard), ErrSpent or ErrCacheFull, wrapped. A refused token is not marked spent.
func (r *Redeemer) Redeem(b []byte, now time.Time) error {
	t, err := DecodeToken(b)
	if err != nil {
		return err
	}
	r.mu.Lock()
	k, ok := r.keys[t.Key]
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("token of key %s: %w", t.Key, ErrUnknownKey)
	}
	switch {
	case now.Add(tis.DefaultMaxClockSkew).Before(k.key.Start):
		return fmt.Errorf("token of key %s, valid from %s: %w", t.Key, k.key.Start, ErrNotYetValid)
	case !now.Before(k.key.End.Add(r.opts.Grace)):
		return fmt.Errorf("token of key %s, valid until %s: %w", t.Key, k.key.End, ErrExpired)
	}
	// The RSA check runs outside the lock: guards verify in parallel.
	if err := k.verifier.Verify(message(t.Key, r.self, t.Seed[:]), t.Signature); err != nil {
		return fmt.Errorf("token of key %s: %w", t.Key, ErrForged)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, spent := k.spent[t.Seed]; spent {
		return fmt.Errorf("token of key %s: %w", t.Key, ErrSpent)
	}
	if len(k.spent) >= r.opts.MaxSpent {
		return fmt.Errorf("token of key %s: %d spent: %w", t.Key, len(k.spent), ErrCacheFull)
	}
	k.spent[t.Seed] = struct{}{}
	return nil
}

// Keys returns the number of keys held and of tokens spent under them.
func (r *Redeemer) Keys() (keys, spent int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.keys {
		spent += len(k.spent)
	}
	return len(r.keys), spent
}
