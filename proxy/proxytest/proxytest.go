// Package proxytest provides a fake proxy.Circuit for tests of the proxy
// front ends and pool. A fake circuit "exits" by dialing the destination
// directly, and only on loopback: names come from a small table
// ("only-at-exit.test" -> 127.0.0.1, a name no real resolver knows), IP
// literals must be loopback. It can be told to fail a host with an exitnode
// sentinel, to stall, or to die.
package proxytest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/pikcio/pikcio/proxy"
)

// ExitOnlyName resolves only at the fake exit.
const ExitOnlyName = "only-at-exit.test"

// ErrCircuitDead is the circuit failure a dead fake circuit reports.
var ErrCircuitDead = errors.New("proxytest: circuit dead")

// ErrBuild is what a failing build returns.
var ErrBuild = errors.New("proxytest: build failed")

var _ proxy.Circuit = (*Circuit)(nil)

// Builder builds fake circuits and holds the settings they share.
type Builder struct {
	mu        sync.Mutex
	hosts     map[string]string // name -> IP literal
	failHosts map[string]error  // host -> error OpenStream returns
	stall     map[string]bool   // host -> OpenStream waits for its context
	stallExit map[string]bool   // exit name -> its circuits' opens wait
	circuits  []*Circuit
	builds    int
	hook      func(ctx context.Context) error
	exits     []string      // exit names circuits are built through, in turn
	middles   []string      // middle names, in turn
	rtt       time.Duration // what circuits' RTT reports
	streamCap int           // streams a circuit's exit takes; 0: no cap
}

// NewBuilder returns a builder whose circuits resolve ExitOnlyName and
// "localhost" to 127.0.0.1.
func NewBuilder() *Builder {
	return &Builder{
		hosts:     map[string]string{ExitOnlyName: "127.0.0.1", "localhost": "127.0.0.1"},
		failHosts: make(map[string]error),
		stall:     make(map[string]bool),
		stallExit: make(map[string]bool),
	}
}

// Build builds a circuit; it is a proxy.BuildFunc.
func (b *Builder) Build(ctx context.Context) (proxy.Circuit, error) {
	b.mu.Lock()
	hook := b.hook
	b.mu.Unlock()
	if hook != nil {
		if err := hook(ctx); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.builds++
	c := &Circuit{
		ID:      b.builds,
		b:       b,
		done:    make(chan struct{}),
		streams: make(map[*stream]struct{}),
		rtt:     b.rtt,
	}
	// Exits and middles in turn, passing over those the pool asks to
	// avoid while another is left, as a path selector would.
	relays := proxy.AvoidRelays(ctx)
	c.exit = inTurn(b.exits, b.builds, append(proxy.AvoidExits(ctx), relays...))
	if m := inTurn(b.middles, b.builds, relays); m != "" {
		c.relays = []string{m, c.exit}
	}
	b.circuits = append(b.circuits, c)
	return c, nil
}

// inTurn returns the name of build n (from 1) among names, in turn, the
// next one not in avoid if there is one; "" without names.
func inTurn(names []string, n int, avoid []string) string {
	if len(names) == 0 {
		return ""
	}
	for i := range names {
		if name := names[(n-1+i)%len(names)]; !slices.Contains(avoid, name) {
			return name
		}
	}
	return names[(n-1)%len(names)]
}

// SetBuildHook makes every later Build call hook first; a non-nil error fails
// the build. A hook may block (until ctx is done, say).
func (b *Builder) SetBuildHook(hook func(ctx context.Context) error) {
	b.mu.Lock()
	b.hook = hook
	b.mu.Unlock()
}

// SetExits makes circuits go through these exits (their ExitID), in turn,
// passing over those the build's context asks to avoid (proxy.AvoidExits).
func (b *Builder) SetExits(names ...string) {
	b.mu.Lock()
	b.exits = names
	b.mu.Unlock()
}

// SetMiddles gives circuits a middle relay (their RelayIDs are the middle
// and the exit), in turn, passing over those the build's context asks to
// avoid (proxy.AvoidRelays).
func (b *Builder) SetMiddles(names ...string) {
	b.mu.Lock()
	b.middles = names
	b.mu.Unlock()
}

// SetRTT makes later circuits report rtt as their round-trip time.
func (b *Builder) SetRTT(rtt time.Duration) {
	b.mu.Lock()
	b.rtt = rtt
	b.mu.Unlock()
}

// SetStreamCap makes circuits' exits refuse a stream beyond n open ones
// with endreason.ErrCircuitFull, as real exits do at their cap.
func (b *Builder) SetStreamCap(n int) {
	b.mu.Lock()
	b.streamCap = n
	b.mu.Unlock()
}

// SetHost makes name resolve to ip at the exit.
func (b *Builder) SetHost(name, ip string) {
	b.mu.Lock()
	b.hosts[name] = ip
	b.mu.Unlock()
}

// FailHost makes OpenStream to host fail with err (an exitnode sentinel for
// an exit-reported failure, anything else for a circuit failure).
func (b *Builder) FailHost(host string, err error) {
	b.mu.Lock()
	b.failHosts[host] = err
	b.mu.Unlock()
}

// StallHost makes OpenStream to host wait until its context ends.
func (b *Builder) StallHost(host string) {
	b.mu.Lock()
	b.stall[host] = true
	b.mu.Unlock()
}

// StallExit makes OpenStream on every circuit through exit (see SetExits)
// wait until its context ends, as through an exit that hung.
func (b *Builder) StallExit(exit string) {
	b.mu.Lock()
	b.stallExit[exit] = true
	b.mu.Unlock()
}

// Builds is the number of successful builds.
func (b *Builder) Builds() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.builds
}

// Circuits returns every circuit built so far, in build order.
func (b *Builder) Circuits() []*Circuit {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*Circuit(nil), b.circuits...)
}

// Circuit is a fake built circuit.
type Circuit struct {
	ID int // 1 for the first circuit a Builder built

	b         *Builder
	mu        sync.Mutex
	done      chan struct{}
	closed    bool // Close was called
	dead      bool
	dieOnOpen bool
	streams   map[*stream]struct{}
	opened    []string
	exit      string
	relays    []string
	rtt       time.Duration
	stalled   bool
	pending   int // opens under way, counted against the stream cap
}

// ExitID names the circuit's exit (see Builder.SetExits).
func (c *Circuit) ExitID() string { return c.exit }

// RelayIDs names the circuit's middle and exit, if Builder.SetMiddles
// gave it a middle.
func (c *Circuit) RelayIDs() []string { return c.relays }

// RTT is the round-trip time the circuit reports (Builder.SetRTT).
func (c *Circuit) RTT() time.Duration { return c.rtt }

// Stall makes every later OpenStream on this circuit wait until its
// context ends or the circuit dies, as through an exit that hung.
func (c *Circuit) Stall() {
	c.mu.Lock()
	c.stalled = true
	c.mu.Unlock()
}

// OpenStream connects to host:port from this process, as an exit would.
func (c *Circuit) OpenStream(ctx context.Context, host string, port uint16) (net.Conn, error) {
	dest := net.JoinHostPort(host, strconv.Itoa(int(port)))
	c.mu.Lock()
	c.opened = append(c.opened, dest)
	if c.dead {
		c.mu.Unlock()
		return nil, ErrCircuitDead
	}
	if c.dieOnOpen {
		c.mu.Unlock()
		c.Die()
		return nil, fmt.Errorf("open stream: %w", ErrCircuitDead)
	}
	c.b.mu.Lock()
	failErr, stall := c.b.failHosts[host], c.b.stall[host] || c.stalled || c.b.stallExit[c.exit]
	ip, known := c.b.hosts[host]
	limit := c.b.streamCap
	c.b.mu.Unlock()
	if limit > 0 && len(c.streams)+c.pending >= limit {
		c.mu.Unlock()
		return nil, fmt.Errorf("exit: %w", endreason.ErrCircuitFull)
	}
	c.pending++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.pending--
		c.mu.Unlock()
	}()

	if failErr != nil {
		return nil, fmt.Errorf("exit: %w", failErr)
	}
	if stall {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-c.done:
			return nil, ErrCircuitDead
		}
	}
	if !known {
		ip = host
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, endreason.ErrResolve)
	}
	if !addr.IsLoopback() {
		return nil, fmt.Errorf("fake exit reaches loopback only: %w", endreason.ErrUnreachable)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(addr.String(), strconv.Itoa(int(port))))
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("connect: %w", endreason.ErrRefused)
	default:
		return nil, fmt.Errorf("connect: %w", endreason.ErrUnreachable)
	}
	s := &stream{TCPConn: conn.(*net.TCPConn), c: c}
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		_ = conn.Close()
		return nil, ErrCircuitDead
	}
	c.streams[s] = struct{}{}
	c.mu.Unlock()
	return s, nil
}

// Close tears the circuit down: Done closes and open streams are cut.
func (c *Circuit) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.Die()
	return nil
}

// Done is closed when the circuit is dead.
func (c *Circuit) Done() <-chan struct{} { return c.done }

// Die kills the circuit as a lost link would: Done closes, open streams are
// cut, and OpenStream fails with ErrCircuitDead.
func (c *Circuit) Die() {
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return
	}
	c.dead = true
	close(c.done)
	streams := make([]*stream, 0, len(c.streams))
	for s := range c.streams {
		streams = append(streams, s)
	}
	c.mu.Unlock()
	for _, s := range streams {
		_ = s.Close()
	}
}

// DieOnOpen makes the next OpenStream kill the circuit and fail with a
// circuit error, as a circuit dying under a new stream would.
func (c *Circuit) DieOnOpen() {
	c.mu.Lock()
	c.dieOnOpen = true
	c.mu.Unlock()
}

// Closed reports whether Close was called.
func (c *Circuit) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Dead reports whether the circuit is dead (closed or died).
func (c *Circuit) Dead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// Opened returns every host:port OpenStream was asked for, in order.
func (c *Circuit) Opened() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.opened...)
}

// Streams is the number of open streams.
func (c *Circuit) Streams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.streams)
}

type stream struct {
	*net.TCPConn
	c    *Circuit
	once sync.Once
}

func (s *stream) Close() error {
	err := s.TCPConn.Close()
	s.once.Do(func() {
		s.c.mu.Lock()
		delete(s.c.streams, s)
		s.c.mu.Unlock()
	})
	return err
}
