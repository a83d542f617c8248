// Package servicetest is a loopback network for tests of Matryoshka
// services: circuit relays on libp2p hosts, a record store that runs the
// service namespace's validator, and a Builder over them.
package servicetest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/service"
)

var (
	_ service.Circuit     = (*circuit.Circuit)(nil)
	_ service.Builder     = (*Builder)(nil)
	_ service.RecordStore = (*Store)(nil)
)

// Store is an in-memory record store that validates as a DHT server of
// the service namespace would, keeps the record Select prefers, and lets a
// test see every record (what a DHT server sees).
type Store struct {
	mu   sync.Mutex
	recs map[string][]byte
	puts int
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{recs: make(map[string][]byte)} }

// PutRecord validates value and keeps it if Select prefers it.
func (s *Store) PutRecord(_ context.Context, key string, value []byte) error {
	v := service.Validator{}
	if err := v.Validate(key, value); err != nil {
		return fmt.Errorf("put record: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts++
	if old, ok := s.recs[key]; ok {
		if i, err := v.Select(key, [][]byte{old, value}); err != nil || i == 0 {
			return nil
		}
	}
	s.recs[key] = append([]byte(nil), value...)
	return nil
}

// ErrNotFound is GetRecord's answer for a key it does not hold.
var ErrNotFound = errors.New("record not found")

// GetRecord returns the record under key.
func (s *Store) GetRecord(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	return append([]byte(nil), r...), nil
}

// Records returns a copy of every record held, by key.
func (s *Store) Records() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]byte, len(s.recs))
	for k, v := range s.recs {
		out[k] = append([]byte(nil), v...)
	}
	return out
}

// Puts counts the uploads accepted for validation.
func (s *Store) Puts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts
}

// Network is n relays (no exits) on loopback and a shared record store.
type Network struct {
	Relays []*circuit.Relay
	Hosts  []host.Host
	Store  *Store
}

// New starts n relays; the test's end closes them.
func New(t testing.TB, n int) *Network {
	t.Helper()
	net := &Network{Store: NewStore()}
	for i := 0; i < n; i++ {
		h := testutil.TCPHost(t, nil)
		r, err := circuit.NewRelay(h, circuit.RelayOptions{AllowPrivateAddrs: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		net.Relays = append(net.Relays, r)
		net.Hosts = append(net.Hosts, h)
	}
	return net
}

// Kill closes relay i and its host, as a relay that dies would.
func (n *Network) Kill(i int) {
	_ = n.Relays[i].Close()
	_ = n.Hosts[i].Close()
}

// Index is the index of relay id, or -1.
func (n *Network) Index(id peer.ID) int {
	for i, h := range n.Hosts {
		if h.ID() == id {
			return i
		}
	}
	return -1
}

// Builder builds 3-hop circuits through the network from its own host.
type Builder struct {
	Net    *Network
	Client *circuit.Client
	Host   host.Host
	// Dead relays are never chosen (the test killed them).
	mu   sync.Mutex
	dead map[peer.ID]bool
}

// NewBuilder makes a builder on a fresh host; the test's end closes it.
func (n *Network) NewBuilder(t testing.TB) *Builder {
	t.Helper()
	h := testutil.TCPHost(t, nil)
	c := circuit.NewClient(h, circuit.ClientOptions{})
	t.Cleanup(func() { _ = c.Close() })
	return &Builder{Net: n, Client: c, Host: h, dead: make(map[peer.ID]bool)}
}

// MarkDead keeps relay id out of later paths.
func (b *Builder) MarkDead(id peer.ID) {
	b.mu.Lock()
	b.dead[id] = true
	b.mu.Unlock()
}

func (b *Builder) pick(avoid map[peer.ID]bool) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var cands []int
	for i, h := range b.Net.Hosts {
		if !avoid[h.ID()] && !b.dead[h.ID()] {
			cands = append(cands, i)
		}
	}
	if len(cands) == 0 {
		return 0, errors.New("servicetest: no relay left to choose")
	}
	j, err := rand.Int(rand.Reader, big.NewInt(int64(len(cands))))
	if err != nil {
		return 0, err
	}
	return cands[j.Int64()], nil
}

// BuildTo builds a circuit through two relays of its choice to relay.
func (b *Builder) BuildTo(ctx context.Context, relay peer.ID) (service.Circuit, error) {
	last := b.Net.Index(relay)
	if last < 0 {
		return nil, fmt.Errorf("servicetest: relay %s unknown", relay.ShortString())
	}
	avoid := map[peer.ID]bool{relay: true}
	path := make([]circuit.Hop, 0, 3)
	for len(path) < 2 {
		i, err := b.pick(avoid)
		if err != nil {
			return nil, err
		}
		avoid[b.Net.Hosts[i].ID()] = true
		path = append(path, b.Net.Relays[i].Hop())
	}
	path = append(path, b.Net.Relays[last].Hop())
	c, err := b.Client.Build(ctx, path)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// BuildAny builds a circuit to a relay of its choice not in avoid.
func (b *Builder) BuildAny(ctx context.Context, avoid []peer.ID) (service.Circuit, service.RendezvousPoint, error) {
	m := make(map[peer.ID]bool, len(avoid))
	for _, id := range avoid {
		m[id] = true
	}
	i, err := b.pick(m)
	if err != nil {
		return nil, service.RendezvousPoint{}, err
	}
	hop := b.Net.Relays[i].Hop()
	c, err := b.BuildTo(ctx, hop.ID)
	if err != nil {
		return nil, service.RendezvousPoint{}, err
	}
	return c, service.RendezvousPoint{Relay: hop.ID, OnionKey: hop.OnionKey}, nil
}
