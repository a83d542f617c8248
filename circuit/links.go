package circuit

import (
	"context"
	"net"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/network"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse"
	"github.com/quic-go/quic-go"
	"go.uber.org/fx"
)

// LinkOptions are the libp2p options that shape the links circuits run over
// (muxer windows, transport liveness). Every pikcio host is built with them,
// so a relay, a client and a test fixture see the same links.
func LinkOptions() []libp2p.Option {
	cfg := *lpyamux.DefaultTransport
	yamuxLiveness(&cfg)
	return []libp2p.Option{libp2p.Muxer(lpyamux.ID, &cfg), quicLiveness()}
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
)

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
		lc.Append(fx.StopHook(cm.Close))
		return cm, nil
	})
}
