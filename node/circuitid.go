package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/internal/sleep"
)

// Circuit identities (issue 13): a client builds its circuits from a
// libp2p host with a fresh identity (newCircuitHost), never identity.key.
// It makes a new one every period (Options.CircuitIdentityPeriod) and at
// each NewIdentity (the control API's and the status page's, Tor's
// NEWNYM): new circuits go on the new host, the pool retires the old
// host's circuits for new streams, and the old host closes once its last
// circuit has (a retired circuit closes when its last stream ends) or
// after CircuitIdentityDrain, whichever comes first. A guard so sees a
// new peer ID and a new connection each period, and nothing else in
// common with the last one but the address.

// Timings of circuit identities, in one place.
const (
	// DefaultCircuitIdentityPeriod is how long one circuit identity is
	// used (Options.CircuitIdentityPeriod): a day. Within it a guard can
	// tell that circuits share a connection, as a Tor guard can; across
	// periods only the address links them, and a user who moves between
	// networks is not followed by a peer ID for longer than a day.
	DefaultCircuitIdentityPeriod = 24 * time.Hour
	// CircuitIdentityDrain bounds how long a retired identity's circuits
	// may stay open (a download under way, a service's intro circuit,
	// which the service then replaces).
	CircuitIdentityDrain = 10 * time.Minute
	// circuitIdentityCheck is how often retired identities are looked at.
	circuitIdentityCheck = time.Second
)

// circuitIDs are a client's circuit identities: the one in use and the
// retired ones still draining. Close waits for its loop.
type circuitIDs struct {
	listen []string
	ro     circuit.RelayOptions
	period time.Duration
	drain  time.Duration

	mu       sync.Mutex
	opts     circuit.ClientOptions
	cur      *circuitID
	draining []*circuitID
	closed   bool
	wg       sync.WaitGroup
	ctx      context.Context // canceled by close
	cancel   context.CancelFunc
}

// circuitID is one identity: its host and the circuit client on it.
type circuitID struct {
	h       host.Host
	cc      *circuit.Client // nil until start
	born    time.Time
	retired time.Time
}

// newCircuitIDs makes the first identity's host (listening nowhere);
// period 0 is DefaultCircuitIdentityPeriod.
func newCircuitIDs(listen []string, ro circuit.RelayOptions, period time.Duration) (*circuitIDs, error) {
	if period <= 0 {
		period = DefaultCircuitIdentityPeriod
	}
	h, err := newCircuitHost(listen, ro)
	if err != nil {
		return nil, err
	}
	c := &circuitIDs{
		listen: listen, ro: ro, period: period, drain: CircuitIdentityDrain,
		cur: &circuitID{h: h, born: time.Now()},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// start makes the circuit client of the first identity with opts, which
// later identities' clients take too, and runs the loop that calls
// expired when the identity in use is a period old, and closes drained
// identities.
func (c *circuitIDs) start(opts circuit.ClientOptions, expired func()) *circuit.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opts = opts
	c.cur.cc = circuit.NewClient(c.cur.h, opts)
	c.cur.born = time.Now()
	c.wg.Go(func() { c.loop(expired) })
	return c.cur.cc
}

func (c *circuitIDs) loop(expired func()) {
	sleep.Every(c.ctx, circuitIdentityCheck, nil, func() {
		c.mu.Lock()
		old := c.cur != nil && time.Since(c.cur.born) >= c.period
		c.mu.Unlock()
		if old {
			expired()
		}
		c.closeDrained(false)
	})
}

// rotate puts a new identity in use and retires the current one; it
// returns the new identity's circuit client.
func (c *circuitIDs) rotate() (*circuit.Client, error) {
	h, err := newCircuitHost(c.listen, c.ro)
	if err != nil {
		return nil, fmt.Errorf("new circuit identity: %w", err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = h.Close()
		return nil, ErrClosed
	}
	next := &circuitID{h: h, cc: circuit.NewClient(h, c.opts), born: time.Now()}
	if c.cur != nil {
		c.cur.retired = next.born
		c.draining = append(c.draining, c.cur)
	}
	c.cur = next
	c.mu.Unlock()
	c.closeDrained(false)
	return next.cc, nil
}

// closeDrained closes the retired identities without circuits, or past
// the drain bound; all of them with all.
func (c *circuitIDs) closeDrained(all bool) error {
	c.mu.Lock()
	var done []*circuitID
	keep := c.draining[:0]
	for _, id := range c.draining {
		if all || len(id.cc.Circuits()) == 0 || time.Since(id.retired) >= c.drain {
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

func (id *circuitID) close() error {
	var errs []error
	if id.cc != nil {
		errs = append(errs, id.cc.Close())
	}
	return errors.Join(append(errs, id.h.Close())...)
}

// hosts counts the identities open, the one in use included (tests).
func (c *circuitIDs) hosts() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.draining) + 1
}

// close stops the loop and closes every identity.
func (c *circuitIDs) close() error {
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

// rotateCircuitIdentity puts a new circuit identity in use: new circuits
// are built from it, the record circuit is retired, and the caller
// retires the pools' circuits, which then close as their streams end.
func (n *Node) rotateCircuitIdentity() error {
	if n.cids == nil {
		return nil
	}
	cc, err := n.cids.rotate()
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.cc = cc
	recs := n.records
	n.mu.Unlock()
	if recs != nil {
		recs.retire()
	}
	return nil
}

// circuitIdentityExpired is the loop's expired: the period is over.
func (n *Node) circuitIdentityExpired() {
	if err := n.rotateCircuitIdentity(); err != nil {
		if !errors.Is(err, ErrClosed) {
			n.log.WithError(err).Warn("rotate the circuit identity")
		}
		return
	}
	n.mu.Lock()
	p, p6 := n.pool, n.pool6
	n.mu.Unlock()
	if p != nil {
		p.NewIdentity()
		p6.NewIdentity()
	}
	n.log.Debug("new circuit identity for the new period")
}

// buildOnCurrent builds a circuit from the circuit identity in use. A
// circuit that a new identity overtook while it was being built is
// closed and built again from the new one (once), so that no circuit of
// the old identity enters a pool after it retired them.
func (n *Node) buildOnCurrent(ctx context.Context, hops []circuit.Hop) (*circuit.Circuit, error) {
	for try := 0; ; try++ {
		n.mu.Lock()
		cc := n.cc
		n.mu.Unlock()
		c, err := cc.Build(ctx, hops)
		if err != nil {
			return nil, err
		}
		n.mu.Lock()
		same := n.cc == cc
		n.mu.Unlock()
		if same {
			return c, nil
		}
		_ = c.Close()
		if try > 0 {
			return nil, errIdentityChanged
		}
	}
}

// errIdentityChanged: new circuit identities overtook two builds in a row.
var errIdentityChanged = errors.New("the circuit identity changed during the build")
