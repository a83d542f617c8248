package proxy

import "time"

// Default listen addresses, on loopback: the usual SOCKS port and the
// usual local HTTP proxy port (Privoxy's), as in config.Default. Neither
// collides with Tor's 9050 or 9150.
const (
	DefaultSOCKSAddr = "127.0.0.1:1080"
	DefaultHTTPAddr  = "127.0.0.1:8118"
)

// PoolOptions configure a Pool. A zero field means its default.
type PoolOptions struct {
	// Prebuilt is how many clean circuits the pool keeps ready for new
	// isolation groups. Default 2; a negative value disables prebuilding.
	Prebuilt int
	// Dirtiness is how long a circuit takes new streams, counted from the
	// moment it is claimed for its first stream (Tor's MaxCircuitDirtiness,
	// which Tor also counts from first use). A dirty circuit keeps its open
	// streams and closes when the last one ends. Default 10 minutes.
	Dirtiness time.Duration
	// ConnectTimeout bounds one stream open (the exit's connect to the
	// destination). Default 30 seconds.
	ConnectTimeout time.Duration
	// BuildTimeout bounds one circuit build. Default 30 seconds.
	BuildTimeout time.Duration
	// MaxStreamsPerCircuit caps the streams the pool puts on one circuit
	// (an exit refuses more than its own cap, the circuit package's
	// RelayOptions.MaxStreamsPerCircuit); a group that needs more gets
	// another circuit. Default 1024, the exits' default.
	MaxStreamsPerCircuit int
	// MaxCircuits caps live circuits plus builds in flight. When the cap is
	// reached the pool closes the idle circuit claimed longest ago; if none
	// is idle, dials fail with ErrTooManyCircuits. Default 32.
	MaxCircuits int
}

// Defaults of PoolOptions, and the pool's fixed timings.
const (
	DefaultPrebuilt       = 2
	DefaultDirtiness      = 10 * time.Minute
	DefaultConnectTimeout = 30 * time.Second
	DefaultBuildTimeout   = 30 * time.Second
	DefaultMaxCircuits    = 32
	// DefaultMaxStreamsPerCircuit is the exits' default cap.
	DefaultMaxStreamsPerCircuit = 1024

	// maxFullRetries bounds how often one dial moves on after exits
	// refused it for full circuits.
	maxFullRetries = 8
	// A stream open's first attempt waits beginMin plus beginRTTs round
	// trips of its circuit for the exit's answer (the exit's connect to
	// the destination is most of it), then tries another exit.
	beginMin  = 3 * time.Second
	beginRTTs = 10
	// Learned from the last connectSamples opens (once there are
	// minConnectSamples): the bound is beginSlowest times the slowest of
	// them, between beginFloor and the above.
	beginFloor        = time.Second
	beginSlowest      = 4
	connectSamples    = 32
	minConnectSamples = 8
	// maxStreamRetries bounds how often one stream open moves on to a
	// circuit through another exit after a circuit failure or an
	// unanswered BEGIN (all within ConnectTimeout); the last attempt
	// waits for the rest of ConnectTimeout.
	maxStreamRetries = 3

	// cleanMaxAge: a prebuilt circuit nobody claimed is replaced after this
	// long, so paths keep rotating (Tor's CircuitIdleTimeout is one hour).
	cleanMaxAge = time.Hour
	// maxSweepInterval: how often at most the builder looks for dirty idle
	// circuits to close.
	maxSweepInterval = 15 * time.Second
	// Failed prebuilds back off exponentially between these bounds.
	minBuildBackoff = time.Second
	maxBuildBackoff = time.Minute
)

func (o PoolOptions) withDefaults() PoolOptions {
	if o.Prebuilt == 0 {
		o.Prebuilt = DefaultPrebuilt
	}
	if o.Prebuilt < 0 {
		o.Prebuilt = 0
	}
	if o.Dirtiness <= 0 {
		o.Dirtiness = DefaultDirtiness
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.BuildTimeout <= 0 {
		o.BuildTimeout = DefaultBuildTimeout
	}
	if o.MaxCircuits <= 0 {
		o.MaxCircuits = DefaultMaxCircuits
	}
	if o.MaxStreamsPerCircuit <= 0 {
		o.MaxStreamsPerCircuit = DefaultMaxStreamsPerCircuit
	}
	return o
}

// ServerOptions configure the front ends. A zero field means its default.
type ServerOptions struct {
	// HandshakeTimeout bounds a client's SOCKS handshake or HTTP request
	// header, so idle half-open clients do not pin goroutines. Default 30 s.
	HandshakeTimeout time.Duration
	// IdleTimeout closes an HTTP proxy keep-alive connection that waits this
	// long for its next request. Default 2 minutes.
	IdleTimeout time.Duration
	// SOCKSEarlySuccess makes the SOCKS front end reply success as soon as
	// the stream's BEGIN has left (optimistic data, see early.go): the
	// application's first bytes then leave a circuit round trip sooner
	// (bench/wan: first byte 147 -> 84 ms at 10 ms per link), but a failed
	// connect resets the connection instead of giving its reply code. A
	// stream whose BEGIN goes unanswered (a dead or frozen relay) still
	// moves to another circuit, its first bytes sent again (replayConn).
	// Off by default, as Tor: the reply waits for the exit, so it is
	// precise (client.socks_early_success).
	SOCKSEarlySuccess bool
	// Services reaches the Matryoshka services under .pikcio (pikcio.go);
	// nil: such names are refused. They never go to an exit.
	Services ServiceDialer
}

// Defaults of ServerOptions.
const (
	DefaultHandshakeTimeout = 30 * time.Second
	DefaultIdleTimeout      = 2 * time.Minute

	// lingerTimeout: after refusing a client (HTTP on the SOCKS port, SOCKS4)
	// the server reads what the client already sent for at most this long,
	// so closing does not reset the connection before the client has read
	// the answer.
	lingerTimeout = time.Second
	lingerMax     = 16 << 10
)

func (o ServerOptions) withDefaults() ServerOptions {
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	return o
}
