package token

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/tis"
)

// AdmissionConfig is what a node's Admission is made from.
type AdmissionConfig struct {
	// URL is the TIS's base URL, "" if the node has none (then it has
	// neither wallet nor guard).
	URL string
	// Root is the TIS's root key.
	Root ed25519.PublicKey
	// NodeKey and NodeCert are the node's key and certificate, nil if it
	// is not enrolled (then it has neither wallet nor guard).
	NodeKey  crypto.PrivKey
	NodeCert *tis.Certificate
	// Self is the node's peer ID as a relay: guard tokens are made for it.
	Self peer.ID
	// Client makes a wallet in WalletFile; Guard a guard for Self (a relay
	// that requires enrollment).
	Client, Guard bool
	WalletFile    string
	// AdmitRelay admits a previous hop that presents no token, as a relay
	// extending a circuit (tis.Agent.AdmitPeer); nil admits none.
	AdmitRelay func(ctx context.Context, prev peer.ID) error
	// Refusals are the errors Admit wraps, of the caller's vocabulary
	// (circuit.ErrTokenMissing, ...), so the caller can tell them apart.
	Refusals Refusals
	Wallet   WalletOptions
	Guards   GuardOptions
}

// Refusals are the errors an Admission's Admit refuses with: no token
// (and no relay), a token already spent, any other bad token.
type Refusals struct {
	Missing, Spent, Invalid error
}

// Admission is a node's part in anonymous admission: a client's wallet,
// which gives it a token for each guard, and a relay's guard, which
// redeems them. Either may be missing; a nil *Admission has neither.
type Admission struct {
	wallet     *Wallet
	guard      *Guard
	admitRelay func(ctx context.Context, prev peer.ID) error
	refusals   Refusals
}

// NewAdmission opens what cfg asks for: a wallet for a client, a guard
// for a relay that requires enrollment, both only for an enrolled node
// that knows the TIS's URL (without it, it says what that costs). Close
// stops them.
func NewAdmission(cfg AdmissionConfig) (*Admission, error) {
	r := cfg.Refusals
	if r.Missing == nil || r.Spent == nil || r.Invalid == nil {
		return nil, errors.New("admission: refusals not set")
	}
	ad := &Admission{admitRelay: cfg.AdmitRelay, refusals: r}
	if cfg.NodeCert == nil {
		return ad, nil
	}
	if cfg.URL == "" {
		log := logrus.WithField("component", "node")
		if cfg.Client {
			log.Warn("no tis.url: this client gets no admission tokens, and guards that require enrollment refuse its circuits")
		}
		if cfg.Guard {
			log.Warn("no tis.url: this relay cannot fetch the token keys and refuses every client as a guard")
		}
		return ad, nil
	}
	if cfg.Client {
		src := NewClient(cfg.URL, cfg.Root, cfg.NodeKey, cfg.NodeCert)
		w, err := OpenWallet(cfg.WalletFile, src, cfg.Wallet)
		if err != nil {
			return nil, fmt.Errorf("admission tokens: %w", err)
		}
		ad.wallet = w
	}
	if cfg.Guard {
		ad.guard = NewGuard(cfg.URL, cfg.Root, cfg.Self, cfg.Guards)
	}
	return ad, nil
}

// Take returns a token of the wallet for guard, nil without a wallet
// (ErrNoTokens when it is empty and cannot be refilled).
func (ad *Admission) Take(ctx context.Context, guard peer.ID) ([]byte, error) {
	if ad == nil || ad.wallet == nil {
		return nil, nil
	}
	return ad.wallet.Take(ctx, guard)
}

// Admit decides on a previous hop as a guard. One with a token is a
// client: the token must be good for this guard, and nothing else about
// the client is asked. One without is admitted only as a relay extending
// a circuit (AdmitRelay). Refusals wrap the configured errors: Missing
// (no token, and not a relay), Spent, or Invalid (anything else,
// including a guard without the TIS's URL).
func (ad *Admission) Admit(ctx context.Context, prev peer.ID, tok []byte) error {
	r := ad.refusals
	if tok == nil {
		if ad.admitRelay == nil {
			return fmt.Errorf("%w, and relays are not admitted", r.Missing)
		}
		if err := ad.admitRelay(ctx, prev); err != nil {
			return fmt.Errorf("%w, nor an enrolled relay: %w", r.Missing, err)
		}
		return nil
	}
	if ad.guard == nil {
		return fmt.Errorf("%w: this relay has no tis.url to fetch the token keys from", r.Invalid)
	}
	err := ad.guard.Redeem(ctx, tok)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrSpent):
		return fmt.Errorf("%w: %w", r.Spent, err)
	default:
		return fmt.Errorf("%w: %w", r.Invalid, err)
	}
}

// State is the wallet's state, nil without a wallet.
func (ad *Admission) State() *WalletState {
	if ad == nil || ad.wallet == nil {
		return nil
	}
	s := ad.wallet.State()
	return &s
}

// Redeemed returns the guard's keys held and tokens spent (0, 0 without
// a guard).
func (ad *Admission) Redeemed() (keys, spent int) {
	if ad == nil || ad.guard == nil {
		return 0, 0
	}
	return ad.guard.Keys()
}

// Close stops the wallet's refills and the guard's key refresh, and
// waits for them.
func (ad *Admission) Close() error {
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
