package service_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/service"
)

var _ service.RecordStore = (*discovery.Discovery)(nil)

func newHost(t testing.TB) host.Host {
	t.Helper()
	return testutil.TCPHost(t, nil)
}

// newDHT starts a pikcio DHT node on a fresh loopback host that runs the
// service namespace's validator.
func newDHT(t testing.TB, ctx context.Context, server bool, boot []ma.Multiaddr) (*discovery.Discovery, host.Host) {
	t.Helper()
	opts := []discovery.Option{discovery.NoDiscovery(), discovery.Validator(service.Namespace, service.Validator{})}
	if server {
		opts = append(opts, discovery.Server())
	}
	if len(boot) > 0 {
		opts = append(opts, discovery.Bootstrap(boot...))
	}
	h := newHost(t)
	d, err := discovery.New(h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return d, h
}

func p2pAddrs(t testing.TB, h host.Host) []ma.Multiaddr {
	t.Helper()
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}

// TestPublishFetchDHT publishes descriptors from one node and fetches them
// from another through real libp2p hosts running pikcio's DHT on
// loopback: the newest revision wins, a contacts-only descriptor opens
// only for a contact, and another period's key finds nothing.
func TestPublishFetchDHT(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	_, bootHost := newDHT(t, ctx, true, nil)
	bootAddrs := p2pAddrs(t, bootHost)
	for range 3 {
		newDHT(t, ctx, true, bootAddrs)
	}
	svcNode, _ := newDHT(t, ctx, false, bootAddrs)
	clientNode, _ := newDHT(t, ctx, false, bootAddrs)

	id, err := service.NewIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	p := service.PeriodAt(now, 0)
	relay := newHost(t).ID()
	keys, err := service.NewIntroKeys(rand.Reader, relay)
	if err != nil {
		t.Fatal(err)
	}
	d := &service.Descriptor{Period: p, Revision: 1, IntroPoints: []service.IntroPoint{keys.Point()}}
	if err := id.Publish(ctx, svcNode, rand.Reader, d, nil); err != nil {
		t.Fatal(err)
	}
	got, err := service.Fetch(ctx, clientNode, id.Address(), p, nil)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if got.Revision != 1 || len(got.IntroPoints) != 1 || got.IntroPoints[0] != keys.Point() {
		t.Fatalf("fetched %+v", got)
	}

	// A republished descriptor (new intro point, contacts only) replaces
	// the first.
	contact, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	keys2, err := service.NewIntroKeys(rand.Reader, relay)
	if err != nil {
		t.Fatal(err)
	}
	d2 := &service.Descriptor{Period: p, Revision: 2, IntroPoints: []service.IntroPoint{keys2.Point()}, ContactsOnly: true}
	if err := id.Publish(ctx, svcNode, rand.Reader, d2, []*ecdh.PublicKey{contact.PublicKey()}); err != nil {
		t.Fatal(err)
	}
	if _, err := service.Fetch(ctx, clientNode, id.Address(), p, nil); !errors.Is(err, service.ErrNotAuthorized) {
		t.Fatalf("stranger fetching the contacts-only descriptor: %v", err)
	}
	got, err = service.Fetch(ctx, clientNode, id.Address(), p, contact)
	if err != nil || got.Revision != 2 || got.IntroPoints[0] != keys2.Point() {
		t.Fatalf("contact fetch: %+v, %v", got, err)
	}
	// An older revision does not come back: the local store and the DHT
	// servers refuse it (the put fails) and a fetch still finds the newest.
	if err := id.Publish(ctx, svcNode, rand.Reader, d, nil); err == nil {
		t.Log("the older revision was put without complaint")
	}
	if got, err := service.Fetch(ctx, clientNode, id.Address(), p, contact); err != nil || got.Revision != 2 {
		t.Fatalf("after an old revision was put: %+v, %v", got, err)
	}
	// Nothing under the next period's key; a DHT node refuses a value
	// that does not belong under a key.
	short, cancelShort := context.WithTimeout(ctx, 10*time.Second)
	defer cancelShort()
	if _, err := service.Fetch(short, clientNode, id.Address(), p.Next(), nil); !errors.Is(err, routing.ErrNotFound) {
		t.Fatalf("next period: %v, want not found", err)
	}
	raw, err := id.SealDescriptor(rand.Reader, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := clientNode.PutRecord(ctx, service.KeyFor(id.Address(), p.Next()), raw); err == nil {
		t.Fatal("a record under another period's key was stored")
	}
}
