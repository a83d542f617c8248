package node

import (
	"context"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/trust/exchange"
	"github.com/pikcio/pikcio/web"
)

// loadTIS prepares the node's TIS and trust agents for the [tis] and
// [trust] sections; both are nil when no root key is pinned. A node
// without an enrollment enrolls first if who is set (ctx bounds it).
func loadTIS(ctx context.Context, cfg *config.Config, dir string, priv crypto.PrivKey, id peer.ID, who *Enrollee, view *trust.View) (*tis.Agent, *trust.Agent, error) {
	tc := cfg.TIS
	root, err := tc.Root()
	if root == nil || err != nil {
		return nil, nil, err
	}
	o := tis.AgentOptions{Root: root, URL: tc.URL, RevocationRefresh: tc.RevocationRefresh.D()}
	if who != nil {
		if err := tis.EnrollFirst(ctx, o, dir, priv, who.Name, who.Email, who.Code); err != nil {
			return nil, nil, err
		}
	}
	ta, err := tis.LoadAgent(o, dir, id)
	if err != nil {
		return nil, nil, err
	}
	attesters, err := cfg.Trust.AttesterKeys()
	if err != nil {
		return nil, nil, err
	}
	tr, err := trust.NewAgent(ta, dir, priv, attesters, cfg.Trust.Settings(), view)
	if err != nil {
		return nil, nil, err
	}
	return ta, tr, nil
}

// newExchange serves contact exchanges for the enrolled node on n.host.
func (n *Node) newExchange() (*exchange.Service, error) {
	return exchange.NewService(n.host, n.dataDir, n.exchangeSelf(), n.tis.Root(), n.trust.Contacts(), exchange.Options{Revocations: n.tis.Revocations})
}

// exchangeSelf is the node's own identity for contact exchanges.
func (n *Node) exchangeSelf() exchange.Self {
	en := n.tis.Enrollment()
	return exchange.Self{MatryoshkaCert: en.MatryoshkaCert, NodeCert: en.NodeCert, MatryoshkaKey: n.tis.MatryoshkaKey(), Service: n.serviceCard}
}

// relayOf is what the agents read of a descriptor.
func relayOf(d *discovery.Descriptor) trust.Relay {
	r := trust.Relay{ID: d.PeerID}
	if c, ok := d.Extension(tis.DescriptorExtension); ok {
		r.Cert = c
	}
	if s, ok := d.Extension(trust.DescriptorExtension); ok {
		r.Statement = s
	}
	return r
}

// verifyRelay is discovery's VerifyRelay check.
func (n *Node) verifyRelay(d *discovery.Descriptor) error {
	return n.tis.VerifyRelay(d.PeerID, relayOf(d).Cert)
}

// trustWeigher adapts the trust agent to discovery.Weigher.
type trustWeigher struct{ a *trust.Agent }

var _ discovery.Weigher = trustWeigher{}

var trustRoles = map[discovery.Role]trust.Role{
	discovery.RoleGuard:  trust.RoleGuard,
	discovery.RoleMiddle: trust.RoleMiddle,
	discovery.RoleExit:   trust.RoleExit,
}

// Weight implements discovery.Weigher (trust.Agent.Weight).
func (w trustWeigher) Weight(d *discovery.Descriptor, role discovery.Role) float64 {
	return w.a.Weight(relayOf(d), trustRoles[role])
}

// TrustReport answers a trust query (see web.TrustPath).
func (n *Node) TrustReport(query string) (*web.TrustReport, error) {
	if n.trust == nil {
		return nil, web.ErrNoTrust
	}
	return n.trust.Report(query, n.host.ID(), func(id peer.ID) (trust.Relay, bool) {
		d, ok := n.disc.Descriptor(id)
		if !ok {
			return trust.Relay{}, false
		}
		return relayOf(d), true
	})
}
