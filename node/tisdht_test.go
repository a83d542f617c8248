package node_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/node/localnet"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/tistest"
)

// anyValidator accepts every record, prefers the first, and remembers
// every value it was shown: the DHT of a hostile node, or of an observer
// that sees what honest nodes serve.
type anyValidator struct {
	mu   sync.Mutex
	seen [][]byte
}

func (v *anyValidator) Validate(_ string, value []byte) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seen = append(v.seen, bytes.Clone(value))
	return nil
}

func (v *anyValidator) Select(string, [][]byte) (int, error) { return 0, nil }

func (v *anyValidator) values() [][]byte {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.seen)
}

// rawDHT is a pikcio DHT client without pikcio's checks, joined through
// the relays.
func rawDHT(t *testing.T, v record.Validator, relays []*node.Node) (host.Host, *dht.IpfsDHT) {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	kad, err := dht.New(h,
		dht.ProtocolPrefix(discovery.ProtocolPrefix),
		dht.Mode(dht.ModeClient),
		dht.Validator(record.NamespacedValidator{tis.RevocationNamespace: v}),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kad.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range relays {
		if err := h.Connect(ctx, peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 30*time.Second, "raw DHT joined", func() bool { return kad.RoutingTable().Size() > 0 })
	return h, kad
}

// TestRevocationThroughDHT: relays fetch the revocation list from the TIS
// and put it into the DHT; a client with no tis.url (only the pinned root
// key) gets it from the DHT and drops the revoked relay. A hostile node's
// forged or older list is refused by the honest nodes and never replaces
// the newer one.
func TestRevocationThroughDHT(t *testing.T) {
	net := localnet.StartTest(t, 4, func(o *localnet.Options) {
		o.Exits = 2
		o.Vouches = []localnet.Vouch{}
		o.Base.TIS.RevocationRefresh = config.Duration(300 * time.Millisecond)
		o.Config = clientWithoutTISURL
	})
	root := net.TIS.PublicKey()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	old, err := tis.FetchRevocations(ctx, net.TISURL, root)
	if err != nil {
		t.Fatal(err)
	}
	oldData, err := old.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// Without tis.url the client gets no admission tokens, so it builds
	// no circuit; its directory is what this test watches.
	testutil.WaitFor(t, 60*time.Second, "the client joined", func() bool {
		select {
		case <-net.Client.Joined():
			return true
		default:
			return false
		}
	})
	if net.Client.TISAgent().URL() != "" {
		t.Fatal("the client has a TIS URL")
	}

	revoked := net.Relays[3].ID()
	relay3 := enrollmentOf(t, net.Relays[3].DataDir())
	node.RevokeDropped(t, net.TIS, net.Client, net.Relays[3], relay3, "revoked relay dropped by a client without tis.url")
	newest := net.Client.TISAgent().Revocations()
	if newest == nil || newest.Sequence <= old.Sequence || !newest.Revoked(relay3.NodeCert.Serial) {
		t.Fatalf("client list %v, want one newer than %v revoking relay 3", newest, old)
	}
	for range 100 {
		// The client builds no circuit (its guards refuse it without a
		// token, which marks none of them down), so a path is there at
		// once.
		path, err := net.Client.Directory().SelectPath(discovery.PathRequest{Hops: 3, Port: 443})
		if err != nil {
			t.Fatalf("select: %v; guards %+v; %d relays usable", err, net.Client.Directory().Guards(), len(net.Client.Directory().Relays()))
		}
		for _, h := range path {
			if h.PeerID == revoked {
				t.Fatal("revoked relay chosen")
			}
		}
	}
	newestData, err := newest.Encode()
	if err != nil {
		t.Fatal(err)
	}

	// A hostile node puts an older genuine list, a tampered copy of the
	// newest and a list of another TIS under the revocation key.
	tampered := bytes.Clone(newestData)
	tampered[len(tampered)-1] ^= 1
	other := tistest.Start(t, nil)
	foreign, err := tis.FetchRevocations(ctx, other.URL, other.Root)
	if err != nil {
		t.Fatal(err)
	}
	foreignData, err := foreign.Encode()
	if err != nil {
		t.Fatal(err)
	}
	key := tis.RevocationKey(root)
	_, hostile := rawDHT(t, &anyValidator{}, net.Relays)
	bad := [][]byte{oldData, tampered, foreignData}
	for _, b := range bad {
		_ = hostile.PutValue(ctx, key, b) // honest peers answer with an error
	}

	// The honest nodes kept the newest list: an observer sees only it.
	obs := &anyValidator{}
	_, observer := rawDHT(t, obs, net.Relays)
	if _, err := observer.GetValue(ctx, key, dht.Quorum(len(net.Relays))); err != nil {
		t.Fatalf("observer get: %v", err)
	}
	seen := obs.values()
	if len(seen) == 0 {
		t.Fatal("observer saw no list")
	}
	for _, v := range seen {
		if !bytes.Equal(v, newestData) {
			l, _ := tis.DecodeRevocationList(v)
			t.Fatalf("an honest node served another list than the newest: %v", l)
		}
	}
	// Nodes' own GETs still return the newest, and their caches keep it.
	for i, nd := range append(slices.Clone(net.Relays), net.Client) {
		data, err := nd.Directory().GetRecord(ctx, key)
		if err != nil {
			t.Fatalf("node %d get: %v", i, err)
		}
		if !bytes.Equal(data, newestData) {
			t.Fatalf("node %d got another list than the newest", i)
		}
	}
	time.Sleep(time.Second) // a few refreshes of every node
	if l := net.Client.TISAgent().Revocations(); l.Sequence != newest.Sequence || !l.Revoked(relay3.NodeCert.Serial) {
		t.Fatalf("client list replaced by %v", l)
	}
	// pikcio's own DHT refuses to put the invalid ones; an older genuine
	// one put by the client itself does not win over the newest.
	for i, b := range bad[1:] {
		if err := net.Client.Directory().PutRecord(ctx, key, b); err == nil {
			t.Fatalf("bad list %d put", i+1)
		}
	}
	_ = net.Client.Directory().PutRecord(ctx, key, oldData)
	if data, err := net.Client.Directory().GetRecord(ctx, key); err != nil || !bytes.Equal(data, newestData) {
		t.Fatalf("after putting an older list, get: %v, newest: %t", err, bytes.Equal(data, newestData))
	}
	if err := net.Relays[0].Directory().PutRecord(ctx, key, oldData); err == nil {
		t.Fatal("a relay holding the newest list put an older one")
	}
}

// TestNoTokensBlamesNoGuard: a client without tis.url has no admission
// tokens, and guards that require one refuse its circuits. That is the
// client's own setup: its builds fail, but no relay is marked down and no
// failure counts against a guard (before, every guard was marked down in
// turn, for 30 s and then doubling, and counted towards its replacement).
func TestNoTokensBlamesNoGuard(t *testing.T) {
	net := localnet.StartTest(t, 4, func(o *localnet.Options) {
		o.Exits = 2
		o.Vouches = []localnet.Vouch{}
		o.Config = clientWithoutTISURL
	})
	testutil.WaitFor(t, 60*time.Second, "builds refused for want of a token", func() bool {
		return net.Client.Pool().Stats().BuildFailures >= 1
	})
	if n := len(net.Client.Directory().Relays()); n != len(net.Relays) {
		t.Fatalf("%d of %d relays usable after builds refused for want of a token", n, len(net.Relays))
	}
	for _, gi := range net.Client.Directory().Guards() {
		if gi.Failures != 0 {
			t.Fatalf("guard %s: %d failures counted for the client's missing token", gi.ID, gi.Failures)
		}
	}
}

// clientWithoutTISURL is a localnet Config that leaves the client (i ==
// -1) without tis.url: only the pinned root key, no admission tokens.
func clientWithoutTISURL(i int, cfg *config.Config) {
	if i == -1 {
		cfg.TIS.URL = ""
	}
}
