package circuit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"

	"github.com/pikcio/pikcio/internal/endreason"
)

// RESOLVE and RESOLVED (Tor's RELAY_RESOLVE/RELAY_RESOLVED): the client asks
// the exit to resolve a name, or an address back to a name (a PTR lookup),
// on a fresh stream ID that no connection ever uses; the exit answers once
// with RESOLVED on that ID and the stream is over. The client's own
// resolver is never asked (SOCKS RESOLVE and RESOLVE_PTR use this).
//
// RESOLVE payload:  kind (0 name, 1 address) | length | name, or the 4 or
//                   16 bytes of an address
// RESOLVED payload: status (an endreason.Reason; 0 is success) | count |
//                   count answers of type (4 IPv4, 6 IPv6, 0 name) |
//                   length | value

// ExitResolver is an ExitDialer that also answers RESOLVE: exitnode.Exit
// implements it. An exit whose ExitDialer is not one answers "not an exit".
// Errors are classified with endreason.ReasonOf.
type ExitResolver interface {
	ResolveExit(ctx context.Context, name string) ([]netip.Addr, error)
	ResolvePTRExit(ctx context.Context, ip netip.Addr) (string, error)
}

// The relay commands (cell.go has the others).
const (
	relayResolve  byte = 10 // client -> exit: resolve a name or an address
	relayResolved byte = 11 // exit -> client: the answer to RESOLVE
)

const (
	resolveName byte = 0
	resolvePTR  byte = 1

	answerName byte = 0
	answerIPv4 byte = 4
	answerIPv6 byte = 6

	// maxAnswers caps the answers of one RESOLVED.
	maxAnswers = 16
	// maxPendingResolves caps the resolutions one circuit has in flight at
	// the exit; more are answered "misc" at once.
	maxPendingResolves = 16
)

// resolveMsg is a RESOLVE query.
type resolveMsg struct {
	kind byte
	name string     // kind resolveName
	addr netip.Addr // kind resolvePTR
}

func (q resolveMsg) encode() ([]byte, error) {
	switch q.kind {
	case resolveName:
		if q.name == "" || len(q.name) > 255 {
			return nil, fmt.Errorf("resolve name of %d bytes: %w", len(q.name), ErrMalformed)
		}
		return append([]byte{resolveName, byte(len(q.name))}, q.name...), nil
	case resolvePTR:
		if !q.addr.IsValid() {
			return nil, fmt.Errorf("resolve of no address: %w", ErrMalformed)
		}
		b := q.addr.Unmap().AsSlice()
		return append([]byte{resolvePTR, byte(len(b))}, b...), nil
	}
	return nil, fmt.Errorf("resolve kind %d: %w", q.kind, ErrMalformed)
}

func decodeResolve(p []byte) (resolveMsg, error) {
	if len(p) < 2 || len(p) != 2+int(p[1]) {
		return resolveMsg{}, fmt.Errorf("resolve of %d bytes: %w", len(p), ErrMalformed)
	}
	v := p[2:]
	switch p[0] {
	case resolveName:
		if len(v) == 0 {
			return resolveMsg{}, fmt.Errorf("resolve of an empty name: %w", ErrMalformed)
		}
		for _, c := range v {
			if c <= ' ' || c >= 0x7f {
				return resolveMsg{}, fmt.Errorf("resolve name has byte %#x: %w", c, ErrMalformed)
			}
		}
		return resolveMsg{kind: resolveName, name: string(v)}, nil
	case resolvePTR:
		if len(v) != 4 && len(v) != 16 {
			return resolveMsg{}, fmt.Errorf("resolve address of %d bytes: %w", len(v), ErrMalformed)
		}
		a, _ := netip.AddrFromSlice(v)
		return resolveMsg{kind: resolvePTR, addr: a.Unmap()}, nil
	}
	return resolveMsg{}, fmt.Errorf("resolve kind %d: %w", p[0], ErrMalformed)
}

// resolvedMsg is a RESOLVED answer.
type resolvedMsg struct {
	status endreason.Reason
	addrs  []netip.Addr
	names  []string
}

func (a resolvedMsg) encode() []byte {
	out := []byte{byte(a.status), 0}
	n := 0
	for _, ip := range a.addrs {
		if n == maxAnswers {
			break
		}
		ip = ip.Unmap()
		t := answerIPv6
		if ip.Is4() {
			t = answerIPv4
		}
		b := ip.AsSlice()
		out = append(append(out, t, byte(len(b))), b...)
		n++
	}
	for _, name := range a.names {
		if n == maxAnswers || len(out)+2+len(name) > MaxCellData {
			break
		}
		if name == "" || len(name) > 255 {
			continue
		}
		out = append(append(out, answerName, byte(len(name))), name...)
		n++
	}
	out[1] = byte(n)
	return out
}

func decodeResolved(p []byte) (resolvedMsg, error) {
	if len(p) < 2 {
		return resolvedMsg{}, fmt.Errorf("resolved of %d bytes: %w", len(p), ErrMalformed)
	}
	a := resolvedMsg{status: endreason.Reason(p[0])}
	n := int(p[1])
	if n > maxAnswers {
		return resolvedMsg{}, fmt.Errorf("resolved with %d answers: %w", n, ErrMalformed)
	}
	rest := p[2:]
	for range n {
		if len(rest) < 2 || len(rest) < 2+int(rest[1]) {
			return resolvedMsg{}, fmt.Errorf("resolved answer truncated: %w", ErrMalformed)
		}
		t, v := rest[0], rest[2:2+int(rest[1])]
		rest = rest[2+len(v):]
		switch t {
		case answerIPv4, answerIPv6:
			if (t == answerIPv4) != (len(v) == 4) || len(v) != 4 && len(v) != 16 {
				return resolvedMsg{}, fmt.Errorf("resolved address of %d bytes as type %d: %w", len(v), t, ErrMalformed)
			}
			ip, _ := netip.AddrFromSlice(v)
			if ip.Is4In6() {
				return resolvedMsg{}, fmt.Errorf("resolved IPv4-mapped address: %w", ErrMalformed)
			}
			a.addrs = append(a.addrs, ip)
		case answerName:
			if len(v) == 0 {
				return resolvedMsg{}, fmt.Errorf("resolved empty name: %w", ErrMalformed)
			}
			for _, c := range v {
				if c <= ' ' || c >= 0x7f {
					return resolvedMsg{}, fmt.Errorf("resolved name has byte %#x: %w", c, ErrMalformed)
				}
			}
			a.names = append(a.names, string(v))
		default:
			return resolvedMsg{}, fmt.Errorf("resolved answer type %d: %w", t, ErrMalformed)
		}
	}
	if len(rest) != 0 {
		return resolvedMsg{}, fmt.Errorf("%d bytes after the answers: %w", len(rest), ErrMalformed)
	}
	if a.status != endreason.ReasonDone && n != 0 {
		return resolvedMsg{}, fmt.Errorf("failed resolve with answers: %w", ErrMalformed)
	}
	return a, nil
}

// Resolve asks the exit to resolve name; the answers are what its policy
// lets a stream connect to. Errors from the exit wrap endreason's
// sentinels (ErrResolve for a name that does not resolve).
func (ci *Circuit) Resolve(ctx context.Context, name string) ([]netip.Addr, error) {
	a, err := ci.resolve(ctx, resolveMsg{kind: resolveName, name: name})
	if err != nil {
		return nil, err
	}
	return a.addrs, nil
}

// ResolvePTR asks the exit for the name of ip.
func (ci *Circuit) ResolvePTR(ctx context.Context, ip netip.Addr) (string, error) {
	a, err := ci.resolve(ctx, resolveMsg{kind: resolvePTR, addr: ip})
	if err != nil {
		return "", err
	}
	if len(a.names) == 0 {
		return "", fmt.Errorf("resolve: %w", endreason.ErrResolve)
	}
	return a.names[0], nil
}

func (ci *Circuit) resolve(ctx context.Context, q resolveMsg) (resolvedMsg, error) {
	msg, err := q.encode()
	if err != nil {
		return resolvedMsg{}, fmt.Errorf("resolve: %w: %w", endreason.ErrMisc, err)
	}
	s, err := ci.edge.newStream(streamAddr{host: q.name})
	if err != nil {
		return resolvedMsg{}, fmt.Errorf("resolve: %w", err)
	}
	defer s.closeWith(endreason.ReasonDone)
	if err := ci.sendRelay(relayResolve, s.id, msg); err != nil {
		return resolvedMsg{}, fmt.Errorf("resolve: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = s.closeWith(endreason.ReasonTimeout) })
	defer stop()
	// The answer arrives as the stream's only data, then the stream ends.
	buf := make([]byte, MaxCellData+1)
	n, err := io.ReadFull(s, buf)
	if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		if ctx.Err() != nil {
			return resolvedMsg{}, fmt.Errorf("resolve: %w: %w", endreason.ErrTimeout, ctx.Err())
		}
		if err == nil {
			err = fmt.Errorf("resolved too long: %w", ErrMalformed)
		}
		return resolvedMsg{}, fmt.Errorf("resolve: %w", err)
	}
	if n == 0 {
		return resolvedMsg{}, fmt.Errorf("resolve: %w", ErrCircuitClosed)
	}
	a, err := decodeResolved(buf[:n])
	if err != nil {
		return resolvedMsg{}, fmt.Errorf("resolve: %w", err)
	}
	if a.status != endreason.ReasonDone {
		return resolvedMsg{}, fmt.Errorf("resolve: %w", a.status.Err())
	}
	return a, nil
}

// resolved delivers a RESOLVED to the stream that asked: its only data,
// then its end.
func (s *Stream) resolved(data []byte) error {
	// Only a stream opened by resolve (port 0, which BEGIN never carries)
	// takes an answer: an exit cannot end a connection's stream this way.
	if a, ok := s.remote.(streamAddr); !ok || a.port != 0 {
		return fmt.Errorf("resolved on connection stream %d: %w", s.id, ErrMalformed)
	}
	if _, err := decodeResolved(data); err != nil {
		return err
	}
	if err := s.deliver(data); err != nil {
		return err
	}
	s.remoteEnd(nil, true)
	return nil
}

// resolve serves a RESOLVE at the exit: the answer goes back as RESOLVED
// on the same stream ID, from a goroutine of the relay.
func (rc *relayCirc) resolve(id uint16, data []byte) (DestroyReason, error) {
	if rc.next != nil {
		return DestroyProtocol, fmt.Errorf("resolve at a middle hop: %w", ErrMalformed)
	}
	q, err := decodeResolve(data)
	if err != nil {
		return DestroyProtocol, err
	}
	r := rc.r
	res, ok := r.opts.Exit.(ExitResolver)
	if !ok || r.opts.Exit == nil {
		return DestroyNone, rc.sendRelay(relayResolved, id, resolvedMsg{status: endreason.ReasonNotExit}.encode())
	}
	if rc.resolves.Add(1) > maxPendingResolves {
		rc.resolves.Add(-1)
		return DestroyNone, rc.sendRelay(relayResolved, id, resolvedMsg{status: endreason.ReasonMisc}.encode())
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer rc.resolves.Add(-1)
		ctx, cancel := context.WithTimeout(rc.ctx, r.opts.ConnectTimeout)
		defer cancel()
		var a resolvedMsg
		var err error
		if q.kind == resolveName {
			a.addrs, err = res.ResolveExit(ctx, q.name)
		} else {
			var name string
			if name, err = res.ResolvePTRExit(ctx, q.addr); err == nil {
				a.names = []string{name}
			}
		}
		if err != nil {
			a = resolvedMsg{status: endreason.ReasonOf(err)}
			if a.status == endreason.ReasonDone {
				a.status = endreason.ReasonMisc
			}
		}
		_ = rc.sendRelay(relayResolved, id, a.encode())
	}()
	return DestroyNone, nil
}
