package circuit

import (
	"cmp"
	"context"
	"net"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/quic-go/quic-go"
	"go.uber.org/fx"
)

// LinkOptions are the libp2p options that shape the links circuits run over
// (security, muxer windows, transport liveness). Every pikcio host is built with them,
// so a relay, a client and a test fixture see the same links.
func LinkOptions() []libp2p.Option {
	cfg := *lpyamux.DefaultTransport
	yamuxWindows(&cfg)
	yamuxLiveness(&cfg)
	return []libp2p.Option{
		// libp2p's default security, TLS first and Noise second, with TLS's
		// records corked (linksec.go).
		libp2p.Security(libp2ptls.ID, newCorkedTLS),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(lpyamux.ID, &cfg),
		quicLiveness(),
		libp2p.SwarmOpts(swarm.WithDialRanker(tcpFirst)),
	}
}

// Liveness of links. A relay that dies, or hangs without closing its
// connections (a frozen process, a host that dropped off the network),
// must be noticed in seconds: then the circuits through it are destroyed
// and their streams fail, and the client's pool builds around it. By
// default neither transport notices: yamux pings an idle TCP link every
// 30 s and waits 10 s for the answer, QUIC waits for its 30 s idle
// timeout.
const (
	// linkPingInterval is how long a link may be idle (nothing received)
	// before a yamux ping or QUIC keep-alive goes out.
	linkPingInterval = time.Second
	// linkTimeout is how long a yamux ping, or a write to the link, may
	// take before the link is declared dead.
	linkTimeout = 3 * time.Second
	// linkIdleTimeout is the QUIC idle timeout: a link that received
	// nothing (not even the answer to a keep-alive) for this long is dead.
	linkIdleTimeout = 4 * time.Second
	// linkHandshakeTimeout bounds a QUIC handshake that gets no answer.
	linkHandshakeTimeout = time.Second
)

// tcpFirstDelay is how long a dial waits for TCP before it tries QUIC.
const tcpFirstDelay = 300 * time.Millisecond

// tcpFirst ranks a peer's addresses for dialing: TCP first, QUIC (and
// anything else) tcpFirstDelay later, lowest port first within each.
// libp2p prefers QUIC; links prefer TCP because when a relay process dies
// its kernel closes its TCP connections at once, so the circuits through
// it fail within milliseconds, where a QUIC link waits for its idle
// timeout (a dead process sends no CONNECTION_CLOSE, and ICMP errors do
// not reach quic-go's shared socket).
func tcpFirst(addrs []ma.Multiaddr) []network.AddrDelay {
	out := make([]network.AddrDelay, 0, len(addrs))
	for _, a := range addrs {
		d := tcpFirstDelay
		if _, err := a.ValueForProtocol(ma.P_TCP); err == nil && !isWebSocket(a) {
			d = 0
		}
		out = append(out, network.AddrDelay{Addr: a, Delay: d})
	}
	slices.SortStableFunc(out, func(x, y network.AddrDelay) int { return cmp.Compare(x.Delay, y.Delay) })
	return out
}

func isWebSocket(a ma.Multiaddr) bool {
	for _, c := range a {
		if c.Code() == ma.P_WS || c.Code() == ma.P_WSS {
			return true
		}
	}
	return false
}

// yamuxLiveness sets a yamux configuration's keep-alive so that a TCP link
// to a peer that stopped answering closes within about
// linkPingInterval+linkTimeout.
func yamuxLiveness(cfg *lpyamux.Transport) {
	cfg.EnableKeepAlive = true
	cfg.KeepAliveInterval = linkPingInterval
	cfg.ConnectionWriteTimeout = linkTimeout
}

// quicLiveness builds the host's QUIC connection manager as libp2p does
// by default, with a short idle timeout and keep-alive for the
// connections this host dials. QUIC uses the smaller of both ends' idle
// timeouts, and a circuit's links are always dialed by the node before
// them (client to guard, relay to next relay), so every link gets it.
func quicLiveness() libp2p.Option {
	return libp2p.QUICReuse(func(lc fx.Lifecycle, srk quic.StatelessResetKey, tk quic.TokenGeneratorKey, rcmgr network.ResourceManager) (*quicreuse.ConnManager, error) {
		cm, err := quicreuse.NewConnManager(srk, tk,
			quicreuse.ConnContext(func(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
				// As libp2p's own: the resource manager admits inbound
				// connections before the handshake.
				addr, err := quicreuse.ToQuicMultiaddr(ci.RemoteAddr, quic.Version1)
				if err != nil {
					addr = nil
				}
				scope, err := rcmgr.OpenConnection(network.DirInbound, false, addr)
				if err != nil {
					return ctx, err
				}
				ctx = network.WithConnManagementScope(ctx, scope)
				context.AfterFunc(ctx, scope.Done)
				return ctx, nil
			}),
			quicreuse.VerifySourceAddress(func(addr net.Addr) bool { return rcmgr.VerifySourceAddress(addr) }),
		)
		if err != nil {
			return nil, err
		}
		c := cm.ClientConfig()
		c.MaxIdleTimeout = linkIdleTimeout
		c.KeepAlivePeriod = linkPingInterval
		// A handshake with a peer whose process is gone gets no answer
		// at all; TCP, dialed first, has usually been refused already.
		c.HandshakeIdleTimeout = linkHandshakeTimeout
		lc.Append(fx.StopHook(cm.Close))
		return cm, nil
	})
}

// linkWindowMax is the largest yamux window of a link stream (one circuit
// on one link). go-yamux v5 starts every stream at 256 KiB, reserved with
// the resource manager, and doubles the window when the reader consumes
// half of it within four round trips of the session's ping estimate, up
// to MaxStreamWindowSize; each doubling is reserved too (against the
// connection's peer scope, at a priority that leaves half of the peer's
// memory limit to other uses), so a large maximum costs memory only where
// data flows. libp2p's default maximum, 16 MiB, is one circuit's worth at
// 160 MiB/s over a 100 ms link round trip but less than the largest
// congestion window (64 MiB); the maximum here matches that window, so
// the link never caps a circuit that congestion control lets grow. The
// growth rule is what stalls near 512 KiB when the reader is slow to
// drain (libp2p/go-yamux issue 136); the circuit's own windows keep
// relays' readers draining.
//
// Config.InitialStreamWindowSize is not ignored, as this comment once
// said: the window update sent with a stream's SYN or ACK grants it at
// once, but reserves nothing beyond 256 KiB, so a neighbour could make a
// relay hold that much unaccounted on every circuit stream. It stays at
// the default: at 50 ms per link, 256 KiB per 100 ms link round trip caps
// only a new circuit's first round trips, when its congestion window is 1
// MiB per 306 ms anyway, and the window doubles from there.
const linkWindowMax = cwndMax * CellSize

// yamuxWindows sets a yamux configuration's windows to fit circuits at
// wide-area latencies.
func yamuxWindows(cfg *lpyamux.Transport) {
	cfg.MaxStreamWindowSize = linkWindowMax
}
