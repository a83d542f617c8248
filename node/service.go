package node

import (
	"context"
	"crypto/ecdh"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/service"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/web"
)

// Wiring of Matryoshka services (issue 17): service.Manager has the
// logic; this file gives it circuits through the node's directory, the
// DHT and the contacts file.

// ServiceConfig is a service the node publishes (Options.Services come
// before the configuration's [[services]]; the first is the one the node
// tells its contacts of in the invite exchange).
type ServiceConfig = service.Config

// ServiceStatus is one published service: never its clients.
type ServiceStatus = service.Status

// serviceBuilder builds service circuits from the node's directory.
type serviceBuilder struct{ n *Node }

var _, _ = service.Builder(serviceBuilder{}), service.Circuit((*circuit.Circuit)(nil))

// BuildTo builds a circuit to relay, which the directory must hold a
// verified descriptor for.
func (b serviceBuilder) BuildTo(ctx context.Context, relay peer.ID) (service.Circuit, error) {
	c, _, err := b.buildPath(ctx, relay, nil)
	return c, err
}

// BuildAny builds a circuit to a relay of the directory's choosing.
func (b serviceBuilder) BuildAny(ctx context.Context, avoid []peer.ID) (service.Circuit, service.RendezvousPoint, error) {
	return b.buildPath(ctx, "", avoid)
}

func (b serviceBuilder) buildPath(ctx context.Context, to peer.ID, avoid []peer.ID) (service.Circuit, service.RendezvousPoint, error) {
	path, err := b.n.disc.ServicePath(to, avoid)
	if err != nil {
		return nil, service.RendezvousPoint{}, err
	}
	last := path[len(path)-1]
	rp := service.RendezvousPoint{Relay: last.PeerID, OnionKey: last.OnionKey.Key}
	c, err := b.n.buildPath(ctx, path)
	if err != nil {
		return nil, rp, err // not a nil *circuit.Circuit in a non-nil interface
	}
	return c, rp, nil
}

// newServices runs the node's services and its dialer of others'.
func (n *Node) newServices(cfg *config.Config) (*service.Manager, error) {
	m, err := service.NewManager(service.ManagerOptions{Builder: serviceBuilder{n}, Store: n.svcRecs, Contacts: n.serviceContacts, Keys: service.KeyDirOf(n.dataDir), Log: n.log})
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
	return append(slices.Clone(n.opts.Services), cfg.RuntimeServices()...)
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
	if m := n.services(); m != nil {
		return TrustCard(m.Card())
	}
	return nil
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
func (n *Node) serviceStatus() (out []web.ServiceStatus) {
	for _, s := range n.Services() {
		out = append(out, s.Web())
	}
	return out
}
