package node

import (
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/proxy"
)

// Status is a snapshot of a node for the status page and GET /api/status.
// It says how much and through which relays, never to where: no
// destination and no stream is named.
type Status struct {
	Version string    `json:"version"`
	PeerID  string    `json:"peer_id"`
	Roles   []string  `json:"roles"` // "client", "relay", "exit"
	Started time.Time `json:"started"`
	Uptime  float64   `json:"uptime_seconds"`
	Addrs   []string  `json:"addrs"` // listen multiaddrs with /p2p/
	Joined  bool      `json:"joined"`
	Network Network   `json:"network"`
	// Client and Relay are there for a node with that role.
	Client *ClientStatus `json:"client,omitempty"`
	Relay  *RelayStatus  `json:"relay,omitempty"`
}

// Network is what the node knows of the network.
type Network struct {
	RelaysKnown int `json:"relays_known"` // usable descriptors in the directory
	ExitsKnown  int `json:"exits_known"`
	Guards      int `json:"guards"` // the client's entry guards
}

// ClientStatus is the client role's state.
type ClientStatus struct {
	SOCKS        string          `json:"socks,omitempty"` // listen address
	HTTP         string          `json:"http,omitempty"`
	Ready        bool            `json:"ready"` // a circuit has been built
	Hops         int             `json:"hops"`
	BuildTimeout float64         `json:"build_timeout_seconds"` // learned
	Pool         PoolStatus      `json:"pool"`
	Circuits     []CircuitStatus `json:"circuits"` // oldest first
}

// PoolStatus are the circuit pool's counters.
type PoolStatus struct {
	Circuits      int    `json:"circuits"`
	Clean         int    `json:"clean"` // prebuilt, not used yet
	Retired       int    `json:"retired"`
	Streams       int    `json:"streams"`
	Building      int    `json:"building"`
	Builds        uint64 `json:"builds"`
	BuildFailures uint64 `json:"build_failures"`
}

// CircuitStatus is one open circuit of the client.
type CircuitStatus struct {
	Hops          []HopStatus `json:"hops"` // first hop first
	Age           float64     `json:"age_seconds"`
	BytesUp       uint64      `json:"bytes_up"`
	BytesDown     uint64      `json:"bytes_down"`
	Streams       int         `json:"streams"` // open now
	StreamsOpened uint64      `json:"streams_opened"`
}

// HopStatus is one relay of a circuit.
type HopStatus struct {
	ID   string `json:"id"`   // ShortID of the relay's peer ID
	Role string `json:"role"` // guard, middle or exit
}

// RelayStatus is the relay role's state.
type RelayStatus struct {
	Exit          bool     `json:"exit"`
	ExitPolicy    []string `json:"exit_policy,omitempty"` // the operator's rules
	Circuits      int      `json:"circuits"`
	CircuitsTotal uint64   `json:"circuits_total"`
	Bytes         uint64   `json:"bytes"` // cell bytes handled
}

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

// Status returns a snapshot of the node.
func (n *Node) Status() Status {
	n.mu.Lock()
	cfg := n.cfg
	started := n.started
	relay, cc, pool, builder := n.relay, n.cc, n.pool, n.builder
	socks, httpA := n.socksAddr, n.httpAddr
	n.mu.Unlock()

	now := time.Now()
	st := Status{
		Version: Version(),
		PeerID:  n.host.ID().String(),
		Started: started,
		Addrs:   []string{},
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
		st.Relay = &RelayStatus{
			Exit:          n.exit != nil,
			Circuits:      rs.Circuits,
			CircuitsTotal: rs.CircuitsTotal,
			Bytes:         rs.Bytes,
		}
		if n.exit != nil {
			st.Relay.ExitPolicy = append([]string{}, cfg.Relay.ExitPolicy...)
		}
	}
	return st
}

func (n *Node) clientStatus(now time.Time, cc *circuit.Client, pool *proxy.Pool) *ClientStatus {
	cs := &ClientStatus{Hops: int(n.hops.Load()), Circuits: []CircuitStatus{}}
	select {
	case <-n.ready:
		cs.Ready = true
	default:
	}
	if pool != nil {
		ps := pool.Stats()
		cs.Pool = PoolStatus{
			Circuits:      ps.Circuits,
			Clean:         ps.Clean,
			Retired:       ps.Retired,
			Streams:       ps.Streams,
			Building:      ps.Building,
			Builds:        ps.Builds,
			BuildFailures: ps.BuildFailures,
		}
	}
	if cc == nil {
		return cs
	}
	circs := cc.Circuits()
	slices.SortFunc(circs, func(a, b *circuit.Circuit) int { return a.Created().Compare(b.Created()) })
	for _, c := range circs {
		path := c.Path()
		cst := c.Stats()
		s := CircuitStatus{
			Hops:          make([]HopStatus, len(path)),
			Age:           now.Sub(c.Created()).Seconds(),
			BytesUp:       cst.BytesUp,
			BytesDown:     cst.BytesDown,
			Streams:       cst.Streams,
			StreamsOpened: cst.StreamsOpened,
		}
		for i, h := range path {
			s.Hops[i] = HopStatus{ID: ShortID(h.ID), Role: hopRole(i, len(path))}
		}
		cs.Circuits = append(cs.Circuits, s)
	}
	return cs
}
