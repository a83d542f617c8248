package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/token"
	"github.com/pikcio/pikcio/web"
)

// WalletFile in the data directory holds the client's unspent admission
// tokens (mode 0600).
const WalletFile = "tokens.bin"

// admission is the node's token.Admission: a client's wallet, a relay's
// guard (tis.require), refusing with circuit's DESTROY reasons.
type admission token.Admission

func newAdmission(a *tis.Agent, dir string, priv crypto.PrivKey, self peer.ID, client, relay, require bool) (*admission, error) {
	cfg := token.AdmissionConfig{NodeKey: priv, Self: self, Client: client, Guard: relay && require,
		WalletFile: filepath.Join(dir, WalletFile),
		Refusals:   token.Refusals{Missing: circuit.ErrTokenMissing, Spent: circuit.ErrTokenSpent, Invalid: circuit.ErrTokenInvalid}}
	if a != nil {
		cfg.URL, cfg.Root, cfg.NodeCert, cfg.AdmitRelay = a.URL(), a.Root(), a.Enrollment().NodeCert, a.AdmitPeer
	}
	ad, err := token.NewAdmission(cfg)
	return (*admission)(ad), err
}

func (ad *admission) t() *token.Admission { return (*token.Admission)(ad) }

func (ad *admission) take(ctx context.Context, g peer.ID) ([]byte, error) { return ad.t().Take(ctx, g) }
func (ad *admission) admit(ctx context.Context, p peer.ID, t []byte) error {
	return ad.t().Admit(ctx, p, t)
}
func (ad *admission) state() *token.WalletState { return ad.t().State() }
func (ad *admission) close() error              { return ad.t().Close() }

// webState is the wallet's state for the status page, nil without one.
func (ad *admission) webState() *web.Tokens {
	s := ad.t().State()
	if s == nil {
		return nil
	}
	t := &web.Tokens{Held: s.Tokens, Guards: s.Guards, Remaining: s.Remaining, Refilling: s.Refilling}
	if s.LastError != nil {
		t.LastError = s.LastError.Error()
	}
	return t
}

// newCircuitHost starts the libp2p host a client builds its circuits
// from: a fresh identity at every start, never the node's identity.key
// (which its DHT and trust traffic use), listening nowhere and serving
// no protocol of its own, so that a guard sees a peer ID that nothing
// else carries and that changes with each start (a Tor client's guard
// sees only its address, too). listen is the node's listen addresses,
// for the gater's private-address rule only.
func newCircuitHost(listen []string, ro circuit.RelayOptions) (host.Host, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("circuit identity: %w", err)
	}
	h, err := circuit.NewDialHost(priv, listen, ro, libp2p.DisableMetrics())
	if err != nil {
		return nil, fmt.Errorf("circuit host: %w", err)
	}
	return h, nil
}
