package tis

import (
	"crypto/ed25519"
	"fmt"
	"net/http"
	"sync/atomic"

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
