package service

import (
	"context"
	"crypto/ecdh"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/sirupsen/logrus"
)

// HostOptions configure a published service's runtime. Zero fields take
// the defaults of runtime.go.
type HostOptions struct {
	Builder Builder
	Store   RecordStore
	// Target is the local TCP address streams are connected to.
	Target string
	// Contacts, when set, makes the service for contacts only: their
	// X25519 client keys, read at each publication.
	Contacts func() []*ecdh.PublicKey

	IntroPoints  int
	Republish    time.Duration
	PublishAhead time.Duration
	Retry        time.Duration
	PeriodLength time.Duration
	Now          func() time.Time
	Rand         io.Reader
	Log          logrus.FieldLogger
}

func (o HostOptions) withDefaults() HostOptions {
	if o.IntroPoints <= 0 {
		o.IntroPoints = DefaultIntroPoints
	}
	o.IntroPoints = min(o.IntroPoints, MaxIntroPoints)
	if o.Republish <= 0 {
		o.Republish = DefaultRepublish
	}
	if o.PublishAhead <= 0 {
		o.PublishAhead = DefaultPublishAhead
	}
	if o.Retry <= 0 {
		o.Retry = DefaultRetry
	}
	runtimeDefaults(&o.PeriodLength, &o.Now, &o.Rand)
	if o.Log == nil {
		o.Log = logrus.WithField("component", "service")
	}
	return o
}

// Host runs one published service: it keeps circuits to its intro points,
// publishes descriptors naming them, replaces an intro point whose circuit
// fails and publishes again at once, and answers introductions by joining
// the client at its rendezvous relay.
type Host struct {
	id  *Identity
	o   HostOptions
	srv *Server

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}
	sem    chan struct{} // rendezvous builds under way

	mu        sync.Mutex
	intros    map[[32]byte]*introSlot
	joined    map[Circuit]struct{}
	published time.Time
	pubErr    error
	target    string                   // o.Target, then Update's
	contacts  func() []*ecdh.PublicKey // o.Contacts, then Update's
	revisions map[uint64]uint64        // last revision uploaded, by period number
}

type introSlot struct {
	keys *IntroKeys
	circ Circuit
}

// NewHost starts serving id.
func NewHost(id *Identity, o HostOptions) (*Host, error) {
	o = o.withDefaults()
	if o.Builder == nil || o.Store == nil || o.Target == "" {
		return nil, errors.New("service host: builder, record store and target are required")
	}
	h := &Host{
		id:     id,
		o:      o,
		srv:    NewServer(id, ServerOptions{Now: o.Now, Rand: o.Rand}),
		kick:   make(chan struct{}, 1),
		sem:    make(chan struct{}, DefaultMaxRendezvousBuilds),
		intros: make(map[[32]byte]*introSlot),
		joined: make(map[Circuit]struct{}),

		revisions: make(map[uint64]uint64),
		target:    o.Target,
		contacts:  o.Contacts,
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	h.wg.Add(1)
	go h.run()
	return h, nil
}

// Address is the service's address.
func (h *Host) Address() Address { return h.id.Address() }

// Close stops the service, closes its circuits and waits.
func (h *Host) Close() error {
	h.cancel()
	h.mu.Lock()
	var circs []Circuit
	for _, s := range h.intros {
		circs = append(circs, s.circ)
	}
	for c := range h.joined {
		circs = append(circs, c)
	}
	h.mu.Unlock()
	for _, c := range circs {
		_ = c.Close()
	}
	h.wg.Wait()
	return nil
}

// HostStatus is what a service's status shows: its intro points and how
// many joined circuits are open, never who is at their other end.
type HostStatus struct {
	Address     Address
	IntroPoints []peer.ID
	Joined      int
	Published   time.Time // last successful upload; zero: none yet
	PublishErr  error
}

// Status returns the service's status.
func (h *Host) Status() HostStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := HostStatus{Address: h.id.Address(), Joined: len(h.joined), Published: h.published, PublishErr: h.pubErr}
	for _, s := range h.intros {
		st.IntroPoints = append(st.IntroPoints, s.keys.Relay)
	}
	return st
}

// Update changes the service's target, for the streams opened from now
// on, and whether it is for contacts only (contacts nil: open), which
// republishes at once. A service that becomes contacts only also revokes
// (see revoke): whoever read the open descriptor could reach it.
func (h *Host) Update(target string, contacts func() []*ecdh.PublicKey) {
	h.mu.Lock()
	changed := (h.contacts == nil) != (contacts == nil)
	h.target, h.contacts = target, contacts
	h.mu.Unlock()
	if changed && contacts != nil {
		h.revoke()
	}
	if changed {
		h.poke()
	}
}

// revoke shuts out whoever could reach the service until now: it drops
// the intro points, whose keys every reader of a descriptor knows (new
// ones are built and published), and closes the joined circuits. For a
// service that becomes contacts only, or drops a contact.
func (h *Host) revoke() {
	h.mu.Lock()
	var circs []Circuit
	for auth, s := range h.intros {
		circs = append(circs, s.circ)
		delete(h.intros, auth)
		h.srv.RemoveIntroPoint(auth)
	}
	for c := range h.joined {
		circs = append(circs, c)
	}
	h.mu.Unlock()
	for _, c := range circs {
		_ = c.Close() // serveIntro and the joined circuits' watchers end
	}
}

// contactsFn is the current contacts source, nil for an open service.
func (h *Host) contactsFn() func() []*ecdh.PublicKey {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.contacts
}

func (h *Host) poke() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// run keeps the intro points and the descriptors up to date.
func (h *Host) run() {
	defer h.wg.Done()
	var next time.Time // when to publish again even if nothing changed
	dirty := true
	var contacts map[string]bool // the last contacts' keys; nil: open
	for {
		if now, dropped := h.contactsChanged(contacts); (now == nil) != (contacts == nil) || !maps.Equal(now, contacts) {
			// A contact added or dropped: the descriptor's client list
			// changes at once, not at the next republication, and a
			// dropped contact is shut out.
			if dropped {
				h.revoke()
			}
			contacts, dirty = now, true
		}
		changed, full := h.fill()
		dirty = dirty || changed
		wait := h.o.Republish
		if h.n() > 0 && (dirty || !h.o.Now().Before(next)) {
			if err := h.publish(); err != nil {
				h.o.Log.WithError(err).Warn("service: descriptor upload failed")
				wait = h.o.Retry
			} else {
				dirty = false
				next = h.o.Now().Add(h.o.Republish)
			}
		}
		if !full || h.contactsFn() != nil {
			wait = min(wait, h.o.Retry)
		}
		t := time.NewTimer(wait)
		select {
		case <-h.ctx.Done():
			t.Stop()
			return
		case <-h.kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// contactsChanged returns the contacts' keys of a contacts-only service
// (nil for an open one) and whether a key of prev is no longer among
// them.
func (h *Host) contactsChanged(prev map[string]bool) (now map[string]bool, dropped bool) {
	fn := h.contactsFn()
	if fn == nil {
		return nil, false
	}
	now = make(map[string]bool)
	for _, k := range fn() {
		now[string(k.Bytes())] = true
	}
	for k := range prev {
		dropped = dropped || !now[k]
	}
	return now, dropped
}

func (h *Host) n() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.intros)
}

// fill builds intro circuits until there are enough; it reports whether
// the set changed and whether it is full.
func (h *Host) fill() (changed, full bool) {
	for h.n() < h.o.IntroPoints {
		if h.ctx.Err() != nil {
			return changed, false
		}
		if err := h.addIntro(); err != nil {
			h.o.Log.WithError(err).Debug("service: intro point not established")
			return changed, false
		}
		changed = true
	}
	return changed, true
}

func (h *Host) addIntro() error {
	h.mu.Lock()
	avoid := make([]peer.ID, 0, len(h.intros))
	for _, s := range h.intros {
		avoid = append(avoid, s.keys.Relay)
	}
	h.mu.Unlock()
	ctx, cancel := context.WithTimeout(h.ctx, DefaultConnectTimeout)
	defer cancel()
	c, rp, err := h.o.Builder.BuildAny(ctx, avoid)
	if err != nil {
		return fmt.Errorf("build intro circuit: %w", err)
	}
	keys, err := NewIntroKeys(h.o.Rand, rp.Relay)
	if err != nil {
		_ = c.Close()
		return err
	}
	if err := c.EstablishIntro(ctx, keys.EstablishIntro(c.Binding(), 0, 0)); err != nil {
		_ = c.Close()
		return err
	}
	s := &introSlot{keys: keys, circ: c}
	auth := keys.Point().AuthKey
	h.mu.Lock()
	if h.ctx.Err() != nil {
		h.mu.Unlock()
		_ = c.Close()
		return h.ctx.Err()
	}
	h.intros[auth] = s
	h.mu.Unlock()
	h.wg.Add(1)
	go h.serveIntro(s, auth)
	return nil
}

// periods are those to publish for at now: the current one and, near its
// end, the next.
func (h *Host) periods(now time.Time) []Period {
	p := PeriodAt(now, h.o.PeriodLength)
	if p.Next().Start().Sub(now) <= h.o.PublishAhead {
		return []Period{p, p.Next()}
	}
	return []Period{p}
}

// serveIntro answers the INTRODUCE2 messages of one intro circuit until it
// fails; then the intro point is dropped and replaced.
func (h *Host) serveIntro(s *introSlot, auth [32]byte) {
	defer h.wg.Done()
	for {
		msg, err := s.circ.Introduction(h.ctx)
		if err != nil {
			break
		}
		select {
		case h.sem <- struct{}{}:
		case <-h.ctx.Done():
		}
		if h.ctx.Err() != nil {
			break
		}
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			defer func() { <-h.sem }()
			if err := h.rendezvous(msg); err != nil {
				h.o.Log.WithError(err).Debug("service: introduction not answered")
			}
		}()
	}
	_ = s.circ.Close()
	h.srv.RemoveIntroPoint(auth)
	h.mu.Lock()
	delete(h.intros, auth)
	h.mu.Unlock()
	if h.ctx.Err() == nil {
		h.o.Log.Info("service: an intro point was lost; replacing it")
		h.poke()
	}
}

// rendezvous checks an INTRODUCE2 and joins its client.
func (h *Host) rendezvous(msg []byte) error {
	a, err := h.srv.Accept(msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(h.ctx, DefaultConnectTimeout)
	defer cancel()
	c, err := h.o.Builder.BuildTo(ctx, a.Rendezvous.Relay)
	if err != nil {
		return fmt.Errorf("build rendezvous circuit: %w", err)
	}
	seed := a.Keys.Seed()
	defer clear(seed)
	if err := c.Rendezvous(a.Rendezvous1, seed, h.dialTarget); err != nil {
		_ = c.Close()
		return err
	}
	h.mu.Lock()
	if h.ctx.Err() != nil {
		h.mu.Unlock()
		_ = c.Close()
		return h.ctx.Err()
	}
	h.joined[c] = struct{}{}
	h.mu.Unlock()
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		select {
		case <-c.Done():
		case <-h.ctx.Done():
			_ = c.Close()
		}
		h.mu.Lock()
		delete(h.joined, c)
		h.mu.Unlock()
	}()
	return nil
}

func (h *Host) dialTarget(ctx context.Context) (net.Conn, error) {
	h.mu.Lock()
	target := h.target
	h.mu.Unlock()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return nil, fmt.Errorf("service target: %w", err)
	}
	return c, nil
}

// revision is the next revision for p: Identity.Revision counts seconds,
// and a descriptor republished within the second of the last (an intro
// point replaced at once) must still replace it.
func (h *Host) revision(p Period, now time.Time) uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := max(h.id.Revision(p, now), h.revisions[p.Number]+1)
	h.revisions[p.Number] = r
	for n := range h.revisions {
		if n+1 < p.Number {
			delete(h.revisions, n)
		}
	}
	return r
}

// publish uploads the descriptors of the current period (and the next,
// near the turnover) naming the intro points now held.
func (h *Host) publish() error {
	now := h.o.Now()
	h.mu.Lock()
	points := make([]IntroPoint, 0, len(h.intros))
	periods := h.periods(now)
	for _, s := range h.intros {
		points = append(points, s.keys.Point())
		for _, p := range periods {
			h.srv.AddIntroPoint(s.keys, p, PoWParams{})
		}
	}
	h.mu.Unlock()
	var contacts []*ecdh.PublicKey
	fn := h.contactsFn()
	if fn != nil {
		contacts = fn()
	}
	var errs []error
	for _, p := range periods {
		d := &Descriptor{Period: p, Revision: h.revision(p, now), IntroPoints: points, ContactsOnly: fn != nil}
		ctx, cancel := context.WithTimeout(h.ctx, DefaultConnectTimeout)
		errs = append(errs, h.id.Publish(ctx, h.o.Store, h.o.Rand, d, contacts))
		cancel()
	}
	err := errors.Join(errs...)
	h.mu.Lock()
	h.pubErr = err
	if err == nil {
		h.published = now
	}
	h.mu.Unlock()
	return err
}
