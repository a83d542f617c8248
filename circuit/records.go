package circuit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/routing"
	"golang.org/x/time/rate"
)

// Records through circuits (issue 13): a client asks the last hop of a
// circuit to PUT or GET one DHT record for it, so that the DHT servers
// near the key see the relay, never the client, and the relay sees a
// circuit, never the client's peer ID. A relay serves only the namespaces
// it was told to (ServeRecords): it is not a general DHT proxy, and the
// DHT's validators check every value it puts. See "Records" in doc.go.
//
// Messages, on stream 0, each split into fragments of one cell:
//
//	fragment:      id (2) | flags (1; bit 0: the last fragment) | bytes
//	RECORD_PUT:    key length (2) | key | value
//	RECORD_GET:    key length (2) | key
//	RECORD_RESULT: status (1) | value (a GET's record; empty otherwise)
//
// The client picks the id, unique among its operations in flight on the
// circuit; the relay answers with RECORD_RESULT under the same id.
const (
	relayRecordPut    byte = 21 // client -> last hop: store a record
	relayRecordGet    byte = 22 // client -> last hop: fetch a record
	relayRecordResult byte = 23 // last hop -> client: the outcome
)

// relayLastCommand is the highest relay command (cell.go's relayMaxCmd).
const relayLastCommand = relayRecordResult

func isRecordCmd(c byte) bool { return c >= relayRecordPut && c <= relayRecordResult }

// Limits of the record messages, part of the protocol.
const (
	// MaxRecordKey caps a key, MaxRecordValue a value (above
	// trust.MaxBundleSize, the largest record pikcio sends this way).
	MaxRecordKey   = 256
	MaxRecordValue = 48 << 10
	// MaxRecordOps caps the operations one circuit has in flight at the
	// relay; the client holds to it, and a relay that has more under way
	// answers busy.
	MaxRecordOps = 8
	// maxRecordMsg caps a reassembled message, and what one circuit's
	// requests being reassembled may hold together: a client sends one
	// request's fragments at a time.
	maxRecordMsg = 2 + MaxRecordKey + MaxRecordValue
	fragHdrLen   = 3
	maxFragData  = MaxCellData - fragHdrLen
	fragLast     = 1
)

// Defaults of a relay serving records (RecordLimits), in one place.
const (
	// DefaultRecordRate and DefaultRecordBurst bound the operations per
	// second of one circuit; a circuit costs its client an admission
	// token at the guard, so they also bound those of one enrollment.
	DefaultRecordRate  = 20
	DefaultRecordBurst = 64
	// DefaultRecordTimeout bounds one DHT operation at the relay.
	DefaultRecordTimeout = 10 * time.Second
	// DefaultRecordsInFlight caps the operations a relay runs at once for
	// all circuits (the memory and goroutines of at most that many);
	// beyond it, circuits are answered busy.
	DefaultRecordsInFlight = 256
)

// RECORD_RESULT statuses.
const (
	recordOK          byte = 0
	recordNotFound    byte = 1
	recordRefused     byte = 2 // namespace, key or value refused (validator included)
	recordBusy        byte = 3 // over the circuit's rate or operations in flight
	recordFailed      byte = 4 // the DHT operation failed or timed out
	recordUnsupported byte = 5 // this relay serves no records
)

// Errors of record operations, which callers branch on.
var (
	// ErrRecordNotFound wraps routing.ErrNotFound: no DHT server near the
	// key holds a valid record.
	ErrRecordNotFound = fmt.Errorf("record not found: %w", routing.ErrNotFound)
	// ErrRecordRefused: the relay does not serve that key, or the DHT
	// refused the value.
	ErrRecordRefused = errors.New("record refused by the relay")
	// ErrRecordBusy: the circuit is over the relay's rate or has too
	// many operations in flight; try later or on another circuit.
	ErrRecordBusy = errors.New("relay busy with this circuit's records")
	// ErrRecordFailed: the relay's DHT operation failed.
	ErrRecordFailed = errors.New("relay's record operation failed")
	// ErrRecordUnsupported: the relay serves no records.
	ErrRecordUnsupported = errors.New("relay serves no records")
)

var recordErrs = map[byte]error{
	recordNotFound:    ErrRecordNotFound,
	recordRefused:     ErrRecordRefused,
	recordBusy:        ErrRecordBusy,
	recordFailed:      ErrRecordFailed,
	recordUnsupported: ErrRecordUnsupported,
}

// RecordStore is the DHT a relay serves records from
// (*discovery.Discovery is one). GetRecord's not-found wraps
// routing.ErrNotFound.
type RecordStore interface {
	PutRecord(ctx context.Context, key string, value []byte) error
	GetRecord(ctx context.Context, key string) ([]byte, error)
}

// RecordLimits bound what a relay does for one circuit's records; zero
// fields take the defaults above.
type RecordLimits struct {
	Rate     float64
	Burst    int
	Timeout  time.Duration
	InFlight int // for the whole relay
}

func (l RecordLimits) withDefaults() RecordLimits {
	if l.Rate <= 0 {
		l.Rate = DefaultRecordRate
	}
	if l.Burst <= 0 {
		l.Burst = DefaultRecordBurst
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultRecordTimeout
	}
	if l.InFlight <= 0 {
		l.InFlight = DefaultRecordsInFlight
	}
	return l
}

// RecordServeOptions configure a relay serving records.
type RecordServeOptions struct {
	Store RecordStore
	// Namespaces are the DHT namespaces served ("pikcio-trust" serves
	// keys "/pikcio-trust/..."); any other key is refused.
	Namespaces []string
	Limits     RecordLimits
}

type recordServer struct {
	store    RecordStore
	prefixes []string
	limits   RecordLimits
	inflight atomic.Int32 // operations under way, all circuits
}

// ServeRecords makes the relay serve RECORD_PUT and RECORD_GET for keys
// of o.Namespaces from o.Store, for circuits that end here. Without it a
// relay answers every record operation "unsupported". Call it before the
// relay serves circuits, or at any time to change what it serves.
func (r *Relay) ServeRecords(o RecordServeOptions) {
	s := &recordServer{store: o.Store, limits: o.Limits.withDefaults()}
	for _, ns := range o.Namespaces {
		if ns != "" && !strings.Contains(ns, "/") {
			s.prefixes = append(s.prefixes, "/"+ns+"/")
		}
	}
	r.records.Store(s)
}

// allows reports whether key is in a served namespace.
func (s *recordServer) allows(key string) bool {
	for _, p := range s.prefixes {
		if strings.HasPrefix(key, p) && len(key) > len(p) {
			return true
		}
	}
	return false
}

// recordFrag is one fragment of a record message.
type recordFrag struct {
	id   uint16
	last bool
	data []byte // aliases the cell
}

func decodeRecordFrag(p []byte) (recordFrag, error) {
	if len(p) < fragHdrLen {
		return recordFrag{}, fmt.Errorf("record fragment of %d bytes: %w", len(p), ErrMalformed)
	}
	if p[2]&^fragLast != 0 {
		return recordFrag{}, fmt.Errorf("record fragment flags %#x: %w", p[2], ErrMalformed)
	}
	return recordFrag{id: binary.BigEndian.Uint16(p), last: p[2]&fragLast != 0, data: p[fragHdrLen:]}, nil
}

// recordFrags splits msg into the fragments of operation id.
func recordFrags(id uint16, msg []byte) [][]byte {
	var out [][]byte
	for {
		k := min(len(msg), maxFragData)
		f := make([]byte, fragHdrLen+k)
		binary.BigEndian.PutUint16(f, id)
		copy(f[fragHdrLen:], msg[:k])
		msg = msg[k:]
		if len(msg) == 0 {
			f[2] = fragLast
			return append(out, f)
		}
		out = append(out, f)
	}
}

// encodeRecordRequest is a RECORD_PUT (put) or RECORD_GET message.
func encodeRecordRequest(key string, value []byte, put bool) ([]byte, error) {
	if err := checkRecordKey(key); err != nil {
		return nil, err
	}
	if !put && value != nil {
		return nil, fmt.Errorf("record get with a value: %w", ErrMalformed)
	}
	if len(value) > MaxRecordValue {
		return nil, fmt.Errorf("record value of %d bytes, at most %d: %w", len(value), MaxRecordValue, ErrMalformed)
	}
	out := make([]byte, 2, 2+len(key)+len(value))
	binary.BigEndian.PutUint16(out, uint16(len(key)))
	return append(append(out, key...), value...), nil
}

// decodeRecordRequest reads a RECORD_PUT or RECORD_GET.
func decodeRecordRequest(cmd byte, p []byte) (key string, value []byte, _ error) {
	if len(p) < 2 {
		return "", nil, fmt.Errorf("record request of %d bytes: %w", len(p), ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(p))
	if len(p) < 2+n {
		return "", nil, fmt.Errorf("record key of %d bytes in %d: %w", n, len(p), ErrMalformed)
	}
	key, value = string(p[2:2+n]), p[2+n:]
	if err := checkRecordKey(key); err != nil {
		return "", nil, err
	}
	switch {
	case cmd == relayRecordGet && len(value) != 0:
		return "", nil, fmt.Errorf("record get with %d bytes of value: %w", len(value), ErrMalformed)
	case cmd == relayRecordPut && (len(value) == 0 || len(value) > MaxRecordValue):
		return "", nil, fmt.Errorf("record put of %d bytes: %w", len(value), ErrMalformed)
	case cmd != relayRecordGet && cmd != relayRecordPut:
		return "", nil, fmt.Errorf("record request command %d: %w", cmd, ErrMalformed)
	case cmd == relayRecordGet:
		value = nil
	}
	return key, value, nil
}

func checkRecordKey(key string) error {
	if key == "" || len(key) > MaxRecordKey || key[0] != '/' {
		return fmt.Errorf("record key of %d bytes: %w", len(key), ErrMalformed)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("record key has byte %#x: %w", c, ErrMalformed)
		}
	}
	return nil
}

// decodeRecordResult reads a RECORD_RESULT: the value, or the error its
// status stands for.
func decodeRecordResult(p []byte) ([]byte, error) {
	if len(p) < 1 || len(p) > 1+MaxRecordValue {
		return nil, fmt.Errorf("record result of %d bytes: %w", len(p), ErrMalformed)
	}
	if p[0] == recordOK {
		return p[1:], nil
	}
	err, ok := recordErrs[p[0]]
	if !ok || len(p) != 1 {
		return nil, fmt.Errorf("record result status %d with %d bytes: %w", p[0], len(p)-1, ErrMalformed)
	}
	return nil, err
}

// recordRelayState is a relay circuit's part in records; the forward
// loop alone touches partial and limiter.
type recordRelayState struct {
	partial  map[uint16][]byte // requests being reassembled
	held     int               // their bytes together
	limiter  *rate.Limiter
	inflight atomic.Int32 // operations handed to the store
}

// record handles a record fragment at the relay.
func (rc *relayCirc) record(m relayMsg) (DestroyReason, error) {
	if m.cmd == relayRecordResult || rc.next != nil {
		return DestroyProtocol, fmt.Errorf("relay command %d not at the last hop: %w", m.cmd, ErrMalformed)
	}
	f, err := decodeRecordFrag(m.data)
	if err != nil {
		return DestroyProtocol, err
	}
	st := &rc.rec
	if st.partial == nil {
		st.partial = make(map[uint16][]byte)
	}
	buf, ok := st.partial[f.id]
	if !ok && len(st.partial) >= MaxRecordOps {
		return DestroyProtocol, fmt.Errorf("more than %d record requests in reassembly: %w", MaxRecordOps, ErrMalformed)
	}
	if st.held+len(f.data) > maxRecordMsg {
		return DestroyProtocol, fmt.Errorf("record requests over %d bytes: %w", maxRecordMsg, ErrMalformed)
	}
	buf = append(buf, f.data...)
	if !f.last {
		st.partial[f.id] = buf
		st.held += len(f.data)
		return DestroyNone, nil
	}
	st.held -= len(buf) - len(f.data)
	delete(st.partial, f.id)
	key, value, err := decodeRecordRequest(m.cmd, buf)
	if err != nil {
		return DestroyProtocol, err
	}
	srv := rc.r.records.Load()
	limits := RecordLimits{}.withDefaults()
	if srv != nil {
		limits = srv.limits
	}
	if st.limiter == nil {
		st.limiter = rate.NewLimiter(rate.Limit(limits.Rate), limits.Burst)
	}
	// Every request counts, refused ones too: each costs an answer.
	switch {
	case !st.limiter.Allow() || st.inflight.Load() >= MaxRecordOps:
		return DestroyNone, rc.sendRecordResult(f.id, recordBusy, nil)
	case srv == nil:
		return DestroyNone, rc.sendRecordResult(f.id, recordUnsupported, nil)
	case !srv.allows(key):
		return DestroyNone, rc.sendRecordResult(f.id, recordRefused, nil)
	}
	if srv.inflight.Add(1) > int32(srv.limits.InFlight) {
		srv.inflight.Add(-1)
		return DestroyNone, rc.sendRecordResult(f.id, recordBusy, nil)
	}
	st.inflight.Add(1)
	r := rc.r
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer srv.inflight.Add(-1)
		defer st.inflight.Add(-1)
		ctx, cancel := context.WithTimeout(rc.ctx, srv.limits.Timeout)
		defer cancel()
		var got []byte
		var err error
		if m.cmd == relayRecordPut {
			err = srv.store.PutRecord(ctx, key, value)
		} else if got, err = srv.store.GetRecord(ctx, key); err == nil && (len(got) == 0 || len(got) > MaxRecordValue) {
			err = fmt.Errorf("record of %d bytes: %w", len(got), ErrRecordFailed)
		}
		status := recordOK
		switch {
		case err == nil:
		case errors.Is(err, routing.ErrNotFound):
			status = recordNotFound
		default:
			rc.log().WithError(err).Debug("record operation for a circuit failed")
			status = recordFailed
		}
		_ = rc.sendRecordResult(f.id, status, got)
	}()
	return DestroyNone, nil
}

func (rc *relayCirc) sendRecordResult(id uint16, status byte, value []byte) error {
	msg := append([]byte{status}, value...)
	for _, f := range recordFrags(id, msg) {
		if err := rc.sendRelay(relayRecordResult, 0, f); err != nil {
			return err
		}
	}
	return nil
}

// recordCalls are a client circuit's record operations in flight.
type recordCalls struct {
	once  sync.Once
	sem   chan struct{}
	send  sync.Mutex    // one request's fragments at a time
	rate  *rate.Limiter // newRecordPacer: waited for, so as not to exceed the relays' rate
	mu    sync.Mutex
	next  uint16
	calls map[uint16]*recordCall
}

type recordCall struct {
	buf  []byte
	done chan recordAnswer // one answer
}

type recordAnswer struct {
	value []byte
	err   error
}

// newRecordPacer paces a client's record requests on one circuit: the
// relays' default rate, with half their burst. A relay starts counting at
// the first request it sees, later than the client if that one was held
// up (a stalled link), and the network can bunch requests the client
// spaced; the other half of the burst is the relay's slack for that
// (1.6 s of it at the defaults), so a crawl waits at the client rather
// than being answered busy.
func newRecordPacer() *rate.Limiter {
	return rate.NewLimiter(DefaultRecordRate, DefaultRecordBurst/2)
}

func (rs *recordCalls) init() {
	rs.once.Do(func() {
		rs.sem = make(chan struct{}, MaxRecordOps)
		rs.rate = newRecordPacer()
		rs.calls = make(map[uint16]*recordCall)
	})
}

// PutRecord asks the circuit's last hop to put value under key into its
// DHT. The relay refuses keys outside the namespaces it serves
// (ErrRecordRefused); its DHT's validators check value.
func (ci *Circuit) PutRecord(ctx context.Context, key string, value []byte) error {
	if len(value) == 0 {
		return fmt.Errorf("put record %s: empty value: %w", key, ErrMalformed)
	}
	if _, err := ci.recordOp(ctx, relayRecordPut, key, value); err != nil {
		return fmt.Errorf("put record %s through a circuit: %w", key, err)
	}
	return nil
}

// GetRecord asks the circuit's last hop for the best record under key in
// its DHT; ErrRecordNotFound (routing.ErrNotFound) when there is none.
func (ci *Circuit) GetRecord(ctx context.Context, key string) ([]byte, error) {
	v, err := ci.recordOp(ctx, relayRecordGet, key, nil)
	if err != nil {
		return nil, fmt.Errorf("get record %s through a circuit: %w", key, err)
	}
	return v, nil
}

func (ci *Circuit) recordOp(ctx context.Context, cmd byte, key string, value []byte) ([]byte, error) {
	if ci.join.virtual.Load() {
		return nil, ErrNotJoined
	}
	msg, err := encodeRecordRequest(key, value, cmd == relayRecordPut)
	if err != nil {
		return nil, err
	}
	rs := &ci.recs
	rs.init()
	select {
	case rs.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-ci.done:
		return nil, ci.Err()
	}
	defer func() { <-rs.sem }()
	// A crawl asks faster than a relay answers busy: it waits instead.
	if err := rs.rate.Wait(ctx); err != nil {
		return nil, err
	}
	call := &recordCall{done: make(chan recordAnswer, 1)}
	rs.mu.Lock()
	for {
		rs.next++
		if _, used := rs.calls[rs.next]; !used {
			break
		}
	}
	id := rs.next
	rs.calls[id] = call
	rs.mu.Unlock()
	defer func() {
		rs.mu.Lock()
		if rs.calls[id] == call {
			delete(rs.calls, id)
		}
		rs.mu.Unlock()
	}()
	if err := ci.sendRecordRequest(cmd, id, msg); err != nil {
		return nil, err
	}
	select {
	case a := <-call.done:
		return a.value, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-ci.done:
		return nil, ci.Err()
	}
}

// sendRecordRequest sends the fragments of one request, none of another
// between them (the relay holds one circuit's partial requests to
// maxRecordMsg bytes together).
func (ci *Circuit) sendRecordRequest(cmd byte, id uint16, msg []byte) error {
	ci.recs.send.Lock()
	defer ci.recs.send.Unlock()
	for _, f := range recordFrags(id, msg) {
		if err := ci.sendTo(lastLayer, cmd, 0, f); err != nil {
			return err
		}
	}
	return nil
}

// onRecord handles a RECORD_RESULT fragment; the reader calls it. An
// answer for an operation the caller gave up on is dropped.
func (ci *Circuit) onRecord(from int, m relayMsg) (DestroyReason, error) {
	if m.cmd != relayRecordResult || ci.join.virtual.Load() || from != ci.lastHop() {
		return DestroyProtocol, fmt.Errorf("relay command %d from hop %d: %w", m.cmd, from+1, ErrMalformed)
	}
	f, err := decodeRecordFrag(m.data)
	if err != nil {
		return DestroyProtocol, err
	}
	rs := &ci.recs
	rs.init()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	call := rs.calls[f.id]
	if call == nil {
		return DestroyNone, nil
	}
	if len(call.buf)+len(f.data) > 1+MaxRecordValue {
		delete(rs.calls, f.id)
		call.done <- recordAnswer{err: fmt.Errorf("record result over %d bytes: %w", 1+MaxRecordValue, ErrMalformed)}
		return DestroyNone, nil
	}
	call.buf = append(call.buf, f.data...)
	if f.last {
		delete(rs.calls, f.id)
		v, err := decodeRecordResult(call.buf)
		call.done <- recordAnswer{value: v, err: err}
	}
	return DestroyNone, nil
}
