package exitnode

import (
	"context"
	"errors"
	"net/netip"
	"strings"

	"github.com/pikcio/pikcio/internal/endreason"
)

// PTRResolver looks addresses up (RESOLVE_PTR). *net.Resolver satisfies
// it; an Exit whose Resolver does not answers every RESOLVE_PTR with
// endreason.ErrResolve.
type PTRResolver interface {
	LookupAddr(ctx context.Context, addr string) ([]string, error)
}

var (
	errNoPTR      = errors.New("the resolver does no reverse lookups")
	errPTRAddress = errors.New("reverse lookup of an address the policy rejects")
)

// allowsSome reports whether the policy lets streams reach a on a web
// port: RESOLVE answers only with such addresses, so that it tells a client
// nothing about what lies behind the exit (private and loopback addresses,
// under the default policy).
func allowsSome(p *Policy, a netip.Addr) bool {
	return p.Allows(a, 443) || p.Allows(a, 80)
}

// ResolveExit resolves name for a client's RESOLVE (circuit.ExitResolver):
// the addresses the policy allows, in the resolver's order. An IP literal
// is its own answer. Errors are *DialError, as
// DialExit's: endreason.ErrResolve when nothing usable resolved.
func (e *Exit) ResolveExit(ctx context.Context, name string) ([]netip.Addr, error) {
	policy := e.policy.Load()
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	addr, isIP, err := parseHost(name)
	if err != nil {
		return nil, &DialError{Reason: endreason.ReasonMisc, Err: err}
	}
	if isIP {
		if !allowsSome(policy, addr) {
			return nil, &DialError{Reason: endreason.ReasonPolicy, Err: errNotAllowed}
		}
		return []netip.Addr{addr.Unmap()}, nil
	}
	addrs, err := e.resolver.LookupNetIP(ctx, "ip", name)
	if err != nil {
		r := classify(err)
		if r != endreason.ReasonTimeout {
			r = endreason.ReasonResolve
		}
		return nil, &DialError{Reason: r, Err: err}
	}
	var out []netip.Addr
	for _, a := range addrs {
		a = a.Unmap()
		if allowsSome(policy, a) && !containsAddr(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, &DialError{Reason: endreason.ReasonResolve, Err: errNoneAllowed}
	}
	return out, nil
}

// ResolvePTRExit looks ip up for a client's RESOLVE_PTR, for an address the
// policy allows only.
func (e *Exit) ResolvePTRExit(ctx context.Context, ip netip.Addr) (string, error) {
	policy := e.policy.Load()
	ip = ip.Unmap()
	if !allowsSome(policy, ip) {
		return "", &DialError{Reason: endreason.ReasonPolicy, Err: errPTRAddress}
	}
	pr, ok := e.resolver.(PTRResolver)
	if !ok {
		return "", &DialError{Reason: endreason.ReasonResolve, Err: errNoPTR}
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	names, err := pr.LookupAddr(ctx, ip.String())
	if err != nil || len(names) == 0 {
		r := endreason.ReasonResolve
		if err != nil && classify(err) == endreason.ReasonTimeout {
			r = endreason.ReasonTimeout
		}
		if err == nil {
			err = errNoAddresses
		}
		return "", &DialError{Reason: r, Err: err}
	}
	return strings.TrimSuffix(names[0], "."), nil
}
