package service

import (
	"cmp"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// ServerOptions tunes a Server; zero values take the defaults of options.go.
type ServerOptions struct {
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Rand is the source of ephemeral keys (nil: crypto/rand).
	Rand io.Reader
	// ReplayWindow bounds an INTRODUCE's timestamp around Now.
	ReplayWindow time.Duration
	// ReplayEntries caps the replay cache.
	ReplayEntries int
	// IntroRate and IntroBurst are the token bucket per intro point.
	IntroRate  float64
	IntroBurst int
}

// Server is a service's side of introductions: it holds the keys of the
// intro points it has published, and turns an INTRODUCE2 into the
// rendezvous to make and the RENDEZVOUS1 to send. Safe for concurrent use;
// it starts no goroutines.
type Server struct {
	addr   Address
	now    func() time.Time
	rand   io.Reader
	gate   *Gate
	replay *replayCache

	mu     sync.Mutex
	points map[[32]byte]*introEntry
}

type introEntry struct {
	keys *IntroKeys
	pub  IntroPoint
	// published is the descriptors the intro point is in: at most two
	// periods (the current one and the next, around a turnover), newest
	// first.
	published []introPeriod
}

type introPeriod struct {
	number uint64
	sub    [32]byte
	pow    PoWParams
}

// NewServer makes the introduction side of the service id.
func NewServer(id *Identity, o ServerOptions) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.ReplayWindow <= 0 {
		o.ReplayWindow = DefaultReplayWindow
	}
	if o.ReplayEntries <= 0 {
		o.ReplayEntries = DefaultReplayEntries
	}
	return &Server{
		addr:   id.Address(),
		now:    o.Now,
		rand:   o.Rand,
		gate:   NewGate(o.IntroRate, o.IntroBurst),
		replay: newReplayCache(o.ReplayWindow, o.ReplayEntries),
		points: make(map[[32]byte]*introEntry),
	}
}

// AddIntroPoint accepts INTRODUCE messages through k, published in the
// descriptor of period p with proof-of-work parameters pow. An intro point
// may be in the descriptors of two periods at once (the current and the
// next); adding it for a third forgets the oldest, and adding it again for
// a period replaces that period's pow.
func (s *Server) AddIntroPoint(k *IntroKeys, p Period, pow PoWParams) {
	pub := k.Point()
	ip := introPeriod{number: p.Number, sub: subcredential(s.addr, s.addr.Blind(p)), pow: pow}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.points[pub.AuthKey]
	if e == nil {
		e = &introEntry{keys: k, pub: pub}
		s.points[pub.AuthKey] = e
	}
	kept := []introPeriod{ip}
	for _, old := range e.published {
		if old.number != p.Number {
			kept = append(kept, old)
		}
	}
	slices.SortFunc(kept, func(a, b introPeriod) int { return cmp.Compare(b.number, a.number) })
	e.published = kept[:min(len(kept), 2)]
}

// RemoveIntroPoint stops accepting INTRODUCE messages through authKey's
// intro point (it failed, or was rotated out).
func (s *Server) RemoveIntroPoint(authKey [32]byte) {
	s.mu.Lock()
	delete(s.points, authKey)
	s.mu.Unlock()
	s.gate.Forget(authKey)
}

// Accepted is an INTRODUCE the service accepted: where to meet the
// client, what to send there, and the stream keys.
type Accepted struct {
	Introduction
	// Rendezvous1 is the message for the rendezvous relay.
	Rendezvous1 []byte
	Keys        Keys
}

// Accept checks and answers an INTRODUCE2. The checks run cheapest
// first: framing, a known intro point, its rate limit, the proof of work
// (one hash), then the X25519 work, the decryption, the time window and
// the replay cache. A failure leaves no state behind except a spent token.
func (s *Server) Accept(msg []byte) (*Accepted, error) {
	h, err := ParseIntroduce1(msg)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	e := s.points[h.AuthKey]
	s.mu.Unlock()
	if e == nil {
		return nil, ErrUnknownIntro
	}
	now := s.now()
	if err := s.gate.Allow(h.AuthKey, now); err != nil {
		return nil, err
	}
	// The periods whose puzzle the nonce solves; with no puzzle, all.
	s.mu.Lock()
	var tries []introPeriod
	for _, ip := range e.published {
		if CheckPoW(ip.pow, h.AuthKey, h.X, h.PoWNonce) {
			tries = append(tries, ip)
		}
	}
	s.mu.Unlock()
	if len(tries) == 0 {
		return nil, ErrPoW
	}
	X, err := ecdh.X25519().NewPublicKey(h.X[:])
	if err != nil {
		return nil, fmt.Errorf("client ephemeral key: %w", ErrMalformed)
	}
	xb, err := e.keys.enc.ECDH(X)
	if err != nil {
		return nil, fmt.Errorf("x25519 with X: %w", ErrMalformed)
	}
	defer clear(xb)
	secret := introAEADSecret(xb, h.AuthKey[:], h.X[:], e.pub.EncKey[:])
	defer clear(secret)
	var plain []byte
	var sub [32]byte
	for _, ip := range tries {
		g, n, err := aeadFor(secret, ip.sub[:], tHsEnc)
		if err != nil {
			return nil, err
		}
		if plain, err = g.Open(nil, n, msg[introHeaderLen+2:], msg[:introHeaderLen]); err == nil {
			sub = ip.sub
			break
		}
	}
	if plain == nil {
		return nil, fmt.Errorf("introduce: %w", ErrDecrypt)
	}
	a := &Accepted{}
	if err := decodeIntroPlain(plain, &a.Introduction); err != nil {
		return nil, err
	}
	a.AuthKey = h.AuthKey
	if err := s.replay.check(h.X, a.Time, now); err != nil {
		return nil, err
	}
	y, err := ecdh.X25519().GenerateKey(s.rand)
	if err != nil {
		return nil, fmt.Errorf("ephemeral key: %w", err)
	}
	xy, err := y.ECDH(X)
	if err != nil {
		return nil, fmt.Errorf("x25519 with X: %w", ErrMalformed)
	}
	Y := y.PublicKey().Bytes()
	seed, auth := rendSecrets(xy, xb, h.AuthKey[:], e.pub.EncKey[:], h.X[:], Y, sub)
	clear(xy)
	if a.Keys, err = deriveKeys(seed); err != nil {
		return nil, err
	}
	a.Rendezvous1 = append(append(append(make([]byte, 0, Rendezvous1Len), a.Cookie[:]...), Y...), auth...)
	return a, nil
}

func decodeIntroPlain(plain []byte, in *Introduction) error {
	r := newReader(plain)
	in.Time = r.Time("time")
	copy(in.Cookie[:], r.Take(CookieLen, "cookie"))
	raw := r.Take(int(r.U8("rendezvous peer ID length")), "rendezvous peer ID")
	in.Rendezvous.OnionKey = take32(r, "rendezvous onion key")
	if err := r.Err(); err != nil {
		return err
	}
	if err := zeroPadding(plain[8+CookieLen+1+len(raw)+32:], "introduce plaintext"); err != nil {
		return err
	}
	id, err := peer.IDFromBytes(raw)
	if err != nil {
		return fmt.Errorf("rendezvous peer ID: %w", ErrMalformed)
	}
	in.Rendezvous.Relay = id
	return nil
}

// replayCache refuses a client ephemeral key seen before, and INTRODUCE
// messages whose time is outside the window, so that the cache need only
// remember keys for twice the window. When it is full of live entries it
// refuses new ones rather than forget one that could then be replayed.
type replayCache struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	seen   map[[32]byte]struct{}
	order  []replayEntry
}

type replayEntry struct {
	x  [32]byte
	at time.Time
}

// errReplayFull is returned when the replay cache is full.
var errReplayFull = errors.New("replay cache full")

func newReplayCache(window time.Duration, max int) *replayCache {
	return &replayCache{window: window, max: max, seen: make(map[[32]byte]struct{})}
}

func (c *replayCache) check(x [32]byte, ts, now time.Time) error {
	if ts.Before(now.Add(-c.window)) || ts.After(now.Add(c.window)) {
		return fmt.Errorf("introduce time %s, now %s: %w", ts.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339), ErrReplay)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.order) > 0 && now.Sub(c.order[0].at) > 2*c.window {
		delete(c.seen, c.order[0].x)
		c.order = c.order[1:]
	}
	if _, dup := c.seen[x]; dup {
		return ErrReplay
	}
	if len(c.order) >= c.max {
		return fmt.Errorf("%w: %w", errReplayFull, ErrRateLimited)
	}
	c.seen[x] = struct{}{}
	c.order = append(c.order, replayEntry{x: x, at: now})
	return nil
}

// ESTABLISH_INTRO is what the service sends an intro point over its intro
// circuit:
//
//	version u8 | auth key [32] | rate u32 | burst u32 | binding [32] |
//	signature [64] by the auth key over establishContext | all before it
//
// binding is a value both ends of the circuit derive from its key
// material (the circuit package provides it), so a cell seen on one
// circuit cannot establish the intro point on another. rate and burst set
// the intro point's Gate for this circuit.
const (
	establishVersion = 1
	establishContext = "pikcio-svc-establish-intro-v1"
	// EstablishIntroLen is the fixed size of an ESTABLISH_INTRO.
	EstablishIntroLen = 1 + 32 + 4 + 4 + 32 + 64
)

// EstablishIntro is a parsed, verified ESTABLISH_INTRO.
type EstablishIntro struct {
	AuthKey [32]byte
	Rate    uint32
	Burst   uint32
}

// EstablishIntro signs the ESTABLISH_INTRO of k for a circuit with
// binding, asking the intro point for rate INTRODUCE/s and burst.
func (k *IntroKeys) EstablishIntro(binding [32]byte, rate, burst uint32) []byte {
	pub := k.Point()
	m := make([]byte, 0, EstablishIntroLen)
	m = append(m, establishVersion)
	m = append(m, pub.AuthKey[:]...)
	m = binary.BigEndian.AppendUint32(m, rate)
	m = binary.BigEndian.AppendUint32(m, burst)
	m = append(m, binding[:]...)
	return append(m, ed25519.Sign(k.auth, append([]byte(establishContext), m...))...)
}

// ParseEstablishIntro checks an ESTABLISH_INTRO that arrived on the
// circuit with binding.
func ParseEstablishIntro(msg []byte, binding [32]byte) (EstablishIntro, error) {
	var e EstablishIntro
	if len(msg) != EstablishIntroLen {
		return e, fmt.Errorf("establish_intro of %d bytes, want %d: %w", len(msg), EstablishIntroLen, ErrMalformed)
	}
	if msg[0] != establishVersion {
		return e, fmt.Errorf("establish_intro version %d: %w", msg[0], ErrMalformed)
	}
	copy(e.AuthKey[:], msg[1:33])
	e.Rate = binary.BigEndian.Uint32(msg[33:37])
	e.Burst = binary.BigEndian.Uint32(msg[37:41])
	if [32]byte(msg[41:73]) != binding {
		return e, fmt.Errorf("establish_intro for another circuit: %w", ErrAuth)
	}
	if !ed25519.Verify(e.AuthKey[:], append([]byte(establishContext), msg[:73]...), msg[73:]) {
		return e, fmt.Errorf("establish_intro: %w", ErrBadSignature)
	}
	return e, nil
}
