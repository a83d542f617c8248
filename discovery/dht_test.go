package discovery

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

func TestDiscoverThroughBootstrap(t *testing.T) {
	const n = 5
	net := newTestNetwork(t, n)
	c := net.newClient()
	discoverAll(t, c, n, 30*time.Second)

	relays := c.Relays()
	if len(relays) != n {
		t.Fatalf("%d relays, want %d", len(relays), n)
	}
	for i, r := range net.relays {
		d, ok := c.Descriptor(r.h.ID())
		if !ok {
			t.Fatalf("relay %d not discovered", i)
		}
		info, _ := r.relayInfo()
		if d.OnionKey.Key != info.OnionKey.Key || d.Flags != info.Flags {
			t.Fatalf("relay %d: descriptor differs from what it published", i)
		}
		if err := d.Verify(VerifyOptions{Now: time.Now(), MaxSkew: DefaultMaxSkew}); err != nil {
			t.Fatalf("relay %d: %v", i, err)
		}
		if len(d.Addrs) == 0 {
			t.Fatalf("relay %d published no address", i)
		}
	}
	if containsID(relays, net.boot.host.ID()) || containsID(relays, c.host.ID()) {
		t.Fatal("bootstrap node or client listed as a relay")
	}
	// pikcio's own DHT protocol, never the public one; clients do not serve it.
	own := protocol.ID(ProtocolPrefix + "/kad/1.0.0")
	for _, h := range []interface{ Protocols() []protocol.ID }{net.relays[0].h.Mux(), net.boot.host.Mux()} {
		ps := h.Protocols()
		if !slices.Contains(ps, own) || slices.Contains(ps, "/ipfs/kad/1.0.0") {
			t.Fatalf("server protocols %v", ps)
		}
	}
	if slices.Contains(c.host.Mux().Protocols(), own) {
		t.Fatal("client serves the DHT")
	}
	path, err := c.SelectPath(PathRequest{Port: 443})
	if err != nil {
		t.Fatal(err)
	}
	checkPath(t, path, 3, 443, true)
}

func TestBootstrapUnreachable(t *testing.T) {
	h := newHost(t)
	dead := newHost(t)
	addrs, _ := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: dead.ID(), Addrs: dead.Addrs()})
	dead.Close()
	d, err := New(h, Bootstrap(addrs...), FetchTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Start(testContext(t, 10*time.Second)); !errors.Is(err, ErrBootstrap) {
		t.Fatalf("got %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("start after close: %v", err)
	}
	if _, err := New(h, Bootstrap(mustAddr(t, "/ip4/127.0.0.1/tcp/1"))); err == nil {
		t.Fatal("bootstrap address without /p2p/ accepted")
	}
}

// acceptAll is the validator of a hostile DHT node that stores anything.
type acceptAll struct{}

func (acceptAll) Validate(string, []byte) error        { return nil }
func (acceptAll) Select(string, [][]byte) (int, error) { return 0, nil }
func (acceptAll) String() string                       { return "accept all" }
func hostileDHTOptions() []dht.Option {
	return []dht.Option{
		dht.ProtocolPrefix(ProtocolPrefix),
		dht.Mode(dht.ModeServer),
		dht.Validator(record.NamespacedValidator{Namespace: acceptAll{}}),
	}
}

// TestBadDescriptorsNeverUsed puts forged, tampered and expired descriptors
// in the DHT through a hostile node: honest nodes refuse to store them, and
// a client that meets them on the hostile node never uses them.
func TestBadDescriptorsNeverUsed(t *testing.T) {
	const n = 4
	net := newTestNetwork(t, n)
	ctx := testContext(t, time.Minute)
	now := time.Now()

	// The hostile node joins the DHT as a server.
	mh := newHost(t)
	hostile, err := dht.New(mh, append(hostileDHTOptions(), dht.BootstrapPeers(net.boot.host.Peerstore().PeerInfo(net.boot.host.ID())))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hostile.Close() })
	if err := mh.Connect(ctx, net.boot.host.Peerstore().PeerInfo(net.boot.host.ID())); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "hostile node in the routing table", func() bool { return hostile.RoutingTable().Size() > 0 })
	hostile.RefreshRoutingTable()

	victim := net.relays[0]
	victimDesc, _ := c0Descriptor(t, net, victim)
	// forged: the victim's peer ID, the hostile node's onion key, signed
	// by the hostile node's key.
	forged := *victimDesc
	forged.OnionKey = OnionKey{Key: randKey(), Expires: now.Add(time.Hour)}
	forged.Published = unixTime(now.Add(time.Second)) // newer than the genuine one
	if err := forged.normalize(); err != nil {
		t.Fatal(err)
	}
	forgedBytes, err := forged.signWith(mh.Peerstore().PrivKey(mh.ID()))
	if err != nil {
		t.Fatal(err)
	}
	// tampered: the hostile node's own valid descriptor with its onion key
	// changed after signing.
	own, ownBytes := signedDescriptor(t, mh.Peerstore().PrivKey(mh.ID()), now, nil)
	tampered := slices.Clone(ownBytes)
	tampered[len(tampered)-len(own.Signature)-40] ^= 1
	// expired: a third peer's descriptor, validly signed, out of date.
	oldKey := newKey(t)
	old, oldBytes := signedDescriptor(t, oldKey, now.Add(-3*time.Hour), nil)

	bad := []struct {
		name  string
		key   string
		value []byte
		want  error
	}{
		{"forged", DescriptorKey(victim.h.ID()), forgedBytes, ErrSignature},
		{"tampered", DescriptorKey(mh.ID()), tampered, ErrSignature},
		{"expired", DescriptorKey(old.PeerID), oldBytes, ErrExpired},
	}
	hostileMsgr, err := pb.NewProtocolMessenger(hostile.MessageSender())
	if err != nil {
		t.Fatal(err)
	}
	c := net.newClient()
	if err := c.host.Connect(ctx, peer.AddrInfo{ID: mh.ID(), Addrs: mh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	clientMsgr, err := pb.NewProtocolMessenger(c.dht.MessageSender())
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Run("honest nodes refuse "+b.name, func(t *testing.T) {
			// The hostile node stores it (its validator accepts all) and
			// pushes it to the closest peers.
			if err := hostile.PutValue(ctx, b.key, b.value); err != nil {
				t.Fatalf("hostile put: %v", err)
			}
			rec := record.MakePutRecord(b.key, b.value)
			for _, p := range []peer.ID{net.boot.host.ID(), victim.h.ID()} {
				if err := hostileMsgr.PutValue(ctx, p, rec); err == nil {
					t.Fatalf("%v stored a %s descriptor", p, b.name)
				}
				got, _, err := clientMsgr.GetValue(ctx, p, b.key)
				if err == nil && got != nil && slices.Equal(got.GetValue(), b.value) {
					t.Fatalf("%v serves the %s descriptor", p, b.name)
				}
			}
			// It is in the DHT, on the hostile node. The victim's own
			// republish may overwrite it there (the hostile validator
			// takes any newer record), so put it again until it holds.
			for try := 0; ; try++ {
				got, _, err := clientMsgr.GetValue(ctx, mh.ID(), b.key)
				if err == nil && slices.Equal(got.GetValue(), b.value) {
					break
				}
				if try == 20 {
					t.Fatalf("hostile node does not serve it: %v", err)
				}
				if err := hostile.PutValue(ctx, b.key, b.value); err != nil {
					t.Fatalf("hostile put: %v", err)
				}
			}
			// Client-side verification refuses it too.
			v := validator{now: time.Now, maxSkew: DefaultMaxSkew}
			if _, err := v.verify(b.key, b.value); !errors.Is(err, b.want) {
				t.Fatalf("client verification: %v, want %v", err, b.want)
			}
		})
	}

	discoverAll(t, c, n, 30*time.Second)
	for range 3 {
		st, err := c.Refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("refresh: %+v", st)
	}
	if _, ok := c.Descriptor(mh.ID()); ok {
		t.Fatal("tampered descriptor of the hostile node used")
	}
	if _, ok := c.Descriptor(old.PeerID); ok {
		t.Fatal("expired descriptor used")
	}
	d, ok := c.Descriptor(victim.h.ID())
	if !ok || d.OnionKey.Key != victimDesc.OnionKey.Key {
		t.Fatal("victim's genuine descriptor replaced")
	}
	// Even fed directly into the client's DHT look-up path, the forged
	// value is refused.
	if _, err := (validator{now: time.Now, maxSkew: DefaultMaxSkew}).verify(DescriptorKey(victim.h.ID()), forgedBytes); err == nil {
		t.Fatal("forged descriptor verified")
	}
}

// c0Descriptor returns the relay's descriptor as a fresh client sees it.
func c0Descriptor(t *testing.T, net *testNetwork, r *testRelay) (*Descriptor, *Discovery) {
	t.Helper()
	c := net.newClient()
	discoverAll(t, c, len(net.relays), 30*time.Second)
	d, ok := c.Descriptor(r.h.ID())
	if !ok {
		t.Fatal("relay not found")
	}
	return d, c
}

func TestRelayShutdownDropped(t *testing.T) {
	const n = 4
	const lifetime = 5 * time.Second
	net := newTestNetwork(t, n, DescriptorLifetime(lifetime), RepublishInterval(time.Second))
	c := net.newClient()
	discoverAll(t, c, n, 30*time.Second)
	gone := net.relays[1]
	goneDesc, _ := c.Descriptor(gone.h.ID())
	gone.close()
	ctx := testContext(t, time.Minute)
	start := time.Now()
	waitFor(t, lifetime+20*time.Second, "stopped relay dropped", func() bool {
		c.Refresh(ctx)
		_, ok := c.Descriptor(gone.h.ID())
		return !ok
	})
	t.Logf("stopped relay dropped after %v (its descriptor expired at %v)", time.Since(start).Round(time.Millisecond), goneDesc.Expires.Sub(start).Round(time.Millisecond))
	if time.Now().Before(goneDesc.Expires) {
		t.Fatal("dropped before its descriptor expired without a failure")
	}
	if got := len(c.Relays()); got != n-1 {
		t.Fatalf("%d relays left, want %d (live relays republish)", got, n-1)
	}

	t.Run("on first failure", func(t *testing.T) {
		victim := net.relays[2]
		if _, ok := c.Descriptor(victim.h.ID()); !ok {
			t.Fatal("relay missing")
		}
		d, _ := c.Descriptor(victim.h.ID())
		c.ReportFailure([]*Descriptor{d}, &HopError{Hop: 0, Err: errors.New("connection refused")})
		if containsID(c.Relays(), victim.h.ID()) {
			t.Fatal("relay still chosen after a failure")
		}
		c.Refresh(ctx)
		// The relay republishes every second, and a newer descriptor
		// lifts the mark (a relay that restarted is back): only the
		// descriptor the failure was met with must not.
		if now, _ := c.Descriptor(victim.h.ID()); containsID(c.Relays(), victim.h.ID()) && !now.Published.After(d.Published) {
			t.Fatal("refresh brought a down relay back without a newer descriptor")
		}
	})
}

func TestOnionKeyRotation(t *testing.T) {
	const n = 3
	net := newTestNetwork(t, n)
	c := net.newClient()
	discoverAll(t, c, n, 30*time.Second)
	r := net.relays[0]
	k1, _ := r.relayInfo()
	k2 := k1
	k2.PrevOnionKey = &OnionKey{Key: k1.OnionKey.Key, Expires: time.Now().Add(10 * time.Minute)}
	k2.OnionKey = OnionKey{Key: randKey(), Expires: time.Now().Add(2 * time.Hour)}
	r.setInfo(k2)
	r.d.Republish()
	ctx := testContext(t, time.Minute)
	waitFor(t, 30*time.Second, "rotated key", func() bool {
		c.Refresh(ctx)
		d, ok := c.Descriptor(r.h.ID())
		return ok && d.OnionKey.Key == k2.OnionKey.Key
	})
	d, _ := c.Descriptor(r.h.ID())
	if d.PrevOnionKey == nil || d.PrevOnionKey.Key != k1.OnionKey.Key {
		t.Fatal("previous key not published")
	}
}

// dialBuild stands in for a circuit build: it connects to every hop in
// turn and names the first that cannot be reached.
func dialBuild(c *Discovery) BuildFunc[[]peer.ID] {
	return func(ctx context.Context, path []*Descriptor) ([]peer.ID, error) {
		for i, d := range path {
			if err := c.host.Connect(ctx, d.AddrInfo()); err != nil {
				return nil, &HopError{Hop: i, Err: err}
			}
		}
		return ids(path), nil
	}
}

func TestGuardsAcrossRestart(t *testing.T) {
	const n = 9
	net := newTestNetwork(t, n)
	dir := t.TempDir()
	c := net.newClient(DataDir(dir), Guards(3, 1), DownTime(time.Minute, time.Minute))
	discoverAll(t, c, n, 30*time.Second)
	path, err := c.SelectPath(PathRequest{Port: 443})
	if err != nil {
		t.Fatal(err)
	}
	guards := guardIDs(c.Guards())
	if len(guards) != 3 || path[0].PeerID != guards[0] {
		t.Fatalf("guards %v, first hop %v", guards, path[0].PeerID)
	}
	c.Close()

	// Restart: a new node over the same data directory.
	c2 := net.newClient(DataDir(dir), Guards(3, 1), DownTime(time.Minute, time.Minute))
	if got := guardIDs(c2.Guards()); !slices.Equal(got, guards) {
		t.Fatalf("guards after restart %v, want %v", got, guards)
	}
	discoverAll(t, c2, n, 30*time.Second)
	for range 20 {
		path, err := c2.SelectPath(PathRequest{Port: 443})
		if err != nil {
			t.Fatal(err)
		}
		if path[0].PeerID != guards[0] {
			t.Fatal("first hop is not the saved primary guard")
		}
	}

	// The primary guard goes away: the build fails at hop 0, the backup is
	// used, and the failed guard is replaced.
	var primary *testRelay
	for _, r := range net.relays {
		if r.h.ID() == guards[0] {
			primary = r
		}
	}
	primary.close()
	waitFor(t, 10*time.Second, "connection to the stopped guard closed", func() bool {
		return c2.host.Network().Connectedness(guards[0]) != network.Connected
	})
	b := NewBuilder(c2, dialBuild(c2), BuilderOptions{})
	got, _, err := b.Build(testContext(t, time.Minute), PathRequest{Port: 443})
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != guards[1] {
		t.Fatalf("first hop %v, want the first backup %v", got[0], guards[1])
	}
	after := guardIDs(c2.Guards())
	if slices.Contains(after, guards[0]) || len(after) != 3 || !slices.Equal(after[:2], guards[1:]) {
		t.Fatalf("guards after failure %v, were %v", after, guards)
	}
	c2.Close()
	c3, err := New(newHost(t), DataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if !slices.Equal(guardIDs(c3.Guards()), after) {
		t.Fatal("replacement not persisted")
	}
}

// TestCloseWaitsForLoops checks that after Close no goroutine of a
// Discovery is left: the refresh and publish loops are waited for.
func TestCloseWaitsForLoops(t *testing.T) {
	net := newTestNetwork(t, 2, RefreshInterval(50*time.Millisecond), RepublishInterval(50*time.Millisecond))
	c := net.newClient(RefreshInterval(50 * time.Millisecond))
	discoverAll(t, c, 2, 30*time.Second)
	time.Sleep(200 * time.Millisecond) // let the loops go round
	if !strings.Contains(allStacks(), "(*Discovery).refreshLoop") || !strings.Contains(allStacks(), "(*Discovery).publishLoop") {
		t.Fatal("loops not running")
	}
	for _, r := range net.relays {
		r.close()
	}
	c.Close()
	net.boot.Close()
	if s := allStacks(); strings.Contains(s, "discovery.(*Discovery)") {
		t.Fatalf("goroutines left after Close:\n%s", s)
	}
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// TestPublishRace: publications racing each other (a background republish
// and an explicit Publish after an info change, in the same second) all
// succeed, and the last info set is what clients get.
func TestPublishRace(t *testing.T) {
	net := newTestNetwork(t, 1)
	r := net.relays[0]
	ctx := testContext(t, time.Minute)
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			info, _ := r.relayInfo()
			info.OnionKey = OnionKey{Key: randKey(), Expires: time.Now().Add(time.Hour)}
			r.setInfo(info)
			r.d.Republish()
			errs[i] = r.d.Publish(ctx)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	final, _ := r.relayInfo()
	final.OnionKey = OnionKey{Key: randKey(), Expires: time.Now().Add(time.Hour)}
	r.setInfo(final)
	if err := r.d.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	c := net.newClient()
	waitFor(t, 30*time.Second, "the last descriptor", func() bool {
		c.Refresh(ctx)
		d, ok := c.Descriptor(r.h.ID())
		return ok && d.OnionKey.Key == final.OnionKey.Key
	})
}
