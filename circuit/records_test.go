package circuit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"golang.org/x/time/rate"
)

// memRecords is a RecordStore in memory that remembers what it was asked.
type memRecords struct {
	mu    sync.Mutex
	recs  map[string][]byte
	ops   []string
	block chan struct{} // when set, operations wait for it or their context
}

func (m *memRecords) wait(ctx context.Context) error {
	if m.block == nil {
		return nil
	}
	select {
	case <-m.block:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *memRecords) PutRecord(ctx context.Context, key string, value []byte) error {
	if err := m.wait(ctx); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.recs == nil {
		m.recs = map[string][]byte{}
	}
	m.recs[key] = bytes.Clone(value)
	m.ops = append(m.ops, "put "+key)
	return nil
}

func (m *memRecords) GetRecord(ctx context.Context, key string) ([]byte, error) {
	if err := m.wait(ctx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops = append(m.ops, "get "+key)
	v, ok := m.recs[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, routing.ErrNotFound)
	}
	return v, nil
}

func (m *memRecords) seen() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.ops...)
}

var _ RecordStore = (*memRecords)(nil)

func recordCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestRecordsThroughCircuit: the last hop of a 3-hop circuit puts and gets
// records of its namespaces for the client, and refuses others; what
// happens is seen by a relay that knows only the middle relay.
func TestRecordsThroughCircuit(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 3})
	store := &memRecords{}
	n.relays[2].ServeRecords(RecordServeOptions{Store: store, Namespaces: []string{"ns"}})
	c := n.build(t, 0, 1, 2)
	ctx := recordCtx(t)
	big := randBytes(t, MaxRecordValue)
	tests := []struct {
		name  string
		key   string
		value []byte // nil: a get
		want  []byte
		err   error
	}{
		{name: "put", key: "/ns/a", value: []byte("one")},
		{name: "get", key: "/ns/a", want: []byte("one")},
		{name: "put of the largest value", key: "/ns/big", value: big},
		{name: "get of the largest value", key: "/ns/big", want: big},
		{name: "get of a missing key", key: "/ns/none", err: ErrRecordNotFound},
		{name: "get outside the namespaces", key: "/other/a", err: ErrRecordRefused},
		{name: "put outside the namespaces", key: "/other/a", value: []byte("x"), err: ErrRecordRefused},
		{name: "namespace alone", key: "/ns/", err: ErrRecordRefused},
		{name: "value too large", key: "/ns/a", value: make([]byte, MaxRecordValue+1), err: ErrMalformed},
		{name: "key with a space", key: "/ns/a b", err: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []byte
			var err error
			if tt.value != nil {
				err = c.PutRecord(ctx, tt.key, tt.value)
			} else {
				got, err = c.GetRecord(ctx, tt.key)
			}
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.value == nil && !bytes.Equal(got, tt.want) {
				t.Fatalf("got %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
	if !errors.Is(ErrRecordNotFound, routing.ErrNotFound) {
		t.Fatal("ErrRecordNotFound does not wrap routing.ErrNotFound")
	}
	if got := len(store.seen()); got != 5 {
		t.Fatalf("store saw %d operations (%v), want 5", got, store.seen())
	}
	// The serving relay's circuit comes from the middle relay; it has no
	// connection to the client's host at all.
	r := n.relays[2]
	r.mu.Lock()
	var prevs []peer.ID
	for rc := range r.circuits {
		prevs = append(prevs, rc.prevPeer)
	}
	r.mu.Unlock()
	if len(prevs) != 1 || prevs[0] != n.hosts[1].ID() {
		t.Fatalf("serving relay's previous hops %v, want the middle %s", prevs, n.hosts[1].ID())
	}
	if conns := n.hosts[2].Network().ConnsToPeer(n.chost.ID()); len(conns) != 0 {
		t.Fatalf("serving relay is connected to the client (%d connections)", len(conns))
	}
	if c.Err() != nil {
		t.Fatalf("circuit closed: %v", c.Err())
	}
}

// TestRecordRefusals: a relay that serves no records says so; one over a
// circuit's rate answers busy; one whose store does not answer in time
// reports a failure; a record command to a middle hop closes the circuit.
func TestRecordRefusals(t *testing.T) {
	ctx := recordCtx(t)
	t.Run("unsupported", func(t *testing.T) {
		n := newTestNet(t, netOpts{relays: 2})
		c := n.build(t, 0, 1)
		if _, err := c.GetRecord(ctx, "/ns/a"); !errors.Is(err, ErrRecordUnsupported) {
			t.Fatalf("err %v, want ErrRecordUnsupported", err)
		}
	})
	t.Run("rate", func(t *testing.T) {
		n := newTestNet(t, netOpts{relays: 2})
		n.relays[1].ServeRecords(RecordServeOptions{Store: &memRecords{}, Namespaces: []string{"ns"}, Limits: RecordLimits{Rate: 0.001, Burst: 2}})
		c := n.build(t, 0, 1)
		// A refused request counts against the rate too.
		if _, err := c.GetRecord(ctx, "/other/a"); !errors.Is(err, ErrRecordRefused) {
			t.Fatalf("get outside the namespace: %v", err)
		}
		if _, err := c.GetRecord(ctx, "/ns/a"); !errors.Is(err, ErrRecordNotFound) {
			t.Fatalf("second get: %v", err)
		}
		if _, err := c.GetRecord(ctx, "/ns/a"); !errors.Is(err, ErrRecordBusy) {
			t.Fatalf("third get: %v, want ErrRecordBusy", err)
		}
		// Another circuit has its own budget.
		if _, err := n.build(t, 0, 1).GetRecord(ctx, "/ns/a"); !errors.Is(err, ErrRecordNotFound) {
			t.Fatalf("get on a new circuit: %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		n := newTestNet(t, netOpts{relays: 2})
		store := &memRecords{block: make(chan struct{})}
		n.relays[1].ServeRecords(RecordServeOptions{Store: store, Namespaces: []string{"ns"}, Limits: RecordLimits{Timeout: 50 * time.Millisecond}})
		c := n.build(t, 0, 1)
		if err := c.PutRecord(ctx, "/ns/a", []byte("v")); !errors.Is(err, ErrRecordFailed) {
			t.Fatalf("err %v, want ErrRecordFailed", err)
		}
	})
	t.Run("in flight", func(t *testing.T) {
		n := newTestNet(t, netOpts{relays: 2})
		store := &memRecords{block: make(chan struct{})}
		n.relays[1].ServeRecords(RecordServeOptions{Store: store, Namespaces: []string{"ns"}})
		c := n.build(t, 0, 1)
		// MaxRecordOps callers wait on the store; one more waits for a
		// slot at the client, which never sends a ninth.
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		errs := make(chan error, MaxRecordOps+1)
		for range MaxRecordOps + 1 {
			go func() {
				_, err := c.GetRecord(short, "/ns/a")
				errs <- err
			}()
		}
		for range MaxRecordOps + 1 {
			if err := <-errs; !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err %v, want the caller's deadline", err)
			}
		}
		close(store.block)
		// The late answers are dropped, and the circuit still serves.
		if _, err := c.GetRecord(ctx, "/ns/a"); !errors.Is(err, ErrRecordNotFound) {
			t.Fatalf("get after the timeouts: %v", err)
		}
	})
	t.Run("relay in flight", func(t *testing.T) {
		n := newTestNet(t, netOpts{relays: 2})
		store := &memRecords{block: make(chan struct{})}
		t.Cleanup(func() { close(store.block) })
		n.relays[1].ServeRecords(RecordServeOptions{Store: store, Namespaces: []string{"ns"}, Limits: RecordLimits{InFlight: 1}})
		c1, c2 := n.build(t, 0, 1), n.build(t, 0, 1)
		short, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		errc := make(chan error, 1)
		go func() {
			_, err := c1.GetRecord(short, "/ns/a")
			errc <- err
		}()
		waitRelayInFlight(t, n.relays[1], 1)
		if _, err := c2.GetRecord(ctx, "/ns/a"); !errors.Is(err, ErrRecordBusy) {
			t.Fatalf("second circuit: %v, want ErrRecordBusy", err)
		}
		if err := <-errc; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("first circuit: %v", err)
		}
	})
	t.Run("reassembly cap", func(t *testing.T) {
		n := newTestNet(t, netOpts{relays: 2})
		n.relays[1].ServeRecords(RecordServeOptions{Store: &memRecords{}, Namespaces: []string{"ns"}})
		c := n.build(t, 0, 1)
		// Two requests' fragments interleaved, neither finished, hold
		// more than one request may: a hostile client's memory attack.
		msg, err := encodeRecordRequest("/ns/a", make([]byte, MaxRecordValue), true)
		if err != nil {
			t.Fatal(err)
		}
		half := recordFrags(1, msg[:len(msg)/2+maxFragData])
		other := recordFrags(2, msg[:len(msg)/2+maxFragData])
		for i := range half[:len(half)-1] {
			for _, f := range [][]byte{half[i], other[i]} {
				f[2] = 0 // never the last
				if err := c.sendTo(lastLayer, relayRecordPut, 0, f); err != nil {
					break
				}
			}
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			t.Fatal("the relay kept a circuit holding two large partial requests")
		}
	})
	t.Run("middle hop", func(t *testing.T) {
		n := newTestNet(t, netOpts{relays: 2})
		n.relays[0].ServeRecords(RecordServeOptions{Store: &memRecords{}, Namespaces: []string{"ns"}})
		c := n.build(t, 0, 1)
		msg, err := encodeRecordRequest("/ns/a", nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.sendTo(0, relayRecordGet, 0, recordFrags(1, msg)[0]); err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			t.Fatal("the middle hop kept the circuit open")
		}
	})
}

// TestRecordPacing: a client asks no faster than the relays' default
// rate, so a crawl waits rather than being answered busy.
func TestRecordPacing(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 2})
	n.relays[1].ServeRecords(RecordServeOptions{Store: &memRecords{}, Namespaces: []string{"ns"}})
	c := n.build(t, 0, 1)
	ctx := recordCtx(t)
	for i := range DefaultRecordBurst + 5 {
		if _, err := c.GetRecord(ctx, "/ns/a"); !errors.Is(err, ErrRecordNotFound) {
			t.Fatalf("get %d: %v, want not found", i, err)
		}
	}
}

// TestRecordConcurrent: operations in flight on one circuit get their own
// answers, their fragments interleaved.
func TestRecordConcurrent(t *testing.T) {
	n := newTestNet(t, netOpts{relays: 2})
	store := &memRecords{}
	n.relays[1].ServeRecords(RecordServeOptions{Store: store, Namespaces: []string{"ns"}})
	c := n.build(t, 0, 1)
	ctx := recordCtx(t)
	values := make([][]byte, MaxRecordOps)
	for i := range values {
		values[i] = randBytes(t, 10000+i)
		if err := c.PutRecord(ctx, fmt.Sprintf("/ns/%d", i), values[i]); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(values))
	for i := range values {
		wg.Go(func() {
			got, err := c.GetRecord(ctx, fmt.Sprintf("/ns/%d", i))
			if err == nil && !bytes.Equal(got, values[i]) {
				err = fmt.Errorf("record %d: wrong value", i)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func FuzzRecordMessages(f *testing.F) {
	for _, key := range []string{"/ns/a", "/pikcio-trust/b/00"} {
		for _, v := range [][]byte{nil, []byte("v")} {
			msg, err := encodeRecordRequest(key, v, v != nil)
			if err != nil {
				f.Fatal(err)
			}
			for _, frag := range recordFrags(7, msg) {
				f.Add(frag)
			}
			f.Add(msg)
		}
	}
	f.Add([]byte{recordOK, 'x'})
	f.Add([]byte{recordNotFound})
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, p []byte) {
		if fr, err := decodeRecordFrag(p); err == nil {
			if len(fr.data) != len(p)-fragHdrLen {
				t.Fatal("fragment data length")
			}
		}
		for _, cmd := range []byte{relayRecordPut, relayRecordGet} {
			key, value, err := decodeRecordRequest(cmd, p)
			if err != nil {
				continue
			}
			again, err := encodeRecordRequest(key, value, cmd == relayRecordPut)
			if err != nil {
				t.Fatalf("decoded request does not encode: %v", err)
			}
			if !bytes.Equal(again, p) {
				t.Fatal("request does not round-trip")
			}
		}
		if v, err := decodeRecordResult(p); err == nil && len(v) > MaxRecordValue {
			t.Fatal("result over the cap")
		}
	})
}

// waitRelayInFlight waits until r runs n record operations.
func waitRelayInFlight(t *testing.T, r *Relay, n int32) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.records.Load().inflight.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("relay never had %d record operations in flight", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkRecordGet3Hops: one GET of a 40 KiB record (a large trust
// bundle) from a store in memory at the last of 3 hops on loopback, the
// round trip through the circuit with nothing of a DHT's own time.
func BenchmarkRecordGet3Hops(b *testing.B) {
	n := newTestNet(b, netOpts{relays: 3})
	store := &memRecords{}
	n.relays[2].ServeRecords(RecordServeOptions{Store: store, Namespaces: []string{"ns"}, Limits: RecordLimits{Rate: 1e9, Burst: 1 << 30}})
	c := n.build(b, 0, 1, 2)
	ctx := context.Background()
	value := randBytes(b, 40<<10)
	if err := c.PutRecord(ctx, "/ns/a", value); err != nil {
		b.Fatal(err)
	}
	c.recs.rate.SetLimit(rate.Inf) // the round trip, not the pacing
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.GetRecord(ctx, "/ns/a"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs/get")
}
