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

// ShortID is the last eight characters of a peer ID (web.ShortID).
func ShortID(id peer.ID) string { return web.ShortID(id.String()) }

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
		st.Identity.Tokens = tokensState(n.admit)
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
	pcs := make([]web.PoolCircuit, 0, len(infos))
	ids := map[string]peer.ID{}
	for _, ci := range infos {
		c, ok := ci.Circuit.(*circuit.Circuit)
		if !ok {
			continue
		}
		cst := c.Stats()
		pc := web.PoolCircuit{ID: ci.ID, Group: ci.Group, Retired: ci.Retired, Created: c.Created(),
			BytesUp: cst.BytesUp, BytesDown: cst.BytesDown, Streams: cst.Streams, StreamsOpened: cst.StreamsOpened}
		for _, h := range c.Path() {
			s := h.ID.String()
			ids[s] = h.ID
			pc.Hops = append(pc.Hops, s)
		}
		pcs = append(pcs, pc)
	}
	var hop func(string) (*web.Band, string)
	if n.trust != nil {
		hop = func(s string) (*web.Band, string) {
			var r trust.Relay
			d, known := n.disc.Descriptor(ids[s])
			if known {
				r = relayOf(d)
			}
			return n.trust.HopStatus(ids[s], r, known)
		}
	}
	cs.Circuits = web.Circuits(now, pcs, hop)
	return cs
}

// statusSource is the node as the web package's Source.
type statusSource struct{ n *Node }

var _ web.Source = statusSource{}

func (s statusSource) Status(destinations bool) web.Status { return s.n.StatusWith(destinations) }
func (s statusSource) NewIdentity() bool                   { return s.n.NewIdentity() }
