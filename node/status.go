package node

import (
	"cmp"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/internal/version"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/web"
)

// Status is a snapshot of a node: the status page's data and the answer
// of GET /api/status (documented in the web package).
type Status = web.Status

// ShortID is the last eight characters of a peer ID: enough to tell the
// relays of a network apart on a status page.
func ShortID(id peer.ID) string {
	s := id.String()
	if len(s) <= 8 {
		return s
	}
	return s[len(s)-8:]
}

// hopRole names position i of an n-hop path.
func hopRole(i, n int) string {
	switch {
	case i == n-1:
		return "exit"
	case i == 0:
		return "guard"
	default:
		return "middle"
	}
}

// Status returns a snapshot of the node without destinations.
func (n *Node) Status() Status { return n.StatusWith(false) }

// StatusWith returns a snapshot of the node; destinations says whether
// the recent errors carry their destinations (kept in memory only).
func (n *Node) StatusWith(destinations bool) Status {
	n.mu.Lock()
	cfg := n.cfg
	started := n.started
	relay, cc, pool, builder := n.relay, n.cc, n.pool, n.builder
	socks, httpA := n.socksAddr, n.httpAddr
	n.mu.Unlock()

	now := time.Now()
	st := Status{
		Version:    version.String(),
		Generated:  now.UTC(),
		PeerID:     n.host.ID().String(),
		Started:    started,
		Addrs:      []string{},
		Throughput: n.activity.Samples(),
		Errors:     n.activity.Recent(destinations),
	}
	if !started.IsZero() {
		st.Uptime = now.Sub(started).Seconds()
	}
	if n.client {
		st.Roles = append(st.Roles, "client")
	}
	if n.isRelay {
		st.Roles = append(st.Roles, "relay")
	}
	if n.exit != nil {
		st.Roles = append(st.Roles, "exit")
	}
	for _, a := range n.Addrs() {
		st.Addrs = append(st.Addrs, a.String())
	}
	select {
	case <-n.joined:
		st.Joined = true
	default:
	}
	relays := n.disc.Relays()
	st.Network.RelaysKnown = len(relays)
	for _, d := range relays {
		if d.IsExit() {
			st.Network.ExitsKnown++
		}
	}
	st.Network.DHTPeers = n.disc.DHTPeers()
	if n.trust != nil {
		st.Identity, st.Network.TrustIdentities = n.trust.IdentityStatus()
		st.Identity.Tokens = n.admit.webState()
	}
	if n.client {
		st.Network.Guards = len(n.disc.Guards())
		st.Client = n.clientStatus(now, cc, pool)
		if socks != nil {
			st.Client.SOCKS = socks.String()
		}
		if httpA != nil {
			st.Client.HTTP = httpA.String()
		}
		if builder != nil {
			st.Client.BuildTimeout = builder.Timeout().Seconds()
		}
	}
	if relay != nil {
		rs := relay.Stats()
		st.Relay = &web.RelayStatus{
			Exit:          n.exit != nil,
			Circuits:      rs.Circuits,
			CircuitsTotal: rs.CircuitsTotal,
			Bytes:         rs.Bytes,
		}
		if n.exit != nil {
			st.Relay.ExitPolicy = append([]string{}, cfg.Relay.ExitPolicy...)
		}
		if n.trust != nil {
			if lo, hi, ok := n.trust.OwnBand(); ok {
				st.Relay.TCI = &web.Band{Min: lo, Max: hi}
			}
		}
	}
	st.Services = n.serviceStatus()
	return st
}

func (n *Node) clientStatus(now time.Time, cc *circuit.Client, pool *proxy.Pool) *web.ClientStatus {
	cs := &web.ClientStatus{Hops: int(n.hops.Load()), Circuits: []web.CircuitStatus{}}
	select {
	case <-n.ready:
		cs.Ready = true
	default:
	}
	if pool == nil || cc == nil {
		return cs
	}
	ps := pool.Stats()
	cs.Pool = web.PoolStatus{
		Circuits:      ps.Circuits,
		Clean:         ps.Clean,
		Retired:       ps.Retired,
		Streams:       ps.Streams,
		Building:      ps.Building,
		Groups:        ps.Groups,
		Builds:        ps.Builds,
		BuildFailures: ps.BuildFailures,
	}
	cs.Pool.BytesUp, cs.Pool.BytesDown = n.activity.Totals()
	infos := pool.Snapshot()
	slices.SortFunc(infos, func(a, b proxy.CircuitInfo) int { return cmp.Compare(b.Age, a.Age) })
	for _, ci := range infos {
		c, ok := ci.Circuit.(*circuit.Circuit)
		if !ok {
			continue
		}
		path := c.Path()
		cst := c.Stats()
		s := web.CircuitStatus{
			ID:            ci.ID,
			Hops:          make([]web.HopStatus, len(path)),
			Age:           now.Sub(c.Created()).Seconds(),
			BytesUp:       cst.BytesUp,
			BytesDown:     cst.BytesDown,
			Streams:       cst.Streams,
			StreamsOpened: cst.StreamsOpened,
			Group:         ci.Group,
			State:         "in use",
		}
		switch {
		case ci.Retired:
			s.State = "retired"
		case ci.Group == 0:
			s.State = "clean"
		}
		for i, h := range path {
			hs := web.HopStatus{ID: ShortID(h.ID), PeerID: h.ID.String(), Role: hopRole(i, len(path))}
			if n.trust != nil {
				var r trust.Relay
				d, known := n.disc.Descriptor(h.ID)
				if known {
					r = relayOf(d)
				}
				hs.TCI, hs.Contact = n.trust.HopStatus(h.ID, r, known)
			}
			s.Hops[i] = hs
		}
		cs.Circuits = append(cs.Circuits, s)
	}
	return cs
}

// statusSource is the node as the web package's Source.
type statusSource struct{ n *Node }

var _ web.Source = statusSource{}

func (s statusSource) Status(destinations bool) web.Status { return s.n.StatusWith(destinations) }
func (s statusSource) NewIdentity() bool                   { return s.n.NewIdentity() }
