package exitnode

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// attemptDelay is RFC 8305's Connection Attempt Delay: how long one
// attempt runs alone before the next address is tried beside it.
const attemptDelay = 250 * time.Millisecond

// interleave orders addresses as RFC 8305 section 4 does: the resolver's
// order within each family, the families alternating, starting with the
// family of the first address (the resolver's preference).
func interleave(addrs []netip.Addr) []netip.Addr {
	if len(addrs) < 2 {
		return addrs
	}
	var first, other []netip.Addr
	fam := addrs[0].Is4()
	for _, a := range addrs {
		if a.Is4() == fam {
			first = append(first, a)
		} else {
			other = append(other, a)
		}
	}
	out := make([]netip.Addr, 0, len(addrs))
	for i := 0; i < len(first) || i < len(other); i++ {
		if i < len(first) {
			out = append(out, first[i])
		}
		if i < len(other) {
			out = append(out, other[i])
		}
	}
	return out
}

// dialRace connects to one of addrs as Happy Eyeballs (RFC 8305) does:
// the addresses interleaved by family, the next attempt started after
// attemptDelay or as soon as the one before failed, the first connection
// kept and the attempts still running canceled (a connection they make
// anyway is closed). It returns the error of the first attempt when all
// fail, and waits for every attempt it started.
func (e *Exit) dialRace(ctx context.Context, addrs []netip.Addr, port uint16) (net.Conn, error) {
	addrs = interleave(addrs)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		i    int
		conn net.Conn
		err  error
	}
	results := make(chan result, len(addrs))
	next, pending := 0, 0
	start := func() {
		i, a := next, addrs[next]
		next++
		pending++
		go func() {
			network := "tcp4"
			if a.Is6() {
				network = "tcp6"
			}
			c, err := e.dialer.DialContext(ctx, network, net.JoinHostPort(a.String(), strconv.Itoa(int(port))))
			if err == nil && c == nil {
				err = errNilConn
			}
			results <- result{i, c, err}
		}()
	}
	timer := time.NewTimer(attemptDelay)
	defer timer.Stop()
	var first error
	firstAt := len(addrs)
	if err := expired(ctx); err != nil {
		return nil, err
	}
	start()
	for pending > 0 {
		var tick <-chan time.Time
		if next < len(addrs) {
			tick = timer.C
		}
		select {
		case r := <-results:
			pending--
			if r.err == nil {
				cancel()
				for ; pending > 0; pending-- {
					if late := <-results; late.conn != nil {
						_ = late.conn.Close()
					}
				}
				return r.conn, nil
			}
			if r.i < firstAt {
				first, firstAt = r.err, r.i
			}
			if next < len(addrs) && expired(ctx) == nil {
				start()
				timer.Reset(attemptDelay)
			}
		case <-tick:
			if expired(ctx) == nil {
				start()
			}
			timer.Reset(attemptDelay)
		}
	}
	if first == nil {
		first = errDialNotTried
	}
	return nil, first
}
