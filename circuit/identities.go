package circuit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/pikcio/pikcio/internal/sleep"
)

// Circuit identities (issue 13): a client builds its circuits from a
// libp2p host with a fresh identity, never its own. It makes a new one
// every period (IdentityOptions.Period) and at each Rotate (Tor's
// NEWNYM): new circuits go on the new host, the caller retires the old
// host's circuits for new streams, and the old host closes once its last
// circuit has (a retired circuit closes when its last stream ends) or
// after IdentityOptions.Drain, whichever comes first. A guard so sees a
// new peer ID and a new connection each period, and nothing else in
// common with the last one but the address.

// ErrIdentitiesClosed: Rotate after Close.
var ErrIdentitiesClosed = errors.New("circuit identities closed")

// errIdentityChanged: new circuit identities overtook two builds in a row.
var errIdentityChanged = errors.New("the circuit identity changed during the build")

// Identities are a client's circuit identities: the one in use and the
// retired ones still draining. Close waits for its loop.
type Identities struct {
	newHost func() (host.Host, error)
	o       IdentityOptions

	mu       sync.Mutex
	opts     ClientOptions
	cur      *identity
	draining []*identity
	closed   bool
	wg       sync.WaitGroup
	ctx      context.Context // canceled by Close
	cancel   context.CancelFunc
}

// identity is one identity: its host and the circuit client on it.
type identity struct {
	h        host.Host
	cc       *Client // nil until Start
	born     time.Time
	retired  time.Time
	building int // builds under way (c.mu)
}

// NewIdentities makes the first identity's host with newHost, which
// makes every later one too (a fresh key each, NewDialHost).
func NewIdentities(newHost func() (host.Host, error), o IdentityOptions) (*Identities, error) {
	h, err := newHost()
	if err != nil {
		return nil, err
	}
	c := &Identities{newHost: newHost, o: o.withDefaults(), cur: &identity{h: h, born: time.Now()}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// Start makes the circuit client of the first identity with opts, which
// later identities' clients take too, and runs the loop that calls
// expired when the identity in use is a period old, and closes drained
// identities. Start is called once.
func (c *Identities) Start(opts ClientOptions, expired func()) *Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opts = opts
	c.cur.cc = NewClient(c.cur.h, opts)
	c.cur.born = time.Now()
	c.wg.Go(func() { c.loop(expired) })
	return c.cur.cc
}

func (c *Identities) loop(expired func()) {
	sleep.Every(c.ctx, c.o.Check, nil, func() {
		c.mu.Lock()
		old := c.cur != nil && time.Since(c.cur.born) >= c.o.Period
		c.mu.Unlock()
		if old {
			expired()
		}
		c.closeDrained(false)
	})
}

// begin takes the identity in use for a build (nil before Start and
// after Close): it is not closed while the build runs, for a retired
// identity's host closing under a build would fail it at the guard, as
// if the guard were at fault.
func (c *Identities) begin() *identity {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil || c.cur.cc == nil {
		return nil
	}
	c.cur.building++
	return c.cur
}

// end ends a build on id and reports whether id is still in use.
func (c *Identities) end(id *identity) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	id.building--
	return c.cur == id
}

// Build builds a circuit from the identity in use. A circuit that a new
// identity overtook while it was being built is closed and built again
// from the new one (once), so that no circuit of the old identity enters
// a pool after the caller retired them.
func (c *Identities) Build(ctx context.Context, hops []Hop) (*Circuit, error) {
	for try := 0; ; try++ {
		id := c.begin()
		if id == nil {
			return nil, fmt.Errorf("build circuit: %w", ErrIdentitiesClosed)
		}
		ci, err := id.cc.Build(ctx, hops)
		same := c.end(id)
		if err == nil && same {
			return ci, nil
		}
		if err == nil {
			_ = ci.Close()
		}
		if !same {
			_ = c.closeDrained(false)
		}
		if err != nil {
			return nil, err
		}
		if try > 0 {
			return nil, errIdentityChanged
		}
	}
}

// Rotate puts a new identity in use and retires the current one; it
// returns the new identity's circuit client.
func (c *Identities) Rotate() (*Client, error) {
	h, err := c.newHost()
	if err != nil {
		return nil, fmt.Errorf("new circuit identity: %w", err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = h.Close()
		return nil, ErrIdentitiesClosed
	}
	next := &identity{h: h, cc: NewClient(h, c.opts), born: time.Now()}
	if c.cur != nil {
		c.cur.retired = next.born
		c.draining = append(c.draining, c.cur)
	}
	c.cur = next
	c.mu.Unlock()
	c.closeDrained(false)
	return next.cc, nil
}

// closeDrained closes the retired identities without circuits or builds,
// or past the drain bound; all of them with all.
func (c *Identities) closeDrained(all bool) error {
	c.mu.Lock()
	var done []*identity
	keep := c.draining[:0]
	for _, id := range c.draining {
		if all || id.building == 0 && len(id.cc.Circuits()) == 0 || time.Since(id.retired) >= c.o.Drain {
			done = append(done, id)
		} else {
			keep = append(keep, id)
		}
	}
	clear(c.draining[len(keep):])
	c.draining = keep
	c.mu.Unlock()
	var errs []error
	for _, id := range done {
		errs = append(errs, id.close())
	}
	return errors.Join(errs...)
}

func (id *identity) close() error {
	var errs []error
	if id.cc != nil {
		errs = append(errs, id.cc.Close())
	}
	return errors.Join(append(errs, id.h.Close())...)
}

// Hosts counts the identities open, the one in use included.
func (c *Identities) Hosts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.draining) + 1
}

// Close stops the loop and closes every identity; it is idempotent.
func (c *Identities) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.cancel()
	c.mu.Unlock()
	c.wg.Wait()
	err := c.closeDrained(true)
	c.mu.Lock()
	cur := c.cur
	c.cur = nil
	c.mu.Unlock()
	if cur != nil {
		err = errors.Join(err, cur.close())
	}
	return err
}
