package tis

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/pikcio/pikcio/internal/wire"
)

// PathTokens prefixes the admission token API of package tis/token. A
// Server answers 404 under it until MountTokens gives it a handler.
const PathTokens = "/v1/tokens/"

// tokenKeyContext separates the root's signatures of admission token keys
// from its other signatures: SignTokenKey can sign nothing that verifies
// as a certificate, a revocation list or a relay score.
var tokenKeyContext = []byte("pikcio-tis-token-key-v1\x00")

// tokenMount serves PathTokens with the handler MountTokens set.
type tokenMount struct{ h atomic.Pointer[http.Handler] }

func (m *tokenMount) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := m.h.Load()
	if h == nil {
		http.Error(w, "admission tokens are not issued here", http.StatusNotFound)
		return
	}
	(*h).ServeHTTP(w, r)
}

// MountTokens serves h (the issuer of package tis/token) for every path
// under PathTokens. It may be called while the server is serving; a later
// call replaces the handler.
func (s *Server) MountTokens(h http.Handler) { s.tokens.h.Store(&h) }

// SignTokenKey signs the encoding of an admission token key publication
// with the root key, under a context string of its own (see
// VerifyTokenKey).
func (s *Server) SignTokenKey(body []byte) []byte {
	return wire.Sign(s.root.key, tokenKeyContext, body)
}

// VerifyTokenKey checks that root signed body with SignTokenKey. It
// returns ErrSignature (wrapped) otherwise.
func VerifyTokenKey(root ed25519.PublicKey, body, sig []byte) error {
	if !wire.Verify(root, tokenKeyContext, body, sig) {
		return fmt.Errorf("token key: %w", ErrSignature)
	}
	return nil
}

// Labels of the keyed hashes of the admission token state.
const (
	labelTokenSeal  = "pikcio-tis/v1/token-key-seal"
	labelTokenCount = "pikcio-tis/v1/token-count"
)

// tokenKeyAAD binds a sealed token key to its TIS and period: a row
// copied to another period or another TIS's database does not open.
func (s *Server) tokenKeyAAD(span, period int64) []byte {
	id := RootKeyID(s.root.PublicKey())
	b := append([]byte("pikcio-tis-token-key-seal-v1\x00"), id[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(span))
	return binary.BigEndian.AppendUint64(b, uint64(period))
}

func (s *Server) tokenSealer() (cipher.AEAD, error) {
	k := keyedHash(s.root.secret, labelTokenSeal)
	c, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(c)
}

// sealTokenKey encrypts a token private key (AES-256-GCM under a key
// derived from the secret): a copy of the database alone cannot issue.
func (s *Server) sealTokenKey(span, period int64, key []byte) ([]byte, error) {
	aead, err := s.tokenSealer()
	if err != nil {
		return nil, fmt.Errorf("seal token key: %w", err)
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(key)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal token key: %w", err)
	}
	return aead.Seal(nonce, nonce, key, s.tokenKeyAAD(span, period)), nil
}

func (s *Server) openTokenKey(span, period int64, sealed []byte) ([]byte, error) {
	aead, err := s.tokenSealer()
	if err != nil {
		return nil, fmt.Errorf("open token key: %w", err)
	}
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("token key of period %d: %d bytes: %w", period, len(sealed), ErrMalformed)
	}
	key, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], s.tokenKeyAAD(span, period))
	if err != nil {
		return nil, fmt.Errorf("token key of period %d (another secret?): %w: %w", period, ErrSignature, err)
	}
	return key, nil
}

// TokenKey returns the admission token private key of period number
// period of span (as generate encodes it), from the store. A period
// without a key gets the one generate makes, unless generate is nil (then
// TokenKey returns nil): the first server to need it stores it, and the
// servers that raced it read the stored one, so all servers of one
// database sign a period with one key. The key is stored sealed under a
// key derived from the secret. Storing a new period's key deletes the
// keys and counts of periods before the one before it.
func (s *Server) TokenKey(ctx context.Context, span time.Duration, period int64, generate func() ([]byte, error)) ([]byte, error) {
	sp := int64(span / time.Second)
	read := func() ([]byte, error) {
		var sealed []byte
		err := s.store.Update(ctx, func(tx Tx) error {
			var err error
			sealed, err = tx.TokenKey(sp, period)
			return err
		})
		if err != nil || sealed == nil {
			return nil, err
		}
		return s.openTokenKey(sp, period, sealed)
	}
	key, err := read()
	if err != nil || key != nil || generate == nil {
		return key, err
	}
	// Generated outside the transaction (an RSA key takes a while): the
	// loser of a race throws its key away.
	fresh, err := generate()
	if err != nil {
		return nil, err
	}
	sealed, err := s.sealTokenKey(sp, period, fresh)
	if err != nil {
		return nil, err
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		stored, err := tx.PutTokenKey(sp, period, sealed)
		if err != nil || !stored {
			return err
		}
		if err := tx.DeleteTokenKeys(sp, period-2); err != nil {
			return err
		}
		return tx.DeleteTokenCounts(period - 2)
	})
	if err != nil {
		return nil, fmt.Errorf("store token key: %w", err)
	}
	return read()
}

// tokenCountKey names the count of enrollment in period: a keyed hash, so
// that a stolen table joins no enrollment's rows across periods, nor to a
// node ID.
func (s *Server) tokenCountKey(enrollment ID, period int64) string {
	return hexHash(keyedHash(s.root.secret, labelTokenCount, binary.BigEndian.AppendUint64(nil, uint64(period)), enrollment[:]))
}

// TakeTokens grants up to want more admission tokens to enrollment in
// period without passing limit in total, in one transaction of the
// store, and returns how many it granted and how many remain: servers
// sharing a database share the count, and a restart keeps it.
func (s *Server) TakeTokens(ctx context.Context, enrollment ID, period int64, want, limit int) (granted, remaining int, err error) {
	k := s.tokenCountKey(enrollment, period)
	err = s.store.Update(ctx, func(tx Tx) error {
		used, exists, err := tx.TokenCount(k)
		if err != nil {
			return err
		}
		granted = min(max(want, 0), max(limit-used, 0))
		remaining = max(limit-used-granted, 0)
		if granted == 0 {
			return nil
		}
		return tx.PutTokenCount(k, period, used+granted, exists)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("count tokens: %w", err)
	}
	return granted, remaining, nil
}
