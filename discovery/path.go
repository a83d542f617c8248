package discovery

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/pikcio/pikcio/circuit"
)

// Hop counts a path may have, those a circuit client accepts. A one-hop
// path is an exit alone.
const (
	DefaultHops = circuit.DefaultHops
	MaxHops     = circuit.MaxHops
)

// defaultPorts are the ports an exit must accept when the destination
// port is not known yet (a circuit built ahead of its first stream).
var defaultPorts = [...]uint16{443, 80}

// Errors of path selection.
var (
	ErrHops     = errors.New("hop count out of range")
	ErrNoExit   = errors.New("no usable exit for the port")
	ErrNoGuard  = errors.New("no usable entry guard")
	ErrNoMiddle = errors.New("no usable middle relay")
)

// Role is the position a relay takes in a path.
type Role uint8

// Path positions.
const (
	RoleGuard Role = iota
	RoleMiddle
	RoleExit
)

func (r Role) String() string {
	switch r {
	case RoleGuard:
		return "guard"
	case RoleMiddle:
		return "middle"
	case RoleExit:
		return "exit"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Weigher gives the relative weight of choosing d for role. A weight of 0
// (or a negative or non-finite one) excludes d from that role.
type Weigher interface {
	Weight(d *Descriptor, role Role) float64
}

// UniformWeigher weighs every relay 1.
type UniformWeigher struct{}

// Weight implements Weigher.
func (UniformWeigher) Weight(*Descriptor, Role) float64 { return 1 }

// PathRequest says what path to select.
type PathRequest struct {
	// Hops is the number of relays, 1..MaxHops; 0 means DefaultHops.
	Hops int
	// Port is the destination port the exit must accept; 0 means not
	// known, and the exit must accept every port of defaultPorts (443 and 80).
	Port uint16
	// IPv6 asks for an exit whose descriptor says it reaches IPv6
	// (ExtIPv6Exit), for an IPv6 literal destination.
	IPv6 bool
	// AvoidExits are exits to pass over while another can serve the
	// path (a client's pool keeps its spare circuits through different
	// exits, and retries a stream an exit left unanswered elsewhere).
	AvoidExits []peer.ID
	// Avoid are relays to pass over as middle or exit while another can
	// take that role (the relays of the pool's other spare circuits, so
	// that one relay's death does not take every spare with it).
	Avoid []peer.ID
	// Internal asks for a circuit that ends inside the network (a
	// Matryoshka service's intro point or rendezvous relay): its last hop
	// is drawn as a middle, needing no exit flag or port.
	Internal bool
}

// avoidSet returns ids and more as a set, or nil if there are none.
func avoidSet(ids []peer.ID, more ...[]peer.ID) map[peer.ID]bool {
	var m map[peer.ID]bool
	for _, l := range append([][]peer.ID{ids}, more...) {
		for _, id := range l {
			if m == nil {
				m = make(map[peer.ID]bool)
			}
			m[id] = true
		}
	}
	return m
}

// Selector picks paths from a set of verified descriptors. See the package
// documentation for the rules. The zero value is usable.
type Selector struct {
	// Self is never chosen.
	Self peer.ID
	// Weigher weighs candidates; nil means UniformWeigher.
	Weigher Weigher
	// AllowSameSubnet lifts the rule that no two relays of a path share
	// an IPv4 /16 or an IPv6 /32 (for loopback test networks).
	AllowSameSubnet bool
	// Observed, when set, returns the addresses this node reaches relay
	// id at now (its open connections'): they count for the subnet rule
	// besides those the descriptor declares, so a relay cannot hide its
	// subnet by declaring other addresses.
	Observed func(id peer.ID) []ma.Multiaddr
	// Rand is the source of randomness; nil means crypto/rand.
	Rand io.Reader
	// Now gives the current time; nil means time.Now.
	Now func() time.Time
}

func (s *Selector) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// usable reports whether d may be chosen at all at now.
// A relay must declare an IP address: one with only names (/dns) would
// have no subnet for the rule, and relays never dial names.
func (s *Selector) usable(d *Descriptor, now time.Time) bool {
	return d != nil && d.PeerID != s.Self && now.Before(d.Expires) && now.Before(d.OnionKey.Expires) && len(subnetsOf(d.Addrs)) > 0
}

// eligible reports whether d may take role.
func eligible(d *Descriptor, role Role, port uint16) bool {
	switch role {
	case RoleExit:
		if port != 0 {
			return d.AcceptsPort(port)
		}
		for _, p := range defaultPorts {
			if !d.AcceptsPort(p) {
				return false
			}
		}
		return d.IsExit()
	case RoleGuard:
		return d.Flags.Has(FlagGuard)
	default:
		return d.Flags.Has(FlagRelay)
	}
}

// Select picks a path of req.Hops relays from relays, first hop first.
// guards, when not nil, are the client's entry guards in order of
// preference: the first hop is the first of them that is usable and that
// an exit for the port can share a path with, and the exit is drawn among
// those exits. With nil guards the exit is drawn first and the first hop
// is drawn like the others from the guard-flagged relays.
func (s *Selector) Select(relays []*Descriptor, req PathRequest, guards []peer.ID) ([]*Descriptor, error) {
	hops := req.Hops
	if hops == 0 {
		hops = DefaultHops
	}
	if hops < 1 || hops > MaxHops {
		return nil, fmt.Errorf("%d hops: %w", hops, ErrHops)
	}
	now := s.now()
	sl := s.selection()
	cands := make([]*Descriptor, 0, len(relays))
	byID := make(map[peer.ID]*Descriptor, len(relays))
	for _, d := range relays {
		if s.usable(d, now) {
			if _, dup := byID[d.PeerID]; !dup {
				cands = append(cands, d)
				byID[d.PeerID] = d
			}
		}
	}
	var exit, guard *Descriptor
	var err error
	exits := exitsFor(cands, req)
	switch {
	case hops > 1 && guards != nil:
		// The first usable guard that some exit can share a path with is
		// the first hop; the exit is drawn among those exits.
		usable := 0
		for _, id := range guards {
			g := byID[id]
			if g == nil || !eligible(g, RoleGuard, 0) || !sl.weighted(g, RoleGuard) {
				continue
			}
			usable++
			if exit, err = sl.pickExit(exits, req, []*Descriptor{g}); err != nil {
				return nil, err
			}
			if exit != nil {
				guard = g
				break
			}
		}
		if usable == 0 {
			return nil, fmt.Errorf("%d guards, none usable: %w", len(guards), ErrNoGuard)
		}
		if exit == nil {
			return nil, fmt.Errorf("port %d with %d usable guards: %w", req.Port, usable, ErrNoExit)
		}
	default:
		if exit, err = sl.pickExit(exits, req, nil); err != nil {
			return nil, err
		}
		if exit == nil {
			return nil, fmt.Errorf("port %d among %d relays: %w", req.Port, len(cands), ErrNoExit)
		}
		if hops == 1 {
			return []*Descriptor{exit}, nil
		}
		if guard, err = sl.pick(cands, RoleGuard, 0, []*Descriptor{exit}, nil); err != nil {
			return nil, err
		}
		if guard == nil {
			return nil, fmt.Errorf("among %d relays: %w", len(cands), ErrNoGuard)
		}
	}
	path := make([]*Descriptor, 0, hops)
	path = append(path, guard)
	avoidMiddles := avoidSet(req.Avoid)
	for range hops - 2 {
		m, err := sl.pickAvoiding(cands, RoleMiddle, 0, append(path, exit), avoidMiddles)
		if err != nil {
			return nil, err
		}
		if m == nil {
			return nil, fmt.Errorf("%d hops among %d relays: %w", hops, len(cands), ErrNoMiddle)
		}
		path = append(path, m)
	}
	return append(path, exit), nil
}

// pickExit picks an exit for req: not one of req.AvoidExits or req.Avoid
// if another fits, else not one of req.AvoidExits if another fits, else any.
func (sl *selection) pickExit(cands []*Descriptor, req PathRequest, path []*Descriptor) (*Descriptor, error) {
	role := RoleExit
	if req.Internal {
		role = RoleMiddle
	}
	return sl.pickAvoiding(cands, role, req.Port, path, avoidSet(req.AvoidExits, req.Avoid), avoidSet(req.AvoidExits))
}

// pickAvoiding picks like pick, excluding the first of avoid (nil sets
// skipped) that leaves a candidate, and excluding none when none does.
func (sl *selection) pickAvoiding(cands []*Descriptor, role Role, port uint16, path []*Descriptor, avoid ...map[peer.ID]bool) (*Descriptor, error) {
	for _, a := range avoid {
		if a == nil {
			continue
		}
		if d, err := sl.pick(cands, role, port, path, a); err != nil || d != nil {
			return d, err
		}
	}
	return sl.pick(cands, role, port, path, nil)
}

// pick draws one relay for role among cands that is compatible with path
// and not excluded, with probability proportional to its weight. It
// returns nil when there is none.
func (sl *selection) pick(cands []*Descriptor, role Role, port uint16, path []*Descriptor, excluded map[peer.ID]bool) (*Descriptor, error) {
	s := sl.s
	w := s.Weigher
	if w == nil {
		w = UniformWeigher{}
	}
	var total float64
	weights := make([]float64, len(cands))
	for i, d := range cands {
		if excluded[d.PeerID] || !eligible(d, role, port) || !sl.compatible(d, path) {
			continue
		}
		x := w.Weight(d, role)
		if x > 0 && !math.IsInf(x, 0) {
			weights[i] = x
			total += x
		}
	}
	if total <= 0 || math.IsInf(total, 0) {
		return nil, nil
	}
	r, err := s.randFloat()
	if err != nil {
		return nil, err
	}
	target := r * total
	var last *Descriptor
	for i, x := range weights {
		if x == 0 {
			continue
		}
		last = cands[i]
		if target < x {
			return cands[i], nil
		}
		target -= x
	}
	return last, nil // rounding
}

// weighted reports whether the Weigher lets d take role at all (a
// guard whose operator's score fell below the minimum, say).
func (sl *selection) weighted(d *Descriptor, role Role) bool {
	w := sl.s.Weigher
	if w == nil {
		return true
	}
	x := w.Weight(d, role)
	return x > 0 && !math.IsInf(x, 0)
}

// randFloat returns a uniform float64 in [0, 1).
func (s *Selector) randFloat() (float64, error) {
	src := s.Rand
	if src == nil {
		src = rand.Reader
	}
	var b [8]byte
	if _, err := io.ReadFull(src, b[:]); err != nil {
		return 0, fmt.Errorf("random: %w", err)
	}
	return float64(binary.BigEndian.Uint64(b[:])>>11) / (1 << 53), nil
}

// selection is one path selection: it remembers the subnets of the
// descriptors it looked at.
type selection struct {
	s    *Selector
	nets map[*Descriptor][]netip.Prefix
}

func (s *Selector) selection() *selection {
	return &selection{s: s, nets: map[*Descriptor][]netip.Prefix{}}
}

func (sl *selection) subnets(d *Descriptor) []netip.Prefix {
	n, ok := sl.nets[d]
	if !ok {
		n = subnets(d)
		if sl.s.Observed != nil {
			n = append(n, subnetsOf(sl.s.Observed(d.PeerID))...)
		}
		sl.nets[d] = n
	}
	return n
}

// compatible reports whether d may join path: a different relay and, unless
// allowed, no shared IPv4 /16 or IPv6 /32.
func (sl *selection) compatible(d *Descriptor, path []*Descriptor) bool {
	for _, p := range path {
		if p.PeerID == d.PeerID {
			return false
		}
		if !sl.s.AllowSameSubnet && overlap(sl.subnets(d), sl.subnets(p)) {
			return false
		}
	}
	return true
}

// subnets returns the IPv4 /16 and IPv6 /32 prefixes of d's addresses.
func subnets(d *Descriptor) []netip.Prefix { return subnetsOf(d.Addrs) }

// subnetsOf returns the IPv4 /16 and IPv6 /32 prefixes of addrs' IPs.
func subnetsOf(addrs []ma.Multiaddr) []netip.Prefix {
	var out []netip.Prefix
	for _, a := range addrs {
		if ip, ok := addrIP(a); ok {
			bits := 32
			if ip.Is4() {
				bits = 16
			}
			if p, err := ip.Prefix(bits); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// addrIP returns the IP of an /ip4 or /ip6 multiaddr.
func addrIP(a ma.Multiaddr) (netip.Addr, bool) {
	if len(a) == 0 {
		return netip.Addr{}, false
	}
	switch c := a[0]; c.Code() {
	case ma.P_IP4, ma.P_IP6:
		ip, ok := netip.AddrFromSlice(c.RawValue())
		return ip.Unmap(), ok
	}
	return netip.Addr{}, false
}

func sameSubnet(a, b *Descriptor) bool { return overlap(subnets(a), subnets(b)) }

func overlap(a, b []netip.Prefix) bool {
	for _, p := range a {
		for _, q := range b {
			if p == q {
				return true
			}
		}
	}
	return false
}
