package node

import (
	"context"
	"crypto/ecdh"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/service"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/web"
)

// Wiring of Matryoshka services (issue 17): the logic is in package
// service; this file gives it circuits through the node's directory and
// the DHT, and gives the proxy its .pikcio dialer.

// ServiceConfig is a service the node publishes (Options.Services come
// before the configuration's [[services]]; the first is the one the node
// tells its contacts of in the invite exchange).
type ServiceConfig = service.Config

// ServiceStatus is one published service: never its clients.
type ServiceStatus = service.Status

// serviceBuilder builds service circuits from the node's directory.
type serviceBuilder struct{ n *Node }

var (
	_ service.Builder     = serviceBuilder{}
	_ service.Circuit     = (*circuit.Circuit)(nil)
	_ service.RecordStore = (*discovery.Discovery)(nil)
)

// maxPathTries bounds the paths drawn for one service circuit.
const maxPathTries = 8

// BuildTo builds a circuit through a guard and a middle of the directory's
// choosing to relay, which the directory must hold a verified descriptor
// for.
func (b serviceBuilder) BuildTo(ctx context.Context, relay peer.ID) (service.Circuit, error) {
	last, ok := b.n.disc.Descriptor(relay)
	if !ok {
		return nil, fmt.Errorf("relay %s: %w", relay.ShortString(), circuit.ErrNotRelay)
	}
	return b.build(ctx, last, nil)
}

// BuildAny builds a circuit to a relay of the directory's choosing.
func (b serviceBuilder) BuildAny(ctx context.Context, avoid []peer.ID) (service.Circuit, service.RendezvousPoint, error) {
	c, last, err := b.buildAny(ctx, avoid)
	if err != nil {
		return nil, service.RendezvousPoint{}, err
	}
	return c, service.RendezvousPoint{Relay: last.PeerID, OnionKey: last.OnionKey.Key}, nil
}

// buildAny prefers a last hop outside avoid (a client's rendezvous relay
// apart from the intro points, a service's intro points apart), and
// takes one of them when the directory has no other.
func (b serviceBuilder) buildAny(ctx context.Context, avoid []peer.ID) (service.Circuit, *discovery.Descriptor, error) {
	var path []*discovery.Descriptor
	for range maxPathTries {
		var err error
		path, err = b.n.disc.SelectPath(discovery.PathRequest{Hops: circuit.DefaultHops, AvoidExits: avoid, Internal: true})
		if err != nil {
			return nil, nil, fmt.Errorf("select path: %w", err)
		}
		if !slices.Contains(avoid, path[len(path)-1].PeerID) {
			break
		}
	}
	last := path[len(path)-1]
	c, err := b.build(ctx, last, path[:len(path)-1])
	return c, last, err
}

// build builds a circuit ending at last through head (nil: two hops of a
// fresh path that are not last). When last is this node's entry guard,
// which a path always begins with, the head is the path's next two hops:
// reaching one's own guard as an intro point or rendezvous relay would
// otherwise be impossible on a small network.
func (b serviceBuilder) build(ctx context.Context, last *discovery.Descriptor, head []*discovery.Descriptor) (service.Circuit, error) {
	if head == nil {
		path, err := b.n.disc.SelectPath(discovery.PathRequest{Hops: circuit.DefaultHops + 1, Internal: true})
		if err != nil { // a network of three relays: last may be one of them
			path, err = b.n.disc.SelectPath(discovery.PathRequest{Hops: circuit.DefaultHops, Internal: true})
		}
		if err != nil {
			return nil, fmt.Errorf("select path: %w", err)
		}
		for _, d := range path {
			if d.PeerID != last.PeerID && len(head) < circuit.DefaultHops-1 {
				head = append(head, d)
			}
		}
	}
	if len(head) < circuit.DefaultHops-1 {
		return nil, fmt.Errorf("no path avoiding relay %s: %w", last.PeerID.ShortString(), discovery.ErrNoMiddle)
	}
	c, err := b.n.buildPath(ctx, append(slices.Clone(head), last))
	if err != nil {
		return nil, err
	}
	return c, nil
}

// newServices runs the node's services and its dialer of others'.
func (n *Node) newServices(cfg *config.Config) (*service.Manager, error) {
	m, err := service.NewManager(service.ManagerOptions{Builder: serviceBuilder{n}, Store: n.disc, Contacts: n.serviceContacts, Keys: service.KeyDirOf(n.dataDir), Log: n.log})
	if err != nil {
		return nil, err
	}
	if err := m.Apply(n.serviceConfigs(cfg)); err != nil {
		_ = m.Close()
		return nil, err
	}
	return m, nil
}

// serviceConfigs are Options.Services, then cfg's [[services]].
func (n *Node) serviceConfigs(cfg *config.Config) []service.Config {
	out := slices.Clone(n.opts.Services)
	for _, c := range cfg.Services {
		out = append(out, c.Runtime())
	}
	return out
}

// serviceContacts are the contacts file's contacts (reloaded if changed).
func (n *Node) serviceContacts() []service.Contact {
	if n.trust == nil {
		return nil
	}
	cs := n.trust.Contacts()
	if err := cs.ReloadIfChanged(); err != nil {
		n.log.WithError(err).Debug("service: reload contacts")
	}
	var out []service.Contact
	for _, c := range cs.List() {
		sc := service.Contact{Name: c.Name}
		if c.Service != nil {
			sc.Address = service.Address(c.Service.Address)
			sc.ClientKey, _ = ecdh.X25519().NewPublicKey(c.Service.ClientKey[:])
		}
		out = append(out, sc)
	}
	return out
}

// services is the node's service manager, nil before the client runs.
func (n *Node) services() *service.Manager {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.svc
}

// serviceCard is the exchange's card of the node (nil before the client
// role runs).
func (n *Node) serviceCard() *trust.ServiceCard {
	m := n.services()
	if m == nil {
		return nil
	}
	return TrustCard(m.Card())
}

// TrustCard is c as the invite exchange carries it.
func TrustCard(c service.Card) *trust.ServiceCard {
	return &trust.ServiceCard{Address: [32]byte(c.Address), ClientKey: c.ClientKey}
}

// Services returns the node's published services, by name.
func (n *Node) Services() []ServiceStatus {
	if m := n.services(); m != nil {
		return m.Status()
	}
	return nil
}

// serviceStatus is the status page's and the API's view of the services.
func (n *Node) serviceStatus() []web.ServiceStatus {
	var out []web.ServiceStatus
	for _, s := range n.Services() {
		out = append(out, s.Web())
	}
	return out
}
