package service

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// The relay's side of services: what an intro point and a rendezvous relay
// keep, with C the relay's handle of a circuit (comparable, e.g. a
// pointer). Neither table starts goroutines; expired entries go when the
// table is next used.

// Relay-side errors.
var (
	ErrTableFull     = errors.New("relay holds as many service circuits as it allows")
	ErrUnknownCookie = errors.New("no circuit waits under this rendezvous cookie")
	ErrCookieInUse   = errors.New("rendezvous cookie already in use")
)

// Relay-side defaults.
const (
	// DefaultMaxIntroCircuits caps the intro circuits one relay serves.
	DefaultMaxIntroCircuits = 1024
	// DefaultMaxRendezvous caps the rendezvous circuits waiting at once.
	DefaultMaxRendezvous = 4096
	// DefaultRendezvousWait is how long a rendezvous circuit waits for
	// the service's RENDEZVOUS1.
	DefaultRendezvousWait = 2 * time.Minute
	// EstablishRendezvousLen is the size of an ESTABLISH_RENDEZVOUS: the cookie.
	EstablishRendezvousLen = CookieLen
)

// IntroTable is an intro point's map from intro auth key to the service's
// circuit, each with the token bucket the service asked for in
// ESTABLISH_INTRO (capped at the relay's DefaultIntroRate and
// DefaultIntroBurst). Safe for concurrent use.
type IntroTable[C comparable] struct {
	max int

	mu     sync.Mutex
	byKey  map[[32]byte]*introReg[C]
	byCirc map[C][32]byte
}

type introReg[C comparable] struct {
	circ C
	lim  *rate.Limiter
}

// NewIntroTable makes an intro point table of at most max circuits (<= 0:
// DefaultMaxIntroCircuits).
func NewIntroTable[C comparable](max int) *IntroTable[C] {
	if max <= 0 {
		max = DefaultMaxIntroCircuits
	}
	return &IntroTable[C]{max: max, byKey: make(map[[32]byte]*introReg[C]), byCirc: make(map[C][32]byte)}
}

// Establish handles an ESTABLISH_INTRO that arrived on circ, whose binding
// is binding. The same auth key on a new circuit replaces the old one (the
// service rebuilt its circuit); a circuit serves one auth key.
func (t *IntroTable[C]) Establish(circ C, msg []byte, binding [32]byte) (EstablishIntro, error) {
	e, err := ParseEstablishIntro(msg, binding)
	if err != nil {
		return e, err
	}
	r, b := rate.Limit(DefaultIntroRate), DefaultIntroBurst
	if e.Rate > 0 && e.Rate < DefaultIntroRate {
		r = rate.Limit(e.Rate)
	}
	if e.Burst > 0 && e.Burst < DefaultIntroBurst {
		b = int(e.Burst)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if old, ok := t.byCirc[circ]; ok && old != e.AuthKey {
		return e, fmt.Errorf("circuit already serves another intro key: %w", ErrMalformed)
	}
	if prev, ok := t.byKey[e.AuthKey]; ok {
		delete(t.byCirc, prev.circ)
	} else if len(t.byKey) >= t.max {
		return e, ErrTableFull
	}
	t.byKey[e.AuthKey] = &introReg[C]{circ: circ, lim: rate.NewLimiter(r, b)}
	t.byCirc[circ] = e.AuthKey
	return e, nil
}

// Route returns the service circuit an INTRODUCE1 is for, to forward it
// unchanged as INTRODUCE2, after taking a token of that circuit's bucket.
func (t *IntroTable[C]) Route(msg []byte, now time.Time) (C, error) {
	var zero C
	h, err := ParseIntroduce1(msg)
	if err != nil {
		return zero, err
	}
	t.mu.Lock()
	reg := t.byKey[h.AuthKey]
	t.mu.Unlock()
	if reg == nil {
		return zero, ErrUnknownIntro
	}
	if !reg.lim.AllowN(now, 1) {
		return zero, ErrRateLimited
	}
	return reg.circ, nil
}

// Remove forgets circ (it closed).
func (t *IntroTable[C]) Remove(circ C) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if k, ok := t.byCirc[circ]; ok {
		delete(t.byCirc, circ)
		if reg := t.byKey[k]; reg != nil && reg.circ == circ {
			delete(t.byKey, k)
		}
	}
}

// Len is the number of intro circuits served.
func (t *IntroTable[C]) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byKey)
}

// RendezvousTable is a rendezvous relay's map from cookie to the client's
// waiting circuit. Safe for concurrent use.
type RendezvousTable[C comparable] struct {
	max  int
	wait time.Duration

	mu     sync.Mutex
	byCook map[[CookieLen]byte]rendReg[C]
	byCirc map[C][CookieLen]byte
}

type rendReg[C comparable] struct {
	circ  C
	until time.Time
}

// NewRendezvousTable makes a table of at most max waiting circuits, each
// waiting at most wait (<= 0: the defaults).
func NewRendezvousTable[C comparable](max int, wait time.Duration) *RendezvousTable[C] {
	if max <= 0 {
		max = DefaultMaxRendezvous
	}
	if wait <= 0 {
		wait = DefaultRendezvousWait
	}
	return &RendezvousTable[C]{max: max, wait: wait, byCook: make(map[[CookieLen]byte]rendReg[C]), byCirc: make(map[C][CookieLen]byte)}
}

func (t *RendezvousTable[C]) expire(now time.Time) {
	for c, r := range t.byCook {
		if now.After(r.until) {
			delete(t.byCook, c)
			delete(t.byCirc, r.circ)
		}
	}
}

// Establish handles an ESTABLISH_RENDEZVOUS (the cookie) on circ.
func (t *RendezvousTable[C]) Establish(circ C, msg []byte, now time.Time) error {
	if len(msg) != EstablishRendezvousLen {
		return fmt.Errorf("establish_rendezvous of %d bytes, want %d: %w", len(msg), EstablishRendezvousLen, ErrMalformed)
	}
	cookie := [CookieLen]byte(msg)
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.byCook) >= t.max {
		t.expire(now)
	}
	switch _, busy := t.byCirc[circ]; {
	case busy:
		return fmt.Errorf("circuit already waits under a cookie: %w", ErrCookieInUse)
	case len(t.byCook) >= t.max:
		return ErrTableFull
	}
	if r, ok := t.byCook[cookie]; ok {
		if !now.After(r.until) {
			return ErrCookieInUse
		}
		delete(t.byCirc, r.circ)
	}
	t.byCook[cookie] = rendReg[C]{circ: circ, until: now.Add(t.wait)}
	t.byCirc[circ] = cookie
	return nil
}

// Join handles a RENDEZVOUS1: it returns the client's circuit, which the
// relay joins to the one the message came on, and the RENDEZVOUS2 to send
// the client. A cookie joins once.
func (t *RendezvousTable[C]) Join(msg []byte, now time.Time) (C, []byte, error) {
	var zero C
	cookie, r2, err := ParseRendezvous1(msg)
	if err != nil {
		return zero, nil, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.byCook[cookie]
	if !ok || now.After(r.until) {
		return zero, nil, ErrUnknownCookie
	}
	delete(t.byCook, cookie)
	delete(t.byCirc, r.circ)
	return r.circ, r2, nil
}

// Remove forgets circ (it closed).
func (t *RendezvousTable[C]) Remove(circ C) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.byCirc[circ]; ok {
		delete(t.byCirc, circ)
		delete(t.byCook, c)
	}
}
