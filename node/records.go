package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

// Private trust traffic (issue 13): a client's trust records (its own
// bundle, the seed list, the crawl's and its contacts' bundles) go
// through a 3-hop circuit to a relay of the directory's choosing, never
// the guard, which does the DHT operation (circuit's RECORD_PUT and
// RECORD_GET). The DHT servers near a key see that relay; the relay sees a
// circuit from a middle relay; the guard sees a circuit like any other.
// Relays serve the trust namespace only, from their own DHT, and publish
// their own records directly.

// Timings of the record circuits, in one place.
const (
	// RecordCircuitDirtiness is how long one circuit carries trust
	// records from its first use (Tor's MaxCircuitDirtiness): a crawl,
	// which takes less at the default trust.refresh of 10 minutes, goes
	// on one circuit, and the next one on another, so one relay sees one
	// crawl and learns nothing that ties it to the previous.
	RecordCircuitDirtiness = 10 * time.Minute
	// RecordPutDirtiness is the same for the circuit that puts the
	// client's own records, which is never the crawl's: the relay that
	// sees whose bundle a circuit publishes does not see that circuit
	// crawl (and so which contacts the publisher has). Its puts are of
	// one bundle and the public seed list, so it may serve longer.
	RecordPutDirtiness = time.Hour
	// recordTries bounds the circuits one operation is tried on.
	recordTries = 3
)

// recordBuilder builds a circuit that ends at a relay (not in avoid) that
// serves records.
type recordBuilder func(ctx context.Context, avoid []peer.ID) (*circuit.Circuit, peer.ID, error)

// circuitRecords is a tis.RecordStore over record circuits: one in use
// at a time, replaced when dirty or when an operation on it fails (which
// is then retried on the next, through another last hop).
type circuitRecords struct {
	build     recordBuilder
	dirtiness time.Duration
	slot      chan struct{} // one build at a time

	mu     sync.Mutex
	cur    *recordCircuit
	closed bool
}

var _ tis.RecordStore = (*circuitRecords)(nil)

// recordCircuit is a circuit in use for records.
type recordCircuit struct {
	c       *circuit.Circuit
	last    peer.ID
	born    time.Time
	users   int
	retired bool
}

func newCircuitRecords(build recordBuilder, dirtiness time.Duration) *circuitRecords {
	return &circuitRecords{build: build, dirtiness: dirtiness, slot: make(chan struct{}, 1)}
}

// PutRecord implements tis.RecordStore.
func (s *circuitRecords) PutRecord(ctx context.Context, key string, value []byte) error {
	return s.do(ctx, func(c *circuit.Circuit) error { return c.PutRecord(ctx, key, value) })
}

// GetRecord implements tis.RecordStore; not-found wraps
// routing.ErrNotFound.
func (s *circuitRecords) GetRecord(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.do(ctx, func(c *circuit.Circuit) error {
		var err error
		v, err = c.GetRecord(ctx, key)
		return err
	})
	return v, err
}

// recordAnswered reports whether err is the relay's answer about the record
// itself, which another relay would give too.
func recordAnswered(err error) bool {
	return err == nil || errors.Is(err, circuit.ErrRecordNotFound) || errors.Is(err, circuit.ErrRecordRefused)
}

func (s *circuitRecords) do(ctx context.Context, op func(*circuit.Circuit) error) error {
	var avoid []peer.ID
	var errs []error
	for range recordTries {
		rc, err := s.take(ctx, avoid)
		if err != nil {
			return errors.Join(append(errs, fmt.Errorf("record circuit: %w", err))...)
		}
		err = op(rc.c)
		s.release(rc, !recordAnswered(err))
		if recordAnswered(err) || ctx.Err() != nil {
			return err
		}
		errs = append(errs, err)
		avoid = append(avoid, rc.last)
	}
	return errors.Join(errs...)
}

// usable reports whether rc may take another operation; s.mu is held.
func (s *circuitRecords) usable(rc *recordCircuit) bool {
	return rc != nil && !rc.retired && time.Since(rc.born) < s.dirtiness && rc.c.Err() == nil
}

// take returns the circuit in use, or builds the next one.
func (s *circuitRecords) take(ctx context.Context, avoid []peer.ID) (*recordCircuit, error) {
	if rc := s.use(); rc != nil {
		return rc, nil
	}
	select {
	case s.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.slot }()
	if rc := s.use(); rc != nil { // built while this one waited
		return rc, nil
	}
	c, last, err := s.build(ctx, avoid)
	if err != nil {
		return nil, err
	}
	rc := &recordCircuit{c: c, last: last, born: time.Now(), users: 1}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = c.Close()
		return nil, ErrClosed
	}
	old := s.cur
	s.cur = rc
	s.retireLocked(old)
	s.mu.Unlock()
	return rc, nil
}

// use takes the current circuit if it is usable, retiring it if not.
func (s *circuitRecords) use() *recordCircuit {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if !s.usable(s.cur) {
		s.retireLocked(s.cur)
		return nil
	}
	s.cur.users++
	return s.cur
}

// release ends an operation on rc; failed retires it.
func (s *circuitRecords) release(rc *recordCircuit, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rc.users--
	if failed {
		s.retireLocked(rc)
	}
	s.closeIdleLocked(rc)
}

// retireLocked takes rc out of use; it closes once its operations end.
func (s *circuitRecords) retireLocked(rc *recordCircuit) {
	if rc == nil {
		return
	}
	rc.retired = true
	if s.cur == rc {
		s.cur = nil
	}
	s.closeIdleLocked(rc)
}

func (s *circuitRecords) closeIdleLocked(rc *recordCircuit) {
	if rc.retired && rc.users == 0 {
		_ = rc.c.Close()
	}
}

// retire takes the circuit in use out of use (a new circuit identity):
// the next operation builds another.
func (s *circuitRecords) retire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retireLocked(s.cur)
}

// close retires the circuit in use; operations under way end with it.
func (s *circuitRecords) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if rc := s.cur; rc != nil {
		s.retireLocked(rc)
		_ = rc.c.Close()
	}
}

// trustRecords are a client's trust records through circuits: puts (its
// own bundle, the seed list) on one circuit, gets (the crawl) on another,
// never both on one.
type trustRecords struct {
	puts, gets *circuitRecords
}

var _ tis.RecordStore = (*trustRecords)(nil)

// PutRecord implements tis.RecordStore.
func (t *trustRecords) PutRecord(ctx context.Context, key string, value []byte) error {
	return t.puts.PutRecord(ctx, key, value)
}

// GetRecord implements tis.RecordStore.
func (t *trustRecords) GetRecord(ctx context.Context, key string) ([]byte, error) {
	return t.gets.GetRecord(ctx, key)
}

func (t *trustRecords) retire() { t.puts.retire(); t.gets.retire() }
func (t *trustRecords) close()  { t.puts.close(); t.gets.close() }

// newTrustRecords is the client's store of trust records through
// circuits, nil for a node that keeps them in its DHT directly (a relay
// without a client, or a node without a TIS).
func (n *Node) newTrustRecords() *trustRecords {
	if !n.client || n.tis == nil {
		return nil
	}
	return &trustRecords{
		puts: newCircuitRecords(n.buildRecordCircuit, RecordPutDirtiness),
		gets: newCircuitRecords(n.buildRecordCircuit, RecordCircuitDirtiness),
	}
}

// trustStore is where the trust agent keeps its records.
func (n *Node) trustStore() tis.RecordStore {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.records != nil {
		return n.records
	}
	return n.disc
}

// buildRecordCircuit builds a 3-hop circuit whose last hop, drawn as a
// middle, is not the guard and not in avoid while another can serve.
func (n *Node) buildRecordCircuit(ctx context.Context, avoid []peer.ID) (*circuit.Circuit, peer.ID, error) {
	req := discovery.PathRequest{Hops: circuit.DefaultHops, Internal: true, AvoidExits: avoid}
	if err := n.keeper.WaitPath(ctx, req); err != nil {
		return nil, "", err
	}
	n.mu.Lock()
	b := n.builder
	n.mu.Unlock()
	if b == nil {
		return nil, "", ErrClosed
	}
	c, path, err := b.Build(ctx, req)
	if err != nil {
		return nil, "", err
	}
	return c, path[len(path)-1].PeerID, nil
}

// serveRecords makes an enrolled relay serve the trust records of
// circuits that end at it from its DHT.
func (n *Node) serveRecords(r *circuit.Relay) {
	if n.tis == nil {
		return
	}
	r.ServeRecords(circuit.RecordServeOptions{Store: n.disc, Namespaces: []string{trust.Namespace}})
}
