package node

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/internal/privfile"
	"github.com/pikcio/pikcio/service"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/web"
)

// Wiring of Matryoshka services (issue 17): the logic is in package
// service; this file gives it circuits through the node's directory and
// the DHT, and gives the proxy its .pikcio dialer.

// ServiceConfig is a service the node publishes: streams to NAME's
// address go to Target, a TCP address on loopback. With ContactsOnly,
// only the node's contacts can read its descriptor (their client keys,
// learnt in the invite exchange). The first service is the one the node
// tells its contacts of in the invite exchange: they reach it as
// CONTACTNAME.pikcio.
type ServiceConfig struct {
	Name         string
	Target       string
	ContactsOnly bool
}

// ServicesDir in the data directory holds each service's key, NAME.key
// (mode 0600): the address stays the same across restarts.
const ServicesDir = "services"

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

// nodeServices are the node's published services and its dialer of
// others'.
type nodeServices struct {
	n      *Node
	dialer *service.Dialer
	// client reads contacts-only descriptors; its public half goes to
	// contacts in the service card. first is the service of the card.
	client *ecdh.PrivateKey
	first  string

	mu    sync.Mutex
	hosts map[string]*service.Host // by name
}

func newNodeServices(n *Node, cfgs []ServiceConfig) (*nodeServices, error) {
	s := &nodeServices{n: n, hosts: make(map[string]*service.Host)}
	var err error
	if s.client, err = s.clientKey(); err != nil {
		return nil, err
	}
	s.dialer = service.NewDialer(service.DialerOptions{Builder: serviceBuilder{n}, Store: n.disc, ClientKey: s.client})
	if len(cfgs) > 0 {
		s.first = cfgs[0].Name
	}
	for _, c := range cfgs {
		if err := s.add(c); err != nil {
			_ = s.close()
			return nil, err
		}
	}
	return s, nil
}

// ClientKeyFile in ServicesDir is the node's X25519 key for its
// contacts' contacts-only services.
const ClientKeyFile = "client.key"

// keyFile returns the 32 secret bytes in ServicesDir/file, made with
// fresh the first time (always fresh without a data directory).
func (s *nodeServices) keyFile(file string, fresh func() ([]byte, error)) ([]byte, error) {
	if s.n.dataDir == "" {
		return fresh()
	}
	dir := filepath.Join(s.n.dataDir, ServicesDir)
	if _, err := privfile.EnsureDir(dir); err != nil {
		return nil, fmt.Errorf("service keys: %w", err)
	}
	path := filepath.Join(dir, file)
	b, err := privfile.Read(path, 64)
	if errors.Is(err, os.ErrNotExist) {
		if b, err = fresh(); err != nil {
			return nil, err
		}
		if err := privfile.Create(path, b); err != nil {
			return nil, fmt.Errorf("service key %s: %w", file, err)
		}
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("service key %s: %w", file, err)
	}
	return b, nil
}

// identity loads or creates the key of service name.
func (s *nodeServices) identity(name string) (*service.Identity, error) {
	seed, err := s.keyFile(name+".key", func() ([]byte, error) {
		id, err := service.NewIdentity(rand.Reader)
		if err != nil {
			return nil, err
		}
		return id.Seed(), nil
	})
	if err != nil {
		return nil, err
	}
	return service.IdentityFromSeed(seed)
}

func (s *nodeServices) clientKey() (*ecdh.PrivateKey, error) {
	b, err := s.keyFile(ClientKeyFile, func() ([]byte, error) {
		k, err := ecdh.X25519().GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return k.Bytes(), nil
	})
	if err != nil {
		return nil, err
	}
	k, err := ecdh.X25519().NewPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("service client key: %w", err)
	}
	return k, nil
}

func (s *nodeServices) add(c ServiceConfig) error {
	id, err := s.identity(c.Name)
	if err != nil {
		return err
	}
	o := service.HostOptions{Builder: serviceBuilder{s.n}, Store: s.n.disc, Target: c.Target, Log: s.n.log.WithField("service", c.Name)}
	if c.ContactsOnly {
		o.Contacts = s.contactKeys
	}
	h, err := service.NewHost(id, o)
	if err != nil {
		return fmt.Errorf("service %s: %w", c.Name, err)
	}
	s.mu.Lock()
	s.hosts[c.Name] = h
	s.mu.Unlock()
	s.n.log.WithField("service", c.Name).Infof("publishing service at %s", id.Address().Host())
	return nil
}

// DialService is the proxy's dialer of .pikcio names: full addresses,
// the names of the node's own services, and the contacts' names (lookup).
func (s *nodeServices) DialService(ctx context.Context, host string, port uint16) (net.Conn, error) {
	return s.dialer.DialService(ctx, host, port, s.lookup)
}

// lookup maps NAME of NAME.pikcio to an address, on this machine only:
// one of the node's own services, else a contact whose name, lower-cased
// with its spaces as hyphens, is NAME and who told its service card.
func (s *nodeServices) lookup(name string) (service.Address, bool) {
	s.mu.Lock()
	h, ok := s.hosts[name]
	s.mu.Unlock()
	if ok {
		return h.Address(), true
	}
	for _, c := range s.contacts() {
		if c.Service != nil && c.Service.Address != ([32]byte{}) && ContactLabel(c.Name) == name {
			return service.Address(c.Service.Address), true
		}
	}
	return service.Address{}, false
}

// ContactLabel is how a contact's name is written under .pikcio.
func ContactLabel(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), " ", "-")
}

func (s *nodeServices) contacts() []trust.Contact {
	if s.n.trust == nil {
		return nil
	}
	cs := s.n.trust.Contacts()
	if err := cs.ReloadIfChanged(); err != nil {
		s.n.log.WithError(err).Debug("service: reload contacts")
	}
	return cs.List()
}

// contactKeys are the client keys of the contacts that told one: who may
// read a contacts-only descriptor.
func (s *nodeServices) contactKeys() []*ecdh.PublicKey {
	var out []*ecdh.PublicKey
	for _, c := range s.contacts() {
		if c.Service == nil {
			continue
		}
		if k, err := ecdh.X25519().NewPublicKey(c.Service.ClientKey[:]); err == nil {
			out = append(out, k)
		}
	}
	return out
}

// card is what the node tells a new contact of its services.
func (s *nodeServices) card() *trust.ServiceCard {
	s.mu.Lock()
	h := s.hosts[s.first]
	s.mu.Unlock()
	c := &trust.ServiceCard{}
	if h != nil {
		c.Address = [32]byte(h.Address())
	}
	copy(c.ClientKey[:], s.client.PublicKey().Bytes())
	return c
}

// ServiceStatus is one published service on the status page and the
// control API: never its clients.
type ServiceStatus struct {
	Name string
	service.HostStatus
}

func (s *nodeServices) status() []ServiceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ServiceStatus, 0, len(s.hosts))
	for name, h := range s.hosts {
		out = append(out, ServiceStatus{Name: name, HostStatus: h.Status()})
	}
	slices.SortFunc(out, func(a, b ServiceStatus) int { return cmpString(a.Name, b.Name) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (s *nodeServices) close() error {
	s.mu.Lock()
	hosts := s.hosts
	s.hosts = map[string]*service.Host{}
	s.mu.Unlock()
	for _, h := range hosts {
		_ = h.Close()
	}
	return s.dialer.Close()
}

// serviceCard is the exchange's card of the node (nil before the client
// role runs).
func (n *Node) serviceCard() *trust.ServiceCard {
	n.mu.Lock()
	s := n.svc
	n.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.card()
}

// Services returns the node's published services.
func (n *Node) Services() []ServiceStatus {
	n.mu.Lock()
	s := n.svc
	n.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.status()
}

// serviceStatus is the status page's and the API's view of the services.
func (n *Node) serviceStatus() []web.ServiceStatus {
	var out []web.ServiceStatus
	for _, s := range n.Services() {
		ws := web.ServiceStatus{Name: s.Name, Address: s.Address.Host(), IntroPoints: []string{}, Joined: s.Joined, Published: s.Published}
		for _, ip := range s.IntroPoints {
			ws.IntroPoints = append(ws.IntroPoints, ip.String())
		}
		if s.PublishErr != nil {
			ws.PublishErr = s.PublishErr.Error()
		}
		out = append(out, ws)
	}
	return out
}

// LocalService is a service key kept in a data directory.
type LocalService struct {
	Name    string
	Address service.Address
}

// ListServices lists the service keys in dataDir's ServicesDir, by name
// (for `pikcio service list`; the node need not run).
func ListServices(dataDir string) ([]LocalService, error) {
	dir := filepath.Join(dataDir, ServicesDir)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	var out []LocalService
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".key")
		if !ok || e.Name() == ClientKeyFile {
			continue
		}
		seed, err := privfile.Read(filepath.Join(dir, e.Name()), 64)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		id, err := service.IdentityFromSeed(seed)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		out = append(out, LocalService{Name: name, Address: id.Address()})
	}
	return out, nil
}
