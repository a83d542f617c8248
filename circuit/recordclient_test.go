package circuit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/pikcio/pikcio/internal/testutil"
)

// fakeRecordConn is a record circuit to one last hop, which answers with
// value or err.
type fakeRecordConn struct {
	last  peer.ID
	value []byte
	err   error
	hold  chan struct{} // when set, operations wait for it

	mu     sync.Mutex
	ops    []string
	closed bool
	broken error // Err, when set
}

func (f *fakeRecordConn) op(ctx context.Context, what string) error {
	if f.hold != nil {
		select {
		case <-f.hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ops = append(f.ops, what)
	if f.closed {
		return ErrCircuitClosed
	}
	return f.err
}

func (f *fakeRecordConn) PutRecord(ctx context.Context, key string, _ []byte) error {
	return f.op(ctx, "put "+key)
}

func (f *fakeRecordConn) GetRecord(ctx context.Context, key string) ([]byte, error) {
	if err := f.op(ctx, "get "+key); err != nil {
		return nil, err
	}
	return f.value, nil
}

func (f *fakeRecordConn) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrCircuitClosed
	}
	return f.broken
}

func (f *fakeRecordConn) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *fakeRecordConn) isClosed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.closed
}

// fakeRecordBuilder builds fake circuits to the first of its last hops
// not avoided; answer says how each last hop answers.
type fakeRecordBuilder struct {
	lasts  []peer.ID
	answer func(last peer.ID) (value []byte, err error)
	hold   chan struct{}
	fail   error // every build fails with it

	mu     sync.Mutex
	avoids [][]string // the avoid list of each build
	built  []*fakeRecordConn
}

func (b *fakeRecordBuilder) build(_ context.Context, avoid []peer.ID) (recordConn, peer.ID, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	names := []string{}
	for _, id := range avoid {
		names = append(names, string(id))
	}
	b.avoids = append(b.avoids, names)
	if b.fail != nil {
		return nil, "", b.fail
	}
	for _, last := range b.lasts {
		if slices.Contains(avoid, last) {
			continue
		}
		c := &fakeRecordConn{last: last, hold: b.hold}
		c.value, c.err = b.answer(last)
		b.built = append(b.built, c)
		return c, last, nil
	}
	return nil, "", errors.New("no last hop left")
}

func (b *fakeRecordBuilder) builds() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.avoids)
}

func (b *fakeRecordBuilder) circuit(i int) *fakeRecordConn {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.built[i]
}

// fakeClient is a RecordClient over b.
func fakeClient(t *testing.T, b *fakeRecordBuilder, o RecordClientOptions) *RecordClient {
	o = o.withDefaults()
	r := &RecordClient{
		puts: newRecordCircuits(b.build, o.PutDirtiness, o.Tries),
		gets: newRecordCircuits(b.build, o.GetDirtiness, o.Tries),
	}
	t.Cleanup(r.Close)
	return r
}

var lastA, lastB, lastC = peer.ID("last-a"), peer.ID("last-b"), peer.ID("last-c")

// TestRecordClient: which circuits a RecordClient builds, and which it
// closes, for each kind of answer.
func TestRecordClient(t *testing.T) {
	down := fmt.Errorf("relay: %w", ErrRecordFailed)
	answers := func(m map[peer.ID]error) func(peer.ID) ([]byte, error) {
		return func(last peer.ID) ([]byte, error) { return []byte("v"), m[last] }
	}
	tests := []struct {
		name   string
		answer map[peer.ID]error
		ops    int
		dirty  time.Duration
		err    error  // of the last operation
		avoids string // fmt of the builds' avoid lists
		closed []bool // per circuit built, after the operations
	}{
		{name: "one circuit while clean", ops: 3, avoids: "[[]]", closed: []bool{false}},
		{name: "retry through another last hop", answer: map[peer.ID]error{lastA: down}, ops: 3,
			avoids: "[[] [last-a]]", closed: []bool{true, false}},
		{name: "not found is an answer", answer: map[peer.ID]error{lastA: ErrRecordNotFound}, ops: 2,
			err: routing.ErrNotFound, avoids: "[[]]", closed: []bool{false}},
		{name: "refused is an answer", answer: map[peer.ID]error{lastA: ErrRecordRefused}, ops: 1,
			err: ErrRecordRefused, avoids: "[[]]", closed: []bool{false}},
		{name: "tries bounded", answer: map[peer.ID]error{lastA: down, lastB: down, lastC: down}, ops: 1,
			err: ErrRecordFailed, avoids: "[[] [last-a] [last-a last-b]]", closed: []bool{true, true, true}},
		{name: "dirty", dirty: time.Nanosecond, ops: 3, avoids: "[[] [] []]", closed: []bool{true, true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := recordCtx(t)
			b := &fakeRecordBuilder{lasts: []peer.ID{lastA, lastB, lastC}, answer: answers(tt.answer)}
			r := fakeClient(t, b, RecordClientOptions{GetDirtiness: tt.dirty})
			var err error
			for range tt.ops {
				var v []byte
				v, err = r.GetRecord(ctx, "/ns/a")
				if err == nil && !bytes.Equal(v, []byte("v")) {
					t.Fatalf("got %q", v)
				}
			}
			if tt.err == nil && err != nil || tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("last get: %v, want %v", err, tt.err)
			}
			if got := fmt.Sprint(b.avoids); got != tt.avoids {
				t.Fatalf("builds avoided %s, want %s", got, tt.avoids)
			}
			if b.builds() != len(tt.closed) {
				t.Fatalf("%d circuits built, want %d", b.builds(), len(tt.closed))
			}
			for i, want := range tt.closed {
				if got := b.circuit(i).isClosed(); got != want {
					t.Errorf("circuit %d closed %v, want %v", i, got, want)
				}
			}
		})
	}
}

// TestRecordClientPutsApartFromGets: puts and gets never share a circuit,
// and each kind keeps its own while clean.
func TestRecordClientPutsApartFromGets(t *testing.T) {
	ctx := recordCtx(t)
	b := &fakeRecordBuilder{lasts: []peer.ID{lastA}, answer: func(peer.ID) ([]byte, error) { return []byte("v"), nil }}
	r := fakeClient(t, b, RecordClientOptions{})
	for range 2 {
		if err := r.PutRecord(ctx, "/ns/own", []byte("v")); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetRecord(ctx, "/ns/a"); err != nil {
			t.Fatal(err)
		}
	}
	if b.builds() != 2 {
		t.Fatalf("%d builds, want one circuit for the puts and one for the gets", b.builds())
	}
	if p, g := fmt.Sprint(b.circuit(0).ops), fmt.Sprint(b.circuit(1).ops); p != "[put /ns/own put /ns/own]" || g != "[get /ns/a get /ns/a]" {
		t.Fatalf("put circuit did %s, get circuit %s", p, g)
	}
}

// TestRecordClientBrokenCircuit: a circuit that failed under the client
// (its Err set) is not used again, and a failing build ends the operation
// with the builder's error.
func TestRecordClientBrokenCircuit(t *testing.T) {
	ctx := recordCtx(t)
	b := &fakeRecordBuilder{lasts: []peer.ID{lastA}, answer: func(peer.ID) ([]byte, error) { return []byte("v"), nil }}
	r := fakeClient(t, b, RecordClientOptions{})
	if _, err := r.GetRecord(ctx, "/ns/a"); err != nil {
		t.Fatal(err)
	}
	first := b.circuit(0)
	first.mu.Lock()
	first.broken = ErrCircuitClosed
	first.mu.Unlock()
	if _, err := r.GetRecord(ctx, "/ns/a"); err != nil {
		t.Fatal(err)
	}
	if b.builds() != 2 || !first.isClosed() {
		t.Fatalf("%d builds, first closed %v: want a new circuit for the broken one", b.builds(), first.isClosed())
	}
	noPath := errors.New("no path")
	b.mu.Lock()
	b.fail = noPath
	b.mu.Unlock()
	r.Retire()
	if _, err := r.GetRecord(ctx, "/ns/a"); !errors.Is(err, noPath) {
		t.Fatalf("get with a failing build: %v", err)
	}
}

// TestRecordClientRetireAndClose: a retired circuit serves the operation
// under way and closes when it ends, the next operation builds another;
// Close closes the circuits in use, and later operations fail without a
// build.
func TestRecordClientRetireAndClose(t *testing.T) {
	ctx := recordCtx(t)
	hold := make(chan struct{})
	b := &fakeRecordBuilder{lasts: []peer.ID{lastA}, hold: hold, answer: func(peer.ID) ([]byte, error) { return []byte("v"), nil }}
	r := fakeClient(t, b, RecordClientOptions{})
	done := make(chan error, 1)
	go func() { _, err := r.GetRecord(ctx, "/ns/a"); done <- err }()
	testutil.WaitFor(t, 10*time.Second, "the first build", func() bool { return b.builds() == 1 })
	r.Retire()
	if b.circuit(0).isClosed() {
		t.Fatal("a retired circuit closed under its operation")
	}
	close(hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !b.circuit(0).isClosed() {
		t.Fatal("the retired circuit stayed open after its operation")
	}
	if _, err := r.GetRecord(ctx, "/ns/a"); err != nil {
		t.Fatal(err)
	}
	if err := r.PutRecord(ctx, "/ns/own", nil); err != nil {
		t.Fatal(err)
	}
	if b.builds() != 3 {
		t.Fatalf("%d builds, want 3", b.builds())
	}
	r.Close()
	for i := range 3 {
		if !b.circuit(i).isClosed() {
			t.Errorf("circuit %d open after Close", i)
		}
	}
	if _, err := r.GetRecord(ctx, "/ns/a"); !errors.Is(err, ErrRecordClientClosed) {
		t.Fatalf("get after Close: %v", err)
	}
	if err := r.PutRecord(ctx, "/ns/own", nil); !errors.Is(err, ErrRecordClientClosed) {
		t.Fatalf("put after Close: %v", err)
	}
	if b.builds() != 3 {
		t.Fatalf("%d builds after Close, want none", b.builds()-3)
	}
}

// TestRecordClientOneBuild: operations that find no circuit wait for one
// build rather than each making their own.
func TestRecordClientOneBuild(t *testing.T) {
	ctx := recordCtx(t)
	b := &fakeRecordBuilder{lasts: []peer.ID{lastA}, answer: func(peer.ID) ([]byte, error) { return []byte("v"), nil }}
	r := fakeClient(t, b, RecordClientOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() { _, err := r.GetRecord(ctx, "/ns/a"); errs <- err })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if b.builds() != 1 {
		t.Fatalf("%d builds for 8 concurrent gets, want 1", b.builds())
	}
}

// failingRecords fails every operation, as a relay whose DHT is down.
type failingRecords struct{}

func (failingRecords) PutRecord(context.Context, string, []byte) error { return errors.New("DHT down") }
func (failingRecords) GetRecord(context.Context, string) ([]byte, error) {
	return nil, errors.New("DHT down")
}

// TestRecordClientThroughRelays: over real circuits, a last hop whose DHT
// fails is left for another, its circuit closes, and Close closes the
// circuit in use.
func TestRecordClientThroughRelays(t *testing.T) {
	ctx := recordCtx(t)
	n := newTestNet(t, netOpts{relays: 3})
	n.relays[1].ServeRecords(RecordServeOptions{Store: failingRecords{}, Namespaces: []string{"ns"}})
	good := &memRecords{recs: map[string][]byte{"/ns/a": []byte("v")}}
	n.relays[2].ServeRecords(RecordServeOptions{Store: good, Namespaces: []string{"ns"}})
	var mu sync.Mutex
	var built []*Circuit
	var avoids [][]peer.ID
	build := func(ctx context.Context, avoid []peer.ID) (*Circuit, peer.ID, error) {
		mu.Lock()
		avoids = append(avoids, slices.Clone(avoid))
		mu.Unlock()
		for _, i := range []int{1, 2} {
			last := n.relays[i].Hop()
			if slices.Contains(avoid, last.ID) {
				continue
			}
			c, err := n.client.Build(ctx, n.path(0, i))
			if err != nil {
				return nil, "", err
			}
			mu.Lock()
			built = append(built, c)
			mu.Unlock()
			return c, last.ID, nil
		}
		return nil, "", errors.New("no last hop left")
	}
	r := NewRecordClient(build, RecordClientOptions{})
	t.Cleanup(r.Close)
	for range 3 {
		got, err := r.GetRecord(ctx, "/ns/a")
		if err != nil || !bytes.Equal(got, []byte("v")) {
			t.Fatalf("get: %q, %v", got, err)
		}
	}
	mu.Lock()
	if want := fmt.Sprint([][]peer.ID{nil, {n.relays[1].Hop().ID}}); fmt.Sprint(avoids) != want {
		t.Fatalf("builds avoided %v, want %v", avoids, want)
	}
	first, second := built[0], built[1]
	mu.Unlock()
	testutil.WaitFor(t, 10*time.Second, "the failed circuit closed", func() bool { return first.Err() != nil })
	r.Close()
	testutil.WaitFor(t, 10*time.Second, "the circuit in use closed", func() bool { return second.Err() != nil })
	if _, err := r.GetRecord(ctx, "/ns/a"); !errors.Is(err, ErrRecordClientClosed) {
		t.Fatalf("get after Close: %v", err)
	}
}
