package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/pikcio/pikcio/circuit"
)

// fixedRecords answers every get with value, or fails with err.
type fixedRecords struct {
	value []byte
	err   error
}

func (f fixedRecords) PutRecord(context.Context, string, []byte) error { return f.err }
func (f fixedRecords) GetRecord(context.Context, string) ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	if f.value == nil {
		return nil, routing.ErrNotFound
	}
	return f.value, nil
}

// recordNet is a guard and record-serving last hops on loopback, and a
// circuit client.
type recordNet struct {
	cc    *circuit.Client
	guard circuit.Hop
	lasts []circuit.Hop

	mu     sync.Mutex
	builds [][]peer.ID // the avoid list of each build
	built  []*circuit.Circuit
}

func newRecordNet(t *testing.T, stores ...circuit.RecordStore) *recordNet {
	t.Helper()
	relay := func(store circuit.RecordStore) circuit.Hop {
		priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		ro := circuit.DefaultRelayOptions()
		ro.AllowPrivateAddrs = true
		h, err := circuit.NewHost(priv, []string{"/ip4/127.0.0.1/tcp/0"}, ro)
		if err != nil {
			t.Fatal(err)
		}
		r, err := circuit.NewRelay(h, ro)
		if err != nil {
			t.Fatal(err)
		}
		if store != nil {
			r.ServeRecords(circuit.RecordServeOptions{Store: store, Namespaces: []string{"ns"}})
		}
		t.Cleanup(func() { _ = r.Close(); _ = h.Close() })
		return r.Hop()
	}
	rn := &recordNet{guard: relay(nil)}
	for _, s := range stores {
		rn.lasts = append(rn.lasts, relay(s))
	}
	ch, err := newCircuitHost([]string{"/ip4/127.0.0.1/tcp/0"}, circuit.DefaultRelayOptions())
	if err != nil {
		t.Fatal(err)
	}
	rn.cc = circuit.NewClient(ch, circuit.DefaultClientOptions())
	t.Cleanup(func() { _ = rn.cc.Close(); _ = ch.Close() })
	return rn
}

// build is a recordBuilder: guard, then the first last hop not avoided.
func (rn *recordNet) build(ctx context.Context, avoid []peer.ID) (*circuit.Circuit, peer.ID, error) {
	rn.mu.Lock()
	rn.builds = append(rn.builds, slices.Clone(avoid))
	rn.mu.Unlock()
	for _, last := range rn.lasts {
		if slices.Contains(avoid, last.ID) {
			continue
		}
		c, err := rn.cc.Build(ctx, []circuit.Hop{rn.guard, last})
		if err != nil {
			return nil, "", err
		}
		rn.mu.Lock()
		rn.built = append(rn.built, c)
		rn.mu.Unlock()
		return c, last.ID, nil
	}
	return nil, "", errors.New("no last hop left")
}

func (rn *recordNet) buildCount() int {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	return len(rn.builds)
}

// TestCircuitRecords: operations share one circuit until it is dirty; a
// relay whose DHT fails is left for another last hop, and its circuit
// closes; a record that is not found is an answer, not retried; closing
// closes the circuit in use.
func TestCircuitRecords(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Run("retry elsewhere", func(t *testing.T) {
		rn := newRecordNet(t, fixedRecords{err: errors.New("DHT down")}, fixedRecords{value: []byte("v")})
		s := newCircuitRecords(rn.build, time.Hour)
		t.Cleanup(s.close)
		got, err := s.GetRecord(ctx, "/ns/a")
		if err != nil || !bytes.Equal(got, []byte("v")) {
			t.Fatalf("get: %q, %v", got, err)
		}
		if want := fmt.Sprint([][]peer.ID{nil, {rn.lasts[0].ID}}); fmt.Sprint(rn.builds) != want {
			t.Fatalf("builds avoided %v, want %v", rn.builds, want)
		}
		waitFor(t, 10*time.Second, "the failed circuit closed", func() bool { return rn.built[0].Err() != nil })
		for range 3 {
			if _, err := s.GetRecord(ctx, "/ns/a"); err != nil {
				t.Fatal(err)
			}
		}
		if n := rn.buildCount(); n != 2 {
			t.Fatalf("%d builds, want 2: one circuit serves while clean", n)
		}
		s.close()
		waitFor(t, 10*time.Second, "the circuit in use closed", func() bool { return rn.built[1].Err() != nil })
		if _, err := s.GetRecord(ctx, "/ns/a"); !errors.Is(err, ErrClosed) {
			t.Fatalf("get after close: %v", err)
		}
	})
	t.Run("not found", func(t *testing.T) {
		rn := newRecordNet(t, fixedRecords{}, fixedRecords{value: []byte("v")})
		s := newCircuitRecords(rn.build, time.Hour)
		t.Cleanup(s.close)
		if _, err := s.GetRecord(ctx, "/ns/a"); !errors.Is(err, routing.ErrNotFound) {
			t.Fatalf("get: %v, want not found", err)
		}
		if n := rn.buildCount(); n != 1 {
			t.Fatalf("%d builds, want 1", n)
		}
	})
	t.Run("puts apart from gets", func(t *testing.T) {
		rn := newRecordNet(t, fixedRecords{value: []byte("v")})
		tr := &trustRecords{puts: newCircuitRecords(rn.build, time.Hour), gets: newCircuitRecords(rn.build, time.Hour)}
		t.Cleanup(tr.close)
		for range 2 {
			if err := tr.PutRecord(ctx, "/ns/own", []byte("v")); err != nil {
				t.Fatal(err)
			}
			if _, err := tr.GetRecord(ctx, "/ns/a"); err != nil {
				t.Fatal(err)
			}
		}
		if n := rn.buildCount(); n != 2 {
			t.Fatalf("%d builds, want one circuit for the puts and one for the gets", n)
		}
	})
	t.Run("dirty", func(t *testing.T) {
		rn := newRecordNet(t, fixedRecords{value: []byte("v")})
		s := newCircuitRecords(rn.build, time.Nanosecond)
		t.Cleanup(s.close)
		for range 3 {
			if _, err := s.GetRecord(ctx, "/ns/a"); err != nil {
				t.Fatal(err)
			}
		}
		if n := rn.buildCount(); n != 3 {
			t.Fatalf("%d builds, want a fresh circuit per dirty one (3)", n)
		}
		waitFor(t, 10*time.Second, "dirty circuits closed", func() bool { return rn.built[0].Err() != nil && rn.built[1].Err() != nil })
	})
}
