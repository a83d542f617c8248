package web

import "time"

// Status is a snapshot of a node: what the page shows and what
// GET /api/status answers, field for field. It says how much and through
// which relays, never to where: the only destinations in it are in
// Errors, and only when the caller asked for them.
type Status struct {
	Version   string    `json:"version"`
	Generated time.Time `json:"generated"` // when the snapshot was taken
	PeerID    string    `json:"peer_id"`   // the node's libp2p peer ID
	Roles     []string  `json:"roles"`     // "client", "relay", "exit"
	Started   time.Time `json:"started"`
	Uptime    float64   `json:"uptime_seconds"`
	Addrs     []string  `json:"addrs"` // listen multiaddrs with /p2p/
	Joined    bool      `json:"joined"`
	// Identity is the node's TIS enrollment; nil when no TIS root key is
	// configured.
	Identity *Identity `json:"identity,omitempty"`
	Network  Network   `json:"network"`
	// Client and Relay are there for a node with that role.
	Client *ClientStatus `json:"client,omitempty"`
	Relay  *RelayStatus  `json:"relay,omitempty"`
	// Services are the Matryoshka services the node publishes: their
	// addresses and intro points, never their clients.
	Services []ServiceStatus `json:"services,omitempty"`
	// Throughput is one sample per second, oldest first, for the last
	// ThroughputWindow at most. A client counts circuit payload, a relay
	// the cell bytes it forwards.
	Throughput []Sample `json:"throughput"`
	// Errors are the most recent failures, newest first.
	Errors []ErrorEntry `json:"errors"`
}

// ThroughputWindow is how much throughput history a Status carries.
const ThroughputWindow = 5 * time.Minute

// Identity is the node's enrollment with the TIS.
type Identity struct {
	Enrolled     bool   `json:"enrolled"`
	NodeID       string `json:"node_id,omitempty"`       // hex tis.ID of the node certificate
	MatryoshkaID string `json:"matryoshka_id,omitempty"` // hex tis.ID of the Matryoshka certificate
	// NodeCertExpires and MatryoshkaCertExpires are zero when not enrolled.
	NodeCertExpires       time.Time `json:"node_cert_expires"`
	MatryoshkaCertExpires time.Time `json:"matryoshka_cert_expires"`
	// Score is the user's own TCI (0..100), nil until it is computed.
	Score *int `json:"score"`
	// Contacts is the number of contacts in the local store.
	Contacts int `json:"contacts"`
	// Tokens is the client's wallet of admission tokens, nil on a node
	// without one (no client role, or no tis.url).
	Tokens *Tokens `json:"tokens,omitempty"`
}

// Tokens is the state of a client's wallet of admission tokens: what it
// presents to guards instead of its certificate.
type Tokens struct {
	Held      int    `json:"held"`      // unspent tokens, for all guards
	Guards    int    `json:"guards"`    // guards they are for
	Remaining int    `json:"remaining"` // more the TIS allows this period, -1 if not known yet
	Refilling bool   `json:"refilling"` // a refill is under way
	LastError string `json:"last_error,omitempty"`
}

// Network is what the node knows of the network.
type Network struct {
	RelaysKnown int `json:"relays_known"` // usable descriptors in the directory
	ExitsKnown  int `json:"exits_known"`
	Guards      int `json:"guards"`    // the client's entry guards
	DHTPeers    int `json:"dht_peers"` // peers in the DHT routing table
	// TrustIdentities is the number of identities the node's TCI view
	// covers (0 before the first computation).
	TrustIdentities int `json:"trust_identities"`
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
	Groups        int    `json:"groups"` // isolation groups with a circuit
	Builds        uint64 `json:"builds"`
	BuildFailures uint64 `json:"build_failures"`
	// BytesUp and BytesDown are the payload bytes carried by all the
	// client's circuits since start, closed ones included (the
	// pikcio_circuit_bytes_total counter).
	BytesUp   uint64 `json:"bytes_up"`
	BytesDown uint64 `json:"bytes_down"`
}

// Circuit is the client's circuit with the pool's number id, nil if the
// snapshot has none.
func (s Status) Circuit(id uint64) *CircuitStatus {
	if s.Client == nil {
		return nil
	}
	for i := range s.Client.Circuits {
		if s.Client.Circuits[i].ID == id {
			return &s.Client.Circuits[i]
		}
	}
	return nil
}

// CircuitStatus is one open circuit of the client.
type CircuitStatus struct {
	ID            uint64      `json:"id"`   // the pool's number for it
	Hops          []HopStatus `json:"hops"` // first hop first
	Age           float64     `json:"age_seconds"`
	BytesUp       uint64      `json:"bytes_up"`
	BytesDown     uint64      `json:"bytes_down"`
	Streams       int         `json:"streams"` // open now
	StreamsOpened uint64      `json:"streams_opened"`
	// Group is the isolation group (0: prebuilt, not used yet). Groups are
	// numbered locally; the credentials behind them are not shown.
	Group int `json:"group"`
	// State is "clean" (prebuilt), "in use" or "retired" (takes no new
	// streams).
	State string `json:"state"`
}

// HopStatus is one relay of a circuit.
type HopStatus struct {
	ID     string `json:"id"`      // short form of the peer ID
	PeerID string `json:"peer_id"` // full peer ID
	Role   string `json:"role"`    // guard, middle or exit
	// TCI is the relay owner's trust band from the TIS's signed relay
	// score; nil when the relay has none.
	TCI *Band `json:"tci"`
	// Contact is the local name of the contact who runs the relay, "" when
	// it is not a contact's relay.
	Contact string `json:"contact,omitempty"`
}

// Band is a range of TCI scores, inclusive, within 0..100.
type Band struct {
	Min int `json:"min"`
	Max int `json:"max"`
}

// ServiceStatus is one published Matryoshka service.
type ServiceStatus struct {
	Name        string    `json:"name"`
	Address     string    `json:"address"`      // ADDRESS.pikcio
	IntroPoints []string  `json:"intro_points"` // relay peer IDs
	Joined      int       `json:"joined"`       // rendezvous circuits open now
	Published   time.Time `json:"published"`    // last descriptor upload; zero: none yet
	PublishErr  string    `json:"publish_error,omitempty"`
}

// RelayStatus is the relay role's state: what it carries, never for whom.
type RelayStatus struct {
	Exit          bool     `json:"exit"`
	ExitPolicy    []string `json:"exit_policy,omitempty"` // the operator's rules
	Circuits      int      `json:"circuits"`
	CircuitsTotal uint64   `json:"circuits_total"`
	Bytes         uint64   `json:"bytes"` // cell bytes handled
	// TCI is the band the TIS states for this relay's owner, nil when the
	// relay holds no current statement.
	TCI *Band `json:"tci"`
}

// Sample is the traffic of one second.
type Sample struct {
	Time int64  `json:"t"` // Unix seconds
	Up   uint64 `json:"up"`
	Down uint64 `json:"down"`
}

// ErrorEntry is one recent failure. Destination is set only in a snapshot
// asked for with destinations (the page's "show destinations" switch).
type ErrorEntry struct {
	Time        time.Time `json:"time"`
	Kind        string    `json:"kind"`    // e.g. "build", "dial", "policy"
	Message     string    `json:"message"` // never names the destination
	Destination string    `json:"destination,omitempty"`
}

// Source is where the handler gets its data and actions: the node.
type Source interface {
	// Status returns a snapshot; destinations says whether Errors carry
	// their destinations.
	Status(destinations bool) Status
	// NewIdentity retires the client's circuits so that new connections
	// use new ones; it reports false when the node has no client role.
	NewIdentity() bool
}
