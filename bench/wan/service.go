package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/bench/wan/delayline"
	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/internal/earlydata"
	"github.com/pikcio/pikcio/service"
)

// The -service run: a Matryoshka service and a client joined at a
// rendezvous relay, every relay behind a delay line. Six relays: the
// client's guard and middle (0, 1), the service's (2, 3), the rendezvous
// relay (4) and the intro point (5), so the joined circuit is client - 0
// - 1 - 4 - 3 - 2 - service: six delayed links, twice an exit circuit's
// three. The descriptor store is in memory (no DHT lookup, so "cold" is
// the rendezvous, the introduction and the join, not the fetch); the
// service's target is on its own machine, undelayed.

const (
	svcRelays = 6
	svcRP     = 4 // rendezvous relay
	svcIP     = 5 // intro point
)

type serviceResult struct {
	cold, warm, early time.Duration
	bulk              float64
}

func runService(ctx context.Context, cfg config, out io.Writer) error {
	fmt.Fprintf(out, "pikcio service benchmark: joined circuits (3 + 3 hops, 6 delayed links); medians of %d runs\n", cfg.runs)
	fmt.Fprintf(out, "%-8s %16s %16s %16s %12s\n", "delay", "first byte cold", "first byte warm", "warm optimistic", "bulk MiB/s")
	for _, d := range cfg.delays {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, err := measureService(ctx, cfg, d)
		if err != nil {
			return fmt.Errorf("service, delay %v: %w", d, err)
		}
		fmt.Fprintf(out, "%-8v %16s %16s %16s %12.1f\n", d, ms(r.cold), ms(r.warm), ms(r.early), r.bulk)
	}
	return nil
}

func measureService(ctx context.Context, cfg config, d time.Duration) (serviceResult, error) {
	var res serviceResult
	n, err := newServiceNetwork(ctx, cfg, d)
	if err != nil {
		return res, err
	}
	defer n.close()
	var cold, warm, early []time.Duration
	for i := 0; i < cfg.runs; i++ {
		dl := n.dialer()
		t, err := n.firstByte(ctx, dl)
		if err == nil {
			cold = append(cold, t)
			for j := 0; j < 2 && err == nil; j++ {
				if t, err = n.firstByte(ctx, dl); err == nil && j > 0 {
					warm = append(warm, t) // the first warm one after the cold may race the join's set-up
				}
			}
		}
		if err == nil {
			// Optimistic data, as the HTTP proxy (and the SOCKS port
			// with socks_early_success) opens streams.
			if t, err = n.firstByte(earlydata.With(ctx), dl); err == nil {
				early = append(early, t)
			}
		}
		_ = dl.Close()
		if err != nil {
			return res, err
		}
	}
	res.cold, res.warm, res.early = median(cold), median(warm), median(early)
	dl := n.dialer()
	defer dl.Close()
	var bulks []float64
	for i := 0; i < cfg.runs; i++ {
		v, err := n.bulk(ctx, dl, cfg.bulkTime)
		if err != nil {
			return res, err
		}
		bulks = append(bulks, v)
	}
	res.bulk = median(bulks)
	return res, nil
}

// serviceNetwork is the relays, the service's and the client's circuit
// clients, the service and its target.
type serviceNetwork struct {
	relays []*relayProc
	lines  []io.Closer
	hops   []circuit.Hop
	store  *memStore
	target net.Listener
	svcB   *fixedBuilder
	cliB   *fixedBuilder
	host   *service.Host
	wg     sync.WaitGroup
}

func newServiceNetwork(ctx context.Context, cfg config, delay time.Duration) (_ *serviceNetwork, err error) {
	n := &serviceNetwork{store: &memStore{recs: map[string][]byte{}}}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	opt := func(int) delayline.Options { return delayline.Options{Delay: delay, Rate: cfg.rate} }
	if n.relays, n.lines, n.hops, err = startRelays(ctx, cfg, svcRelays, -1, opt); err != nil {
		return nil, err
	}
	if n.target, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		serveBytes(n.target, &n.wg)
	}()
	if n.svcB, err = newFixedBuilder(cfg, n.hops, 2, svcIP); err != nil {
		return nil, err
	}
	if n.cliB, err = newFixedBuilder(cfg, n.hops, 0, svcRP); err != nil {
		return nil, err
	}
	id, err := service.NewIdentity(nil)
	if err != nil {
		return nil, err
	}
	n.host, err = service.NewHost(id, service.HostOptions{Builder: n.svcB, Store: n.store, Target: n.target.Addr().String(), IntroPoints: 1, Retry: 200 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(time.Minute); n.host.Status().Published.IsZero(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, errors.New("the service did not publish its descriptor")
		}
	}
	return n, nil
}

func (n *serviceNetwork) dialer() *service.Dialer {
	return service.NewDialer(service.DialerOptions{Builder: n.cliB, Store: n.store})
}

func (n *serviceNetwork) close() {
	if n.host != nil {
		_ = n.host.Close()
	}
	for _, b := range []*fixedBuilder{n.cliB, n.svcB} {
		if b != nil {
			b.close()
		}
	}
	if n.target != nil {
		_ = n.target.Close()
	}
	n.wg.Wait()
	for _, l := range n.lines {
		_ = l.Close()
	}
	stopRelays(n.relays)
}

// open dials the service and asks for want bytes (0: without end).
func (n *serviceNetwork) open(ctx context.Context, dl *service.Dialer, want int) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := dl.Dial(ctx, n.host.Address(), 80)
	if err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(c, "%d\n", want); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// firstByte: from Dial to the first byte of a 1 KiB answer.
func (n *serviceNetwork) firstByte(ctx context.Context, dl *service.Dialer) (time.Duration, error) {
	start := time.Now()
	c, err := n.open(ctx, dl, 1024)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return timeAnswer(c, start)
}

// bulk downloads on one stream for d and returns MiB/s.
func (n *serviceNetwork) bulk(ctx context.Context, dl *service.Dialer, d time.Duration) (float64, error) {
	c, err := n.open(ctx, dl, 0)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	var total int64
	buf := make([]byte, 256<<10)
	for {
		k, err := c.Read(buf)
		total += int64(k)
		if err != nil {
			break
		}
	}
	return float64(total) / (1 << 20) / time.Since(start).Seconds(), nil
}

// fixedBuilder builds every circuit through the same guard and middle
// (hops[first], hops[first+1]); a circuit of its own choosing ends at
// hops[any].
type fixedBuilder struct {
	hops   []circuit.Hop
	head   []circuit.Hop
	any    circuit.Hop
	host   host.Host
	client *circuit.Client
}

var _ service.Builder = (*fixedBuilder)(nil)

func newFixedBuilder(cfg config, hops []circuit.Hop, first, anyHop int) (*fixedBuilder, error) {
	h, err := newHost(cfg.quic)
	if err != nil {
		return nil, err
	}
	return &fixedBuilder{hops: hops, head: hops[first : first+2], any: hops[anyHop], host: h, client: circuit.NewClient(h, circuit.ClientOptions{})}, nil
}

func (b *fixedBuilder) close() {
	_ = b.client.Close()
	_ = b.host.Close()
}

func (b *fixedBuilder) BuildTo(ctx context.Context, relay peer.ID) (service.Circuit, error) {
	for _, h := range b.hops {
		if h.ID == relay {
			c, err := b.client.Build(ctx, append([]circuit.Hop{b.head[0], b.head[1]}, h))
			if err != nil {
				return nil, err
			}
			return c, nil
		}
	}
	return nil, fmt.Errorf("relay %s: %w", relay.ShortString(), circuit.ErrNotRelay)
}

func (b *fixedBuilder) BuildAny(ctx context.Context, _ []peer.ID) (service.Circuit, service.RendezvousPoint, error) {
	c, err := b.BuildTo(ctx, b.any.ID)
	return c, service.RendezvousPoint{Relay: b.any.ID, OnionKey: b.any.OnionKey}, err
}

// memStore is the descriptor store: the last record put under a key
// (the service's revisions only grow).
type memStore struct {
	mu   sync.Mutex
	recs map[string][]byte
}

func (s *memStore) PutRecord(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recs[key] = append([]byte(nil), value...)
	return nil
}

func (s *memStore) GetRecord(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.recs[key]
	if !ok {
		return nil, fmt.Errorf("record %s: not found", key)
	}
	return v, nil
}
