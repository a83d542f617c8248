package circuit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The client side of records through circuits (issue 13): a client's
// records go through a circuit to a relay of the caller's choosing, which
// does the DHT operation (RECORD_PUT and RECORD_GET, records.go). Puts
// and gets never share a circuit; each kind keeps one circuit in use at a
// time, replaced when dirty (RecordClientOptions) or when an operation on
// it fails for another reason than the record's, which is then retried on
// the next circuit, through another last hop.

// ErrRecordClientClosed: an operation on a closed RecordClient.
var ErrRecordClientClosed = errors.New("record client closed")

// RecordBuilder builds a circuit that ends at a relay that serves
// records, not one in avoid, and says which relay that is.
type RecordBuilder func(ctx context.Context, avoid []peer.ID) (*Circuit, peer.ID, error)

// RecordClient is a RecordStore over record circuits: puts on one
// circuit, gets on another. Close closes the circuits in use.
type RecordClient struct {
	puts, gets *recordCircuits
}

var _ RecordStore = (*RecordClient)(nil)

// NewRecordClient returns a RecordClient whose circuits build makes.
func NewRecordClient(build RecordBuilder, o RecordClientOptions) *RecordClient {
	o = o.withDefaults()
	b := func(ctx context.Context, avoid []peer.ID) (recordConn, peer.ID, error) {
		c, last, err := build(ctx, avoid)
		if err != nil {
			return nil, "", err
		}
		return c, last, nil
	}
	return &RecordClient{
		puts: newRecordCircuits(b, o.PutDirtiness, o.Tries),
		gets: newRecordCircuits(b, o.GetDirtiness, o.Tries),
	}
}

// PutRecord implements RecordStore, on the puts' circuit.
func (r *RecordClient) PutRecord(ctx context.Context, key string, value []byte) error {
	return r.puts.do(ctx, func(c recordConn) error { return c.PutRecord(ctx, key, value) })
}

// GetRecord implements RecordStore, on the gets' circuit; not-found
// wraps routing.ErrNotFound.
func (r *RecordClient) GetRecord(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := r.gets.do(ctx, func(c recordConn) error {
		var err error
		v, err = c.GetRecord(ctx, key)
		return err
	})
	return v, err
}

// Retire takes the circuits in use out of use (a new circuit identity):
// the next operations build others. Operations under way end on them.
func (r *RecordClient) Retire() { r.puts.retire(); r.gets.retire() }

// Close closes the circuits in use; operations under way end with them,
// and later ones fail with ErrRecordClientClosed.
func (r *RecordClient) Close() { r.puts.close(); r.gets.close() }

// recordConn is what a RecordClient uses of a circuit (a *Circuit; a fake
// in tests).
type recordConn interface {
	PutRecord(ctx context.Context, key string, value []byte) error
	GetRecord(ctx context.Context, key string) ([]byte, error)
	Err() error
	Close() error
}

type recordBuild func(ctx context.Context, avoid []peer.ID) (recordConn, peer.ID, error)

// recordCircuits keeps one record circuit in use at a time.
type recordCircuits struct {
	build     recordBuild
	dirtiness time.Duration
	tries     int
	slot      chan struct{} // one build at a time

	mu     sync.Mutex
	cur    *recordCircuit
	closed bool
}

// recordCircuit is a circuit in use for records.
type recordCircuit struct {
	c       recordConn
	last    peer.ID
	born    time.Time
	users   int
	retired bool
}

func newRecordCircuits(build recordBuild, dirtiness time.Duration, tries int) *recordCircuits {
	return &recordCircuits{build: build, dirtiness: dirtiness, tries: tries, slot: make(chan struct{}, 1)}
}

// recordAnswered reports whether err is the relay's answer about the record
// itself, which another relay would give too.
func recordAnswered(err error) bool {
	return err == nil || errors.Is(err, ErrRecordNotFound) || errors.Is(err, ErrRecordRefused)
}

func (s *recordCircuits) do(ctx context.Context, op func(recordConn) error) error {
	var avoid []peer.ID
	var errs []error
	for range s.tries {
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
func (s *recordCircuits) usable(rc *recordCircuit) bool {
	return rc != nil && !rc.retired && time.Since(rc.born) < s.dirtiness && rc.c.Err() == nil
}

// take returns the circuit in use, or builds the next one.
func (s *recordCircuits) take(ctx context.Context, avoid []peer.ID) (*recordCircuit, error) {
	if rc, err := s.use(); rc != nil || err != nil {
		return rc, err
	}
	select {
	case s.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.slot }()
	if rc, err := s.use(); rc != nil || err != nil { // built while this one waited
		return rc, err
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
		return nil, ErrRecordClientClosed
	}
	old := s.cur
	s.cur = rc
	s.retireLocked(old)
	s.mu.Unlock()
	return rc, nil
}

// use takes the current circuit if it is usable, retiring it if not.
func (s *recordCircuits) use() (*recordCircuit, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrRecordClientClosed
	}
	if !s.usable(s.cur) {
		s.retireLocked(s.cur)
		return nil, nil
	}
	s.cur.users++
	return s.cur, nil
}

// release ends an operation on rc; failed retires it.
func (s *recordCircuits) release(rc *recordCircuit, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rc.users--
	if failed {
		s.retireLocked(rc)
	}
	s.closeIdleLocked(rc)
}

// retireLocked takes rc out of use; it closes once its operations end.
func (s *recordCircuits) retireLocked(rc *recordCircuit) {
	if rc == nil {
		return
	}
	rc.retired = true
	if s.cur == rc {
		s.cur = nil
	}
	s.closeIdleLocked(rc)
}

func (s *recordCircuits) closeIdleLocked(rc *recordCircuit) {
	if rc.retired && rc.users == 0 {
		_ = rc.c.Close()
	}
}

func (s *recordCircuits) retire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.retireLocked(s.cur)
}

func (s *recordCircuits) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if rc := s.cur; rc != nil {
		s.retireLocked(rc)
		_ = rc.c.Close()
	}
}
