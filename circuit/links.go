package circuit

import (
	"github.com/libp2p/go-libp2p"
	lpyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
)

// LinkOptions are the libp2p options that shape the links circuits run over
// (muxer windows, transport liveness). Every pikcio host is built with them,
// so a relay, a client and a test fixture see the same links.
func LinkOptions() []libp2p.Option {
	var opts []libp2p.Option
	opts = append(opts, muxerOptions()...)
	return opts
}

// Yamux windows of a link stream (one circuit on one link). go-yamux starts
// each stream at 256 KiB and doubles it only when its RTT estimate says the
// window is the limit, which in practice stalls near 512 KiB
// (libp2p/go-yamux issue 136): about 5 MiB/s on a link with a 100 ms round
// trip, far below what the circuit's congestion window allows. Links start
// at linkWindowInit and may grow to linkWindowMax; the circuit's own
// congestion control (doc.go) keeps an honest sender's cells in flight
// within its window, so the yamux window only has to stay out of the way.
const (
	linkWindowInit = 8 << 20
	linkWindowMax  = 32 << 20
)

// muxerOptions replaces libp2p's yamux transport with one whose stream
// windows fit circuits at wide-area latencies.
func muxerOptions() []libp2p.Option {
	cfg := *lpyamux.DefaultTransport
	cfg.InitialStreamWindowSize = linkWindowInit
	cfg.MaxStreamWindowSize = linkWindowMax
	return []libp2p.Option{libp2p.Muxer(lpyamux.ID, &cfg)}
}
