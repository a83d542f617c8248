package circuit

import (
	"context"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
)

// ProtocolID is the libp2p protocol of circuit links: one libp2p stream per
// circuit per link.
const ProtocolID protocol.ID = "/pikcio/circuit/2"

// Hop counts a client accepts.
const (
	DefaultHops = 3
	MaxHops     = 8
)

// Flow control and congestion control, in cells; see "Flow control" in
// doc.go for the algorithm and why these values.
const (
	// Circuit level: the sender's congestion window (Vegas).
	circuitIncr = 64    // cells one circuit SENDME credits (256 KiB)
	cwndInit    = 256   // 1 MiB, the fixed window before congestion control
	cwndMin     = 256   // never below the fixed window it replaced
	cwndMax     = 16384 // 64 MiB: 100 MiB/s at a 640 ms round trip
	vegasAlpha  = 32    // grow while fewer cells than this are queued on the path
	vegasBeta   = 96    // shrink while more are
	vegasGamma  = 64    // leave slow start when this many are queued
	vegasDelta  = 256   // cut the window by the queue when it exceeds this

	// Stream level: receive windows the reader's speed tunes.
	streamWindowInit = 32      // 128 KiB: what a new stream may send unasked
	streamIncrement  = 32      // cells one stream SENDME credits
	streamWindowMax  = cwndMax // 64 MiB: no more than the circuit lets fly
	streamGrowth     = 16      // a keeping-up reader's window grows sixteenfold
	// circuitGrowth caps the windows of one circuit's streams together as
	// far as growth goes: the most the circuit has in flight, so a lone
	// stream can reach the largest window.
	circuitGrowth = cwndMax
	// circuitBuffer caps the receive windows of one circuit's streams
	// together (what one circuit can make an edge hold in memory): the
	// grown windows and the initial windows of 64 new streams.
	circuitBuffer = circuitGrowth + 64*streamWindowInit // 72 MiB
)

// ExitDialer opens the real connection for a stream at an exit relay.
// exitnode.Exit implements it. Its errors are classified with
// endreason.ReasonOf for the END message.
type ExitDialer interface {
	DialExit(ctx context.Context, host string, port uint16) (net.Conn, error)
}

// RelayOptions are a relay's settings. Zero fields take the defaults of
// DefaultRelayOptions.
type RelayOptions struct {
	// Exit, when set, makes the relay an exit: BEGIN is served through it.
	// A relay without one refuses every BEGIN.
	Exit ExitDialer
	// MaxCircuitsPerPeer caps the circuits one previous hop may have open
	// through this relay.
	MaxCircuitsPerPeer int
	// MaxCircuits caps all circuits through this relay.
	MaxCircuits int
	// MaxStreamsPerCircuit caps the open exit streams of one circuit.
	MaxStreamsPerCircuit int
	// HandshakesPerSecond and HandshakeBurst rate-limit CREATE handling.
	HandshakesPerSecond float64
	HandshakeBurst      int
	// HandshakesPerPeerPerSecond and HandshakePeerBurst rate-limit the
	// CREATEs of each previous hop, before the global budget, so that one
	// peer cannot spend everyone's handshakes.
	HandshakesPerPeerPerSecond float64
	HandshakePeerBurst         int
	// MaxPending caps the inbound links still being admitted or waiting
	// for their CREATE, MaxPendingPerPeer those of one previous hop;
	// PendingTimeout bounds that phase (AdmitPeer and the CREATE).
	MaxPending        int
	MaxPendingPerPeer int
	PendingTimeout    time.Duration
	// HandshakeTimeout bounds a CREATE/CREATED exchange, ExtendTimeout the
	// whole of an EXTEND, ConnectTimeout the exit's connect.
	HandshakeTimeout time.Duration
	ExtendTimeout    time.Duration
	ConnectTimeout   time.Duration
	// OnionKeyLifetime is how long an onion key is advertised;
	// OnionKeyGrace how long the previous one is still accepted after a
	// rotation. ReplayWindow is how far a handshake's timestamp may be from
	// the relay's clock.
	OnionKeyLifetime time.Duration
	OnionKeyGrace    time.Duration
	ReplayWindow     time.Duration
	// OnionKeyFile, when set, is where the relay keeps its current and
	// previous onion keys (mode 0600, rewritten at each rotation), so that
	// after a restart it still answers to the key its published descriptor
	// names. "" keeps them in memory: a restart makes a new key.
	OnionKeyFile string
	// BandwidthRate caps the bytes per second of cells this relay sends
	// (0: unlimited); BandwidthBurst is the bucket (0: one second's worth),
	// never less than one batch of cells.
	BandwidthRate  int64
	BandwidthBurst int64
	// ResolveHop, when set, returns the addresses of the relay id from
	// its verified descriptor, or an error when there is none: a relay
	// extends only to such relays and dials only those addresses, never
	// the ones an EXTEND names. nil dials the EXTEND's addresses (for
	// networks without a directory, such as tests); pikcio's node always
	// sets it. Either way the addresses pass DialableAddr.
	ResolveHop func(ctx context.Context, id peer.ID) ([]ma.Multiaddr, error)
	// AllowPrivateAddrs lets the relay extend to loopback, private and
	// link-local addresses (a test network on loopback, a LAN).
	AllowPrivateAddrs bool
	// ExtendFailureDelay is the least time before a failed EXTEND is
	// answered, however soon it failed, so that its timing tells little
	// about why.
	ExtendFailureDelay time.Duration
	// MaxExitStreams caps the exit connections open at this relay, over
	// all circuits.
	MaxExitStreams int
	// MaxBufferedBytes caps the stream receive windows of all circuits at
	// this relay together: the stream data it may have to hold in memory.
	MaxBufferedBytes int64
	// ExitSendBuffer is the kernel send buffer (SO_SNDBUF) of each exit
	// connection, so that a destination that does not read holds little
	// of a circuit's data in the kernel.
	ExitSendBuffer int
	// AdmitPeer, when set, decides whether the previous hop of a new
	// circuit may open it (e.g. whether it is an enrolled node): an error
	// refuses the circuit with DESTROY(DestroyNotAdmitted). It is called
	// once per inbound link stream, before the handshake, with a context
	// bounded by HandshakeTimeout and canceled by Close, and learns nothing
	// but the previous hop's peer ID. nil admits every peer (default).
	AdmitPeer func(ctx context.Context, prev peer.ID) error
	// AdmitCircuit, when set, decides whether a new circuit may open
	// once its CREATE has arrived, from the previous hop's peer ID and the
	// admission token the CREATE carries (nil: none; see admission.go). It
	// runs after AdmitPeer and the handshake budget, before the handshake,
	// with a context bounded by HandshakeTimeout and canceled by Close. An
	// error wrapping ErrTokenMissing, ErrTokenSpent or ErrTokenInvalid
	// refuses with the matching DESTROY reason, any other with
	// DestroyNotAdmitted. nil admits every circuit (default).
	AdmitCircuit func(ctx context.Context, prev peer.ID, token []byte) error
}

// Limits are the settings of a running relay that can change without a
// restart (Relay.SetLimits). They apply to new circuits, handshakes and
// cells; open circuits and streams are kept.
type Limits struct {
	MaxCircuitsPerPeer   int
	MaxCircuits          int
	MaxStreamsPerCircuit int
	HandshakesPerSecond  float64
	HandshakeBurst       int
	BandwidthRate        int64
	BandwidthBurst       int64
}

// Limits returns the limits part of the options.
func (o RelayOptions) Limits() Limits {
	return Limits{
		MaxCircuitsPerPeer:   o.MaxCircuitsPerPeer,
		MaxCircuits:          o.MaxCircuits,
		MaxStreamsPerCircuit: o.MaxStreamsPerCircuit,
		HandshakesPerSecond:  o.HandshakesPerSecond,
		HandshakeBurst:       o.HandshakeBurst,
		BandwidthRate:        o.BandwidthRate,
		BandwidthBurst:       o.BandwidthBurst,
	}
}

func (o *RelayOptions) setLimits(l Limits) {
	o.MaxCircuitsPerPeer = l.MaxCircuitsPerPeer
	o.MaxCircuits = l.MaxCircuits
	o.MaxStreamsPerCircuit = l.MaxStreamsPerCircuit
	o.HandshakesPerSecond = l.HandshakesPerSecond
	o.HandshakeBurst = l.HandshakeBurst
	o.BandwidthRate = l.BandwidthRate
	o.BandwidthBurst = l.BandwidthBurst
}

// DefaultRelayOptions returns the defaults.
func DefaultRelayOptions() RelayOptions {
	return RelayOptions{
		MaxCircuitsPerPeer:   1024,
		MaxCircuits:          16384,
		MaxStreamsPerCircuit: 1024,
		HandshakesPerSecond:  200,
		HandshakeBurst:       400,
		// A previous hop may be a guard carrying many clients: a
		// quarter of the whole budget.
		HandshakesPerPeerPerSecond: 50,
		HandshakePeerBurst:         100,
		MaxPending:                 512,
		MaxPendingPerPeer:          32,
		PendingTimeout:             5 * time.Second,
		HandshakeTimeout:           10 * time.Second,
		ExtendTimeout:              15 * time.Second,
		ExtendFailureDelay:         time.Second,
		ConnectTimeout:             15 * time.Second,
		OnionKeyLifetime:           28 * 24 * time.Hour,
		OnionKeyGrace:              7 * 24 * time.Hour,
		ReplayWindow:               10 * time.Minute,
		MaxExitStreams:             8192,
		MaxBufferedBytes:           1 << 30,
		ExitSendBuffer:             128 << 10,
	}
}

func (o RelayOptions) withDefaults() RelayOptions {
	d := DefaultRelayOptions()
	if o.MaxCircuitsPerPeer <= 0 {
		o.MaxCircuitsPerPeer = d.MaxCircuitsPerPeer
	}
	if o.MaxCircuits <= 0 {
		o.MaxCircuits = d.MaxCircuits
	}
	if o.MaxStreamsPerCircuit <= 0 {
		o.MaxStreamsPerCircuit = d.MaxStreamsPerCircuit
	}
	if o.HandshakesPerSecond <= 0 {
		o.HandshakesPerSecond = d.HandshakesPerSecond
	}
	if o.HandshakeBurst <= 0 {
		o.HandshakeBurst = d.HandshakeBurst
	}
	if o.HandshakesPerPeerPerSecond <= 0 {
		o.HandshakesPerPeerPerSecond = d.HandshakesPerPeerPerSecond
	}
	if o.HandshakePeerBurst <= 0 {
		o.HandshakePeerBurst = d.HandshakePeerBurst
	}
	if o.MaxPending <= 0 {
		o.MaxPending = d.MaxPending
	}
	if o.MaxPendingPerPeer <= 0 {
		o.MaxPendingPerPeer = d.MaxPendingPerPeer
	}
	if o.PendingTimeout <= 0 {
		o.PendingTimeout = d.PendingTimeout
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = d.HandshakeTimeout
	}
	if o.ExtendTimeout <= 0 {
		o.ExtendTimeout = d.ExtendTimeout
	}
	if o.ExtendFailureDelay <= 0 {
		o.ExtendFailureDelay = d.ExtendFailureDelay
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = d.ConnectTimeout
	}
	if o.OnionKeyLifetime <= 0 {
		o.OnionKeyLifetime = d.OnionKeyLifetime
	}
	if o.OnionKeyGrace <= 0 {
		o.OnionKeyGrace = d.OnionKeyGrace
	}
	if o.ReplayWindow <= 0 {
		o.ReplayWindow = d.ReplayWindow
	}
	if o.MaxExitStreams <= 0 {
		o.MaxExitStreams = d.MaxExitStreams
	}
	if o.MaxBufferedBytes <= 0 {
		o.MaxBufferedBytes = d.MaxBufferedBytes
	}
	if o.ExitSendBuffer <= 0 {
		o.ExitSendBuffer = d.ExitSendBuffer
	}
	return o
}

// ClientOptions are a client's settings.
type ClientOptions struct {
	// HandshakeTimeout bounds each hop's handshake during a build when the
	// caller's context has no earlier deadline.
	HandshakeTimeout time.Duration
	// OnFailure, when set, is told of every built circuit that fails,
	// other than by Close, with the hops and the error (PathBiasFailure
	// says whether it counts against the guard). It runs on the circuit's
	// reader and must not block.
	OnFailure func(path []Hop, err error)
	// LinkLost, when set, is told the first hop of a circuit whose link
	// broke under it (reset, or found dead by the link's liveness check)
	// rather than closed by this client or by a DESTROY: that relay is
	// likely gone. It is called once per circuit, from the circuit's
	// reader, and must not block.
	LinkLost func(first peer.ID)
	// Token, when set, gives the admission token to put in the CREATE
	// for the first hop guard (see admission.go); an error fails the
	// build at hop 0 with it, before anything is sent. nil sends none.
	Token func(ctx context.Context, guard peer.ID) ([]byte, error)
}

// DefaultClientOptions returns the defaults.
func DefaultClientOptions() ClientOptions {
	return ClientOptions{HandshakeTimeout: 15 * time.Second}
}

// WithLimits is o with the limits l.
func (o RelayOptions) WithLimits(l Limits) RelayOptions {
	o.setLimits(l)
	return o
}

// RecordClientOptions are a RecordClient's settings; zero fields take the
// defaults of DefaultRecordClientOptions.
type RecordClientOptions struct {
	// GetDirtiness is how long one circuit carries gets from its first
	// use (Tor's MaxCircuitDirtiness): a crawl, which takes less at the
	// default trust.refresh of 10 minutes, goes on one circuit, and the
	// next one on another, so one relay sees one crawl and learns nothing
	// that ties it to the previous.
	GetDirtiness time.Duration
	// PutDirtiness is the same for the circuit of the puts, which is
	// never the gets': the relay that sees whose bundle a circuit
	// publishes does not see that circuit crawl (and so which contacts
	// the publisher has). Its puts are of one bundle and the public seed
	// list, so it may serve longer.
	PutDirtiness time.Duration
	// Tries bounds the circuits one operation is tried on, each through
	// another last hop.
	Tries int
}

// DefaultRecordClientOptions returns the defaults: gets 10 minutes on one
// circuit, puts an hour, three tries.
func DefaultRecordClientOptions() RecordClientOptions {
	return RecordClientOptions{GetDirtiness: 10 * time.Minute, PutDirtiness: time.Hour, Tries: 3}
}

func (o RecordClientOptions) withDefaults() RecordClientOptions {
	d := DefaultRecordClientOptions()
	if o.GetDirtiness <= 0 {
		o.GetDirtiness = d.GetDirtiness
	}
	if o.PutDirtiness <= 0 {
		o.PutDirtiness = d.PutDirtiness
	}
	if o.Tries <= 0 {
		o.Tries = d.Tries
	}
	return o
}

// IdentityOptions are the settings of a client's circuit identities
// (Identities); zero fields take the defaults of DefaultIdentityOptions.
type IdentityOptions struct {
	// Period is how long one circuit identity is used. Within it a
	// guard can tell that circuits share a connection, as a Tor guard
	// can; across periods only the address links them, and a user who
	// moves between networks is not followed by a peer ID for longer.
	Period time.Duration
	// Drain bounds how long a retired identity's circuits may stay open
	// (a download under way, a service's intro circuit, which the
	// service then replaces).
	Drain time.Duration
	// Check is how often the period and the retired identities are
	// looked at.
	Check time.Duration
}

// DefaultIdentityOptions returns the defaults: an identity a day, its
// circuits closed at the latest 10 minutes after it retired, looked at
// every second.
func DefaultIdentityOptions() IdentityOptions {
	return IdentityOptions{Period: 24 * time.Hour, Drain: 10 * time.Minute, Check: time.Second}
}

func (o IdentityOptions) withDefaults() IdentityOptions {
	d := DefaultIdentityOptions()
	if o.Period <= 0 {
		o.Period = d.Period
	}
	if o.Drain <= 0 {
		o.Drain = d.Drain
	}
	if o.Check <= 0 {
		o.Check = d.Check
	}
	return o
}
