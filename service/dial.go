package service

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// ErrUnreachable: no intro point of the service's descriptor led to it.
var ErrUnreachable = errors.New("service unreachable through any of its intro points")

// DialerOptions configure the client side. Zero fields take defaults.
type DialerOptions struct {
	Builder Builder
	Store   RecordStore
	// ClientKey is this node's X25519 key for contacts-only descriptors
	// (nil: open descriptors only).
	ClientKey    *ecdh.PrivateKey
	PeriodLength time.Duration
	Now          func() time.Time
	Rand         io.Reader
}

// Dialer connects to services by address: it fetches and caches their
// descriptors, and keeps one joined circuit per service for the streams
// it opens (a warm connection costs one stream round trip).
type Dialer struct {
	o DialerOptions

	mu     sync.Mutex
	descs  map[Address]*Descriptor
	circs  map[Address]Circuit
	closed bool
}

// NewDialer makes a Dialer.
func NewDialer(o DialerOptions) *Dialer {
	runtimeDefaults(&o.PeriodLength, &o.Now, &o.Rand)
	return &Dialer{o: o, descs: make(map[Address]*Descriptor), circs: make(map[Address]Circuit)}
}

// Close closes every joined circuit.
func (d *Dialer) Close() error {
	d.mu.Lock()
	d.closed = true
	circs := d.circs
	d.circs = make(map[Address]Circuit)
	d.mu.Unlock()
	for _, c := range circs {
		_ = c.Close()
	}
	return nil
}

// Joined is the number of joined circuits open now.
func (d *Dialer) Joined() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.circs)
}

// Dial opens a stream to the service at addr. port is passed on; the
// service connects every stream to its one target.
func (d *Dialer) Dial(ctx context.Context, addr Address, port uint16) (net.Conn, error) {
	if c := d.cached(addr); c != nil {
		if s, err := c.OpenStream(ctx, addr.Host(), port); err == nil {
			return s, nil
		}
		d.forget(addr, c)
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultConnectTimeout)
	defer cancel()
	c, err := d.join(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr.Host(), err)
	}
	s, err := c.OpenStream(ctx, addr.Host(), port)
	if err != nil {
		d.forget(addr, c)
		return nil, fmt.Errorf("open stream to %s: %w", addr.Host(), err)
	}
	return s, nil
}

func (d *Dialer) cached(addr Address) Circuit {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.circs[addr]
	if c == nil {
		return nil
	}
	select {
	case <-c.Done():
		delete(d.circs, addr)
		return nil
	default:
		return c
	}
}

func (d *Dialer) forget(addr Address, c Circuit) {
	d.mu.Lock()
	if d.circs[addr] == c {
		delete(d.circs, addr)
	}
	d.mu.Unlock()
	_ = c.Close()
}

// join makes a joined circuit to addr. A cached descriptor whose intro
// points all fail is fetched again once: the service may have replaced
// them.
func (d *Dialer) join(ctx context.Context, addr Address) (Circuit, error) {
	var errs []error
	for attempt := 0; attempt < 2; attempt++ {
		desc, err := d.descriptor(ctx, addr, attempt > 0)
		if err != nil {
			return nil, errors.Join(append(errs, err)...)
		}
		c, err := d.introduce(ctx, addr, desc)
		if err == nil {
			d.mu.Lock()
			if d.closed {
				d.mu.Unlock()
				_ = c.Close()
				return nil, net.ErrClosed
			}
			if old := d.circs[addr]; old != nil {
				defer old.Close()
			}
			d.circs[addr] = c
			d.mu.Unlock()
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// descriptor returns addr's descriptor for now, from the cache unless
// fresh. Near a turnover the neighbouring period's may be all there is.
func (d *Dialer) descriptor(ctx context.Context, addr Address, fresh bool) (*Descriptor, error) {
	now := d.o.Now()
	p := PeriodAt(now, d.o.PeriodLength)
	d.mu.Lock()
	desc := d.descs[addr]
	d.mu.Unlock()
	if !fresh && desc != nil && desc.Period == p {
		return desc, nil
	}
	desc, err := Fetch(ctx, d.o.Store, addr, p, d.o.ClientKey)
	if err != nil && !errors.Is(err, ErrNotAuthorized) && p.Number > 0 {
		prev := Period{Number: p.Number - 1, Length: p.Length}
		if d2, err2 := Fetch(ctx, d.o.Store, addr, prev, d.o.ClientKey); err2 == nil {
			desc, err = d2, nil
		}
	}
	if errors.Is(err, ErrNotAuthorized) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("no descriptor: %w: %w", ErrUnreachable, err)
	}
	d.mu.Lock()
	d.descs[addr] = desc
	d.mu.Unlock()
	return desc, nil
}

// introduce builds a rendezvous circuit, then tries the intro points in a
// random order until one accepts, and waits for the service.
func (d *Dialer) introduce(ctx context.Context, addr Address, desc *Descriptor) (Circuit, error) {
	if len(desc.IntroPoints) == 0 {
		return nil, fmt.Errorf("descriptor names no intro point: %w", ErrUnreachable)
	}
	points := append([]IntroPoint(nil), desc.IntroPoints...)
	d.shuffle(points)
	avoid := make([]peer.ID, 0, len(points))
	for _, ip := range points {
		avoid = append(avoid, ip.Relay)
	}
	// A rendezvous circuit waits under one cookie, and each INTRODUCE
	// carries its own: a failed attempt costs its rendezvous circuit.
	// The intro circuit is built while the rendezvous circuit is, as Tor
	// does: a cold connection waits for one build, not two.
	var errs []error
	for _, ip := range points {
		ic := d.buildBehind(ctx, ip.Relay)
		rc, rp, err := d.o.Builder.BuildAny(ctx, avoid)
		if err != nil {
			err = fmt.Errorf("build rendezvous circuit: %w", err)
		} else if err = d.tryIntro(ctx, rc, ic, addr, desc, ip, rp); err != nil {
			_ = rc.Close()
		}
		ic.stop()
		if err != nil {
			// A circuit that could not be built is tried again with the
			// next intro point, as a refused introduction is.
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		return rc, nil
	}
	return nil, errors.Join(append(errs, ErrUnreachable)...)
}

// behind is a circuit being built in the background: wait takes it, and
// stop ends the build and closes the circuit unless wait took it.
type behind struct {
	cancel context.CancelFunc
	done   chan struct{}
	c      Circuit
	err    error
	taken  bool
}

func (d *Dialer) buildBehind(ctx context.Context, relay peer.ID) *behind {
	ctx, cancel := context.WithCancel(ctx)
	b := &behind{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.c, b.err = d.o.Builder.BuildTo(ctx, relay)
	}()
	return b
}

func (b *behind) wait() (Circuit, error) {
	<-b.done
	b.taken = true
	return b.c, b.err
}

func (b *behind) stop() {
	b.cancel()
	<-b.done
	if !b.taken && b.err == nil && b.c != nil {
		_ = b.c.Close()
	}
}

func (d *Dialer) tryIntro(ctx context.Context, rc Circuit, ib *behind, addr Address, desc *Descriptor, ip IntroPoint, rp RendezvousPoint) error {
	ci, err := Introduce(ctx, d.o.Rand, addr, desc, ip, rp, d.o.Now())
	if err != nil {
		return err
	}
	finish := func(r2 []byte) ([]byte, error) {
		k, err := ci.Finish(r2)
		if err != nil {
			return nil, err
		}
		return k.Seed(), nil
	}
	if err := rc.EstablishRendezvous(ctx, ci.Cookie[:], finish); err != nil {
		return err
	}
	ic, err := ib.wait()
	if err != nil {
		return fmt.Errorf("build intro circuit: %w", err)
	}
	err = ic.Introduce(ctx, ci.Message)
	_ = ic.Close()
	if err != nil {
		return err
	}
	jctx, cancel := context.WithTimeout(ctx, DefaultJoinTimeout)
	defer cancel()
	if err := rc.AwaitRendezvous(jctx); err != nil {
		return err
	}
	return nil
}

func (d *Dialer) shuffle(p []IntroPoint) {
	for i := len(p) - 1; i > 0; i-- {
		j, err := rand.Int(d.o.Rand, big.NewInt(int64(i+1)))
		if err != nil {
			return
		}
		p[i], p[j.Int64()] = p[j.Int64()], p[i]
	}
}

// DialService reaches a service by its .pikcio name (proxy's
// ServiceDialer): ADDRESS.pikcio, or CONTACTNAME.pikcio through lookup,
// the local contacts file (Resolve). The name never leaves the machine.
func (d *Dialer) DialService(ctx context.Context, host string, port uint16, lookup func(name string) (Address, bool)) (net.Conn, error) {
	addr, err := Resolve(host, lookup)
	if err != nil {
		return nil, err
	}
	return d.Dial(ctx, addr, port)
}
