package exchange

import (
	"crypto/ed25519"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

// Self is the identity one side presents in an exchange (see
// tis.LoadEnrollment).
type Self struct {
	MatryoshkaCert *tis.Certificate
	NodeCert       *tis.Certificate // optional for the accepter
	MatryoshkaKey  ed25519.PrivateKey
	// NodeKey is the private key of NodeCert, which signs the exchange to
	// show that the node is the presenter's. If nil, the host's key is
	// used, which must then be the key of NodeCert.
	NodeKey crypto.PrivKey
	// Service, if set, gives the card of the presenter's Matryoshka
	// service to tell the other side (nil: none), read at each exchange.
	Service func() *trust.ServiceCard
}

// serviceCard is the encoded card to present, empty for none.
func (s Self) serviceCard() []byte {
	if s.Service == nil {
		return nil
	}
	if c := s.Service(); c != nil {
		return c.Encode()
	}
	return nil
}

// nodeKey checks s and returns the key that signs for NodeCert (nil
// without NodeCert).
func (s Self) nodeKey(h host.Host) (crypto.PrivKey, error) {
	if s.MatryoshkaCert == nil || s.MatryoshkaCert.Type != tis.TypeMatryoshka {
		return nil, fmt.Errorf("no Matryoshka certificate: %w", ErrSelf)
	}
	if len(s.MatryoshkaKey) != ed25519.PrivateKeySize || !s.MatryoshkaCert.SubjectKey.Equal(s.MatryoshkaKey.Public()) {
		return nil, fmt.Errorf("matryoshka key does not match its certificate: %w", ErrSelf)
	}
	if s.NodeCert == nil {
		return nil, nil
	}
	if s.NodeCert.Type != tis.TypeNode {
		return nil, fmt.Errorf("node certificate of type %s: %w", s.NodeCert.Type, ErrSelf)
	}
	k := s.NodeKey
	if k == nil {
		k = h.Peerstore().PrivKey(h.ID())
	}
	if k == nil {
		return nil, fmt.Errorf("no node key: %w", ErrSelf)
	}
	raw, err := k.GetPublic().Raw()
	if err != nil || k.Type() != crypto.Ed25519 || !s.NodeCert.SubjectKey.Equal(ed25519.PublicKey(raw)) {
		return nil, fmt.Errorf("node key does not match the node certificate: %w", ErrSelf)
	}
	return k, nil
}
