package node

import (
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/token"
	"github.com/pikcio/pikcio/web"
)

// WalletFile in the data directory holds the client's unspent admission
// tokens (mode 0600).
const WalletFile = "tokens.bin"

// newAdmission is the node's token.Admission: a client's wallet, a
// relay's guard (tis.require), refusing with circuit's DESTROY reasons.
func newAdmission(a *tis.Agent, dir string, priv crypto.PrivKey, self peer.ID, client, relay, require bool) (*token.Admission, error) {
	cfg := token.AdmissionConfig{NodeKey: priv, Self: self, Client: client, Guard: relay && require,
		WalletFile: filepath.Join(dir, WalletFile),
		Refusals:   token.Refusals{Missing: circuit.ErrTokenMissing, Spent: circuit.ErrTokenSpent, Invalid: circuit.ErrTokenInvalid}}
	if a != nil {
		cfg.URL, cfg.Root, cfg.NodeCert, cfg.AdmitRelay = a.URL(), a.Root(), a.Enrollment().NodeCert, a.AdmitPeer
	}
	return token.NewAdmission(cfg)
}

// tokensState is the wallet's state for the status page, nil without one.
func tokensState(ad *token.Admission) *web.Tokens {
	s := ad.State()
	if s == nil {
		return nil
	}
	t := &web.Tokens{Held: s.Tokens, Guards: s.Guards, Remaining: s.Remaining, Refilling: s.Refilling}
	if s.LastError != nil {
		t.LastError = s.LastError.Error()
	}
	return t
}
