package exitnode

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pikcio/pikcio/internal/endreason"
	"github.com/sirupsen/logrus"
)

// Resolver resolves a destination name at the exit. *net.Resolver
// satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Dialer connects to a destination address (always an IP literal and a
// port). *net.Dialer satisfies it.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Options configure an Exit. Zero fields take the defaults of DefaultOptions.
type Options struct {
	// Policy decides which destinations the exit connects to.
	// Default: DefaultPolicy(nil).
	Policy *Policy
	// Resolver resolves names. Default: net.DefaultResolver, which reads
	// /etc/hosts first.
	Resolver Resolver
	// Dialer connects. Default: &net.Dialer{KeepAlive: 30 * time.Second}.
	Dialer Dialer
	// DialTimeout bounds one DialExit call, resolving and connecting
	// together. Default: 10s.
	DialTimeout time.Duration
}

// DefaultOptions returns the default Options.
func DefaultOptions() Options {
	return Options{
		Policy:      DefaultPolicy(nil),
		Resolver:    net.DefaultResolver,
		Dialer:      &net.Dialer{KeepAlive: 30 * time.Second},
		DialTimeout: 10 * time.Second,
	}
}

// Exit opens the connections of the streams that leave the network at this
// relay. It is safe for concurrent use.
type Exit struct {
	policy   atomic.Pointer[Policy]
	resolver Resolver
	dialer   Dialer
	timeout  time.Duration
	log      *logrus.Entry
}

// New returns an Exit with opts, zero fields taking their defaults.
func New(opts Options) *Exit {
	def := DefaultOptions()
	if opts.Policy == nil {
		opts.Policy = def.Policy
	}
	if opts.Resolver == nil {
		opts.Resolver = def.Resolver
	}
	if opts.Dialer == nil {
		opts.Dialer = def.Dialer
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = def.DialTimeout
	}
	e := &Exit{
		resolver: opts.Resolver,
		dialer:   opts.Dialer,
		timeout:  opts.DialTimeout,
		log:      logrus.WithField("component", "exitnode"),
	}
	e.policy.Store(opts.Policy)
	return e
}

// SetPolicy replaces the policy; the next DialExit uses it, calls under way
// keep the policy they started with. A nil p means DefaultPolicy(nil).
func (e *Exit) SetPolicy(p *Policy) {
	if p == nil {
		p = DefaultPolicy(nil)
	}
	e.policy.Store(p)
}

// Policy returns the policy in force.
func (e *Exit) Policy() *Policy { return e.policy.Load() }

// DialError is the error of DialExit. errors.Is matches it against the
// sentinel of its endreason.Reason (endreason.ErrPolicy, endreason.ErrRefused, ...), and errors.As reaches
// its cause through Unwrap. Its text never names the destination, so it can
// be logged; the cause's own text may name it.
type DialError struct {
	Reason endreason.Reason
	Err    error // the cause
}

func (e *DialError) Error() string {
	s := "exit dial: " + e.Reason.String()
	if d := safeDetail(e.Err); d != "" {
		s += ": " + d
	}
	return s
}

func (e *DialError) Unwrap() error { return e.Err }

// EndReason makes a *DialError an endreason.Carrier.
func (e *DialError) EndReason() endreason.Reason { return e.Reason }

// Is matches the sentinel error of e.Reason.
func (e *DialError) Is(target error) bool { return target != nil && target == e.Reason.Err() }

// detail is a cause whose text never names the destination.
type detail string

func (d detail) Error() string { return string(d) }

const (
	errEmptyHost    = detail("empty host")
	errLongHost     = detail("host longer than 255 bytes")
	errBadHost      = detail("invalid character in host name")
	errBadBrackets  = detail("bracketed host is not an IPv6 address")
	errPort0        = detail("port 0")
	errNotAllowed   = detail("address not allowed")
	errNoneAllowed  = detail("no resolved address allowed")
	errNoAddresses  = detail("name resolved to no address")
	errDialNotTried = detail("no address tried")
	errNilConn      = detail("dialer returned no connection")
)

// safeDetail describes err without naming the destination: only our own
// details, DNS outcomes and errno texts are used.
func safeDetail(err error) string {
	var d detail
	if errors.As(err, &d) {
		return string(d)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		switch {
		case dnsErr.IsNotFound:
			return "no such host"
		case dnsErr.IsTimeout:
			return "lookup timed out"
		}
		return "lookup failed"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return ""
}

// classify maps a resolve or connect failure to its endreason.Reason through error
// types and errno values.
func classify(err error) endreason.Reason {
	if r := endreason.ReasonOf(err); r != endreason.ReasonMisc {
		return r // the cause already carries one of our sentinels
	}
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr):
		return endreason.ReasonResolve
	case errors.Is(err, syscall.ECONNREFUSED):
		return endreason.ReasonRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EHOSTDOWN):
		return endreason.ReasonUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return endreason.ReasonTimeout
	}
	return endreason.ReasonMisc
}

// DialExit connects to host:port for a stream that leaves the network here.
//
// host is an IP literal (IPv6 possibly in brackets), which is used as is, or
// a name of ASCII letters, digits, '-', '_' and '.' (an IDN arrives in
// punycode), which is resolved once with the Resolver. Every address is checked
// against the policy, and only the addresses that pass are dialed, in the
// resolver's order, with the time left split between them; the name is never
// resolved again, so a name that resolves to a rejected address (DNS
// rebinding, `localhost`) cannot reach it. IPv4-mapped addresses are dialed
// as IPv4.
//
// The error is a *DialError whose endreason.Reason says what failed: endreason.ErrPolicy (port 0
// too, and when every resolved address is rejected), endreason.ErrResolve (any
// resolver failure), endreason.ErrRefused, endreason.ErrUnreachable, endreason.ErrTimeout, and endreason.ErrMisc
// (a malformed host, anything else). When all allowed addresses fail, the
// first failure is reported. A connection from the default Dialer is a
// *net.TCPConn, returned as is.
func (e *Exit) DialExit(ctx context.Context, host string, port uint16) (net.Conn, error) {
	policy := e.policy.Load()
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()

	conn, err := e.dial(ctx, policy, host, port)
	if err != nil {
		e.log.WithFields(logrus.Fields{"host": host, "port": port, "reason": err.Reason.String(), "cause": err.Err}).
			Debug("exit dial failed")
		return nil, err
	}
	e.log.WithFields(logrus.Fields{"host": host, "port": port, "addr": conn.RemoteAddr()}).Debug("exit dial")
	return conn, nil
}

func (e *Exit) dial(ctx context.Context, policy *Policy, host string, port uint16) (net.Conn, *DialError) {
	if port == 0 {
		return nil, &DialError{Reason: endreason.ReasonPolicy, Err: errPort0}
	}
	addr, isIP, derr := parseHost(host)
	if derr != nil {
		return nil, &DialError{Reason: endreason.ReasonMisc, Err: derr}
	}

	var allowed []netip.Addr
	if isIP {
		if !policy.Allows(addr, port) {
			return nil, &DialError{Reason: endreason.ReasonPolicy, Err: errNotAllowed}
		}
		allowed = []netip.Addr{addr.Unmap()}
	} else {
		addrs, err := e.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			r := classify(err)
			if r != endreason.ReasonTimeout && !errors.Is(err, context.Canceled) {
				r = endreason.ReasonResolve
			}
			return nil, &DialError{Reason: r, Err: err}
		}
		if len(addrs) == 0 {
			return nil, &DialError{Reason: endreason.ReasonResolve, Err: errNoAddresses}
		}
		for _, a := range addrs {
			if !policy.Allows(a, port) {
				continue
			}
			a = a.Unmap()
			if !containsAddr(allowed, a) {
				allowed = append(allowed, a)
			}
		}
		if len(allowed) == 0 {
			return nil, &DialError{Reason: endreason.ReasonPolicy, Err: errNoneAllowed}
		}
	}

	var conn net.Conn
	var err error
	if len(allowed) == 1 {
		conn, err = e.dialOne(ctx, allowed[0], port, 1)
		if err == nil && conn == nil {
			err = errNilConn
		}
	} else {
		conn, err = e.dialRace(ctx, allowed, port)
	}
	if err != nil {
		return nil, &DialError{Reason: classify(err), Err: err}
	}
	return conn, nil
}

// expired returns ctx.Err(), or context.DeadlineExceeded once the deadline
// has passed even if ctx's timer has not fired yet.
func expired(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return context.DeadlineExceeded
	}
	return nil
}

// dialOne dials one address with a share of the time left, the rest of it
// being kept for the remaining addresses.
func (e *Exit) dialOne(ctx context.Context, a netip.Addr, port uint16, remaining int) (net.Conn, error) {
	if deadline, ok := ctx.Deadline(); ok && remaining > 1 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, partialDeadline(time.Now(), deadline, remaining))
		defer cancel()
	}
	network := "tcp4"
	if a.Is6() {
		network = "tcp6"
	}
	return e.dialer.DialContext(ctx, network, net.JoinHostPort(a.String(), strconv.Itoa(int(port))))
}

// partialDeadline gives one of n addresses its share of the time left, but at
// least minAttempt (or all of the time left if that is less).
func partialDeadline(now, deadline time.Time, n int) time.Time {
	const minAttempt = 2 * time.Second
	left := deadline.Sub(now)
	share := left / time.Duration(n)
	if share < minAttempt {
		share = min(minAttempt, left)
	}
	return now.Add(share)
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, b := range list {
		if a == b {
			return true
		}
	}
	return false
}

// parseHost validates a destination host from a BEGIN message. It returns
// the address of an IP literal (isIP), or nothing for a name, which then
// consists of letters, digits, '-', '_' and '.' only.
func parseHost(host string) (addr netip.Addr, isIP bool, err error) {
	switch {
	case host == "":
		return netip.Addr{}, false, errEmptyHost
	case len(host) > 255:
		return netip.Addr{}, false, errLongHost
	}
	if host[0] == '[' {
		if host[len(host)-1] != ']' {
			return netip.Addr{}, false, errBadBrackets
		}
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() {
			return netip.Addr{}, false, errBadBrackets
		}
		return a, true, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a, true, nil
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '.':
		default:
			return netip.Addr{}, false, errBadHost
		}
	}
	return netip.Addr{}, false, nil
}
