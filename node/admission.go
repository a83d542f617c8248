package node

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/token"
	"github.com/pikcio/pikcio/web"
)

// WalletFile in the data directory holds the client's unspent admission
// tokens (mode 0600).
const WalletFile = "tokens.bin"

// admission is a node's part in anonymous admission (package tis/token):
// a client's wallet of tokens, which it presents to its guards, and a
// relay's guard, which redeems them. Either may be nil.
type admission struct {
	agent  *tis.Agent
	wallet *token.Wallet // a client with tis.url
	guard  *token.Guard  // a relay with tis.require and tis.url
}

// newAdmission opens what the node's roles need: a client enrolled with
// a TIS it can reach gets a wallet in dir, a relay that requires
// enrollment a guard for self.
func newAdmission(a *tis.Agent, dir string, priv crypto.PrivKey, self peer.ID, client, relay, require bool) (*admission, error) {
	ad := &admission{agent: a}
	if a != nil && a.URL() == "" {
		log := logrus.WithField("component", "node")
		if client {
			log.Warn("no tis.url: this client gets no admission tokens, and guards that require enrollment refuse its circuits")
		}
		if relay && require {
			log.Warn("no tis.url: this relay cannot fetch the token keys and refuses every client as a guard")
		}
	}
	if a == nil || a.URL() == "" {
		return ad, nil
	}
	if client {
		src := token.NewClient(a.URL(), a.Root(), priv, a.Enrollment().NodeCert)
		w, err := token.OpenWallet(filepath.Join(dir, WalletFile), src, token.WalletOptions{})
		if err != nil {
			return nil, fmt.Errorf("admission tokens: %w", err)
		}
		ad.wallet = w
	}
	if relay && require {
		ad.guard = token.NewGuard(a.URL(), a.Root(), self, token.GuardOptions{})
	}
	return ad, nil
}

// take is the circuit client's Token hook: a token of the wallet for
// guard, nil without a wallet.
func (ad *admission) take(ctx context.Context, guard peer.ID) ([]byte, error) {
	if ad.wallet == nil {
		return nil, nil
	}
	return ad.wallet.Take(ctx, guard)
}

// admit is the relay's AdmitCircuit hook under tis.require. A previous
// hop with a token is a client: the token must be good for this guard,
// and nothing else about the client is asked. One without is admitted
// only as a relay extending a circuit, which proves itself by its
// published certificate (tis.Agent.AdmitPeer).
func (ad *admission) admit(ctx context.Context, prev peer.ID, tok []byte) error {
	if tok == nil {
		if err := ad.agent.AdmitPeer(ctx, prev); err != nil {
			return fmt.Errorf("%w, nor an enrolled relay: %w", circuit.ErrTokenMissing, err)
		}
		return nil
	}
	if ad.guard == nil {
		return fmt.Errorf("%w: this relay has no tis.url to fetch the token keys from", circuit.ErrTokenInvalid)
	}
	err := ad.guard.Redeem(ctx, tok)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, token.ErrSpent):
		return fmt.Errorf("%w: %w", circuit.ErrTokenSpent, err)
	default:
		return fmt.Errorf("%w: %w", circuit.ErrTokenInvalid, err)
	}
}

// state is the wallet's state for the status page, nil without one.
func (ad *admission) state() *token.WalletState {
	if ad == nil || ad.wallet == nil {
		return nil
	}
	s := ad.wallet.State()
	return &s
}

// webState is state for the status page.
func (ad *admission) webState() *web.Tokens {
	s := ad.state()
	if s == nil {
		return nil
	}
	t := &web.Tokens{Held: s.Tokens, Guards: s.Guards, Remaining: s.Remaining, Refilling: s.Refilling}
	if s.LastError != nil {
		t.LastError = s.LastError.Error()
	}
	return t
}

// close stops the wallet's refills and the guard's key refresh.
func (ad *admission) close() error {
	if ad == nil {
		return nil
	}
	var errs []error
	if ad.wallet != nil {
		errs = append(errs, ad.wallet.Close())
	}
	if ad.guard != nil {
		errs = append(errs, ad.guard.Close())
	}
	return errors.Join(errs...)
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
