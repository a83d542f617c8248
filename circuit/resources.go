package circuit

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
)

// ResourceManager returns a libp2p resource manager whose limits fit the
// circuit protocol. libp2p's defaults allow a few dozen streams of one
// protocol per peer, but every circuit through a link is a stream: a busy
// guard carries thousands of circuits to one middle relay. The limits for
// the circuit protocol (ProtocolID) and for peers are raised to the relay caps in o (with
// defaults for zero fields); everything else keeps libp2p's scaled defaults.
func ResourceManager(o RelayOptions) (network.ResourceManager, error) {
	o = o.withDefaults()
	cfg := rcmgr.DefaultLimits
	perPeer := 2 * o.MaxCircuitsPerPeer // inbound circuits plus their extensions
	total := 2 * o.MaxCircuits
	raise := func(l *rcmgr.BaseLimit, in, all int) {
		l.StreamsInbound = max(l.StreamsInbound, in)
		l.StreamsOutbound = max(l.StreamsOutbound, in)
		l.Streams = max(l.Streams, all)
	}
	raise(&cfg.PeerBaseLimit, perPeer, 2*perPeer)
	raise(&cfg.SystemBaseLimit, total, 2*total)
	raise(&cfg.TransientBaseLimit, perPeer, 2*perPeer)
	cfg.AddProtocolLimit(ProtocolID,
		rcmgr.BaseLimit{StreamsInbound: total, StreamsOutbound: total, Streams: 2 * total, Memory: 1 << 30},
		rcmgr.BaseLimitIncrease{})
	cfg.AddProtocolPeerLimit(ProtocolID,
		rcmgr.BaseLimit{StreamsInbound: perPeer, StreamsOutbound: perPeer, Streams: 2 * perPeer, Memory: 256 << 20},
		rcmgr.BaseLimitIncrease{})
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(cfg.AutoScale()))
	if err != nil {
		return nil, fmt.Errorf("resource manager: %w", err)
	}
	return rm, nil
}
