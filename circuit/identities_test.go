package circuit

import (
	"context"
	"crypto/rand"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/internal/testutil"
)

// closeHost is a host that says whether it was closed.
type closeHost struct {
	host.Host
	closed atomic.Bool
}

func (h *closeHost) Close() error {
	h.closed.Store(true)
	return h.Host.Close()
}

// idHosts makes the circuit identities' hosts (dial hosts with fresh
// keys, as a node's) and keeps them, in order.
type idHosts struct {
	t    *testing.T
	mu   sync.Mutex
	made []*closeHost
}

func (m *idHosts) newHost() (host.Host, error) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, err
	}
	h, err := NewDialHost(priv, []string{"/ip4/127.0.0.1/tcp/0"}, DefaultRelayOptions())
	if err != nil {
		return nil, err
	}
	ch := &closeHost{Host: h}
	m.mu.Lock()
	m.made = append(m.made, ch)
	m.mu.Unlock()
	m.t.Cleanup(func() { _ = h.Close() })
	return ch, nil
}

func (m *idHosts) host(i int) *closeHost {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.made[i]
}

func (m *idHosts) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.made)
}

// newIdentities starts identities with o; expired runs at each period's
// end (nil: rotate).
func newIdentities(t *testing.T, o IdentityOptions, copts ClientOptions, expired func(*Identities)) (*Identities, *idHosts) {
	t.Helper()
	hosts := &idHosts{t: t}
	ids, err := NewIdentities(hosts.newHost, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ids.Close() })
	if expired == nil {
		expired = func(ids *Identities) { _, _ = ids.Rotate() }
	}
	ids.Start(copts, func() { expired(ids) })
	return ids, hosts
}

func idCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// buildPeer builds a circuit from ids and says which identity the first
// relay saw it come from.
func buildPeer(t *testing.T, ids *Identities, n *testNet) (*Circuit, peer.ID) {
	t.Helper()
	c, err := ids.Build(idCtx(t), n.path(0, 1))
	if err != nil {
		t.Fatal(err)
	}
	from := c.client.host.ID()
	if len(n.hosts[0].Network().ConnsToPeer(from)) == 0 {
		t.Fatalf("the guard has no connection from the circuit's identity %s", from)
	}
	return c, from
}

// TestIdentitiesRotate: each Rotate puts a new host in use, circuits are
// built from it, and a retired identity without circuits closes at once.
func TestIdentitiesRotate(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 2})
	ids, hosts := newIdentities(t, IdentityOptions{}, ClientOptions{}, func(*Identities) {})
	seen := map[peer.ID]bool{}
	for i := range 3 {
		c, from := buildPeer(t, ids, n)
		if from != hosts.host(i).ID() || seen[from] {
			t.Fatalf("circuit %d from %s, want the new identity %s", i, from, hosts.host(i).ID())
		}
		seen[from] = true
		_ = c.Close()
		testutil.WaitFor(t, 10*time.Second, "the circuit gone", func() bool { return len(c.client.Circuits()) == 0 })
		if _, err := ids.Rotate(); err != nil {
			t.Fatal(err)
		}
		if !hosts.host(i).closed.Load() {
			t.Fatalf("identity %d, without circuits, open after Rotate", i)
		}
		if got := ids.Hosts(); got != 1 {
			t.Fatalf("%d hosts open, want 1", got)
		}
	}
}

// TestIdentitiesDrain: a retired identity stays open while its circuits
// do, closes once they have, and closes with them after the drain bound
// in any case.
func TestIdentitiesDrain(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 2})
	t.Run("until its circuits close", func(t *testing.T) {
		ids, hosts := newIdentities(t, IdentityOptions{Check: 10 * time.Millisecond}, ClientOptions{}, func(*Identities) {})
		c, _ := buildPeer(t, ids, n)
		if _, err := ids.Rotate(); err != nil {
			t.Fatal(err)
		}
		if hosts.host(0).closed.Load() || ids.Hosts() != 2 || c.Err() != nil {
			t.Fatalf("retired identity closed under its circuit (hosts %d, circuit %v)", ids.Hosts(), c.Err())
		}
		_ = c.Close()
		testutil.WaitFor(t, 10*time.Second, "the drained identity closed", func() bool { return hosts.host(0).closed.Load() && ids.Hosts() == 1 })
	})
	t.Run("bound", func(t *testing.T) {
		ids, hosts := newIdentities(t, IdentityOptions{Drain: 200 * time.Millisecond, Check: 10 * time.Millisecond}, ClientOptions{}, func(*Identities) {})
		c, _ := buildPeer(t, ids, n)
		if _, err := ids.Rotate(); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 10*time.Second, "the identity closed after the drain bound", func() bool { return hosts.host(0).closed.Load() && ids.Hosts() == 1 })
		testutil.WaitFor(t, 10*time.Second, "its circuit closed", func() bool { return c.Err() != nil })
		if hosts.host(1).closed.Load() {
			t.Fatal("the identity in use closed")
		}
	})
}

// TestIdentitiesPeriod: the loop calls expired once the identity in use
// is a period old, and each rotation starts a new period.
func TestIdentitiesPeriod(t *testing.T) {
	var calls atomic.Int32
	_, hosts := newIdentities(t, IdentityOptions{Period: 50 * time.Millisecond, Check: 10 * time.Millisecond}, ClientOptions{},
		func(ids *Identities) {
			calls.Add(1)
			_, _ = ids.Rotate()
		})
	testutil.WaitFor(t, 10*time.Second, "three periods", func() bool { return hosts.count() >= 4 })
	testutil.WaitFor(t, 10*time.Second, "the old identities closed", func() bool {
		for i := range 3 {
			if !hosts.host(i).closed.Load() {
				return false
			}
		}
		return true
	})
	if c := calls.Load(); c < 3 {
		t.Fatalf("expired called %d times for %d identities", c, hosts.count())
	}
}

// TestIdentitiesClose: Close waits for the loop (an expired under way),
// closes every identity, the draining ones included, is idempotent, and a
// Rotate after it fails and leaves no host open.
func TestIdentitiesClose(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 2})
	in, out := make(chan struct{}), make(chan struct{})
	var once sync.Once
	ids, hosts := newIdentities(t, IdentityOptions{Period: 50 * time.Millisecond, Check: 10 * time.Millisecond}, ClientOptions{},
		func(*Identities) {
			once.Do(func() { close(in); <-out })
		})
	c, _ := buildPeer(t, ids, n)
	if _, err := ids.Rotate(); err != nil {
		t.Fatal(err)
	}
	<-in // the loop is in expired
	closed := make(chan error, 1)
	go func() { closed <- ids.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while its loop ran", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(out)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for i := range hosts.count() {
		if !hosts.host(i).closed.Load() {
			t.Errorf("host %d open after Close", i)
		}
	}
	if c.Err() == nil {
		t.Error("a draining identity's circuit open after Close")
	}
	if err := ids.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	made := hosts.count()
	if _, err := ids.Rotate(); !errors.Is(err, ErrIdentitiesClosed) {
		t.Fatalf("Rotate after Close: %v", err)
	}
	if hosts.count() != made+1 || !hosts.host(made).closed.Load() {
		t.Fatal("Rotate after Close left its new host open")
	}
	if _, err := ids.Build(idCtx(t), n.path(0, 1)); !errors.Is(err, ErrIdentitiesClosed) {
		t.Fatalf("Build after Close: %v", err)
	}
}

// TestIdentitiesBuildOvertaken: a circuit that a new identity overtook
// during its build is closed and built again from the new identity; two
// in a row fail the build.
func TestIdentitiesBuildOvertaken(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 2})
	tests := []struct {
		name    string
		rotates int32 // builds whose Token rotates the identity
		wantErr error
	}{
		{name: "once", rotates: 1},
		{name: "twice", rotates: 2, wantErr: errIdentityChanged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids *Identities
			var tokens atomic.Int32
			copts := ClientOptions{Token: func(context.Context, peer.ID) ([]byte, error) {
				if tokens.Add(1) <= tt.rotates {
					if _, err := ids.Rotate(); err != nil {
						return nil, err
					}
				}
				return nil, nil
			}}
			var hosts *idHosts
			ids, hosts = newIdentities(t, IdentityOptions{}, copts, func(*Identities) {})
			c, err := ids.Build(idCtx(t), n.path(0, 1))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("build: %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if from, cur := c.client.host.ID(), hosts.host(hosts.count()-1).ID(); from != cur {
				t.Fatalf("circuit from %s, want the identity in use %s", from, cur)
			}
			testutil.WaitFor(t, 10*time.Second, "the overtaken identity closed", func() bool { return hosts.host(0).closed.Load() })
		})
	}
}
