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

// linkWindowMax is the largest yamux window of a link stream (one circuit
// on one link). go-yamux v5 starts every stream at a fixed 256 KiB (it
// ignores Config.InitialStreamWindowSize) and doubles the window when the
// reader consumes half of it within four round trips of the session's ping
// estimate, up to MaxStreamWindowSize; each doubling is reserved with the
// resource manager (ResourceManager caps a peer's circuit streams at 256
// MiB), so a large maximum costs memory only where data flows. libp2p's
// default maximum, 16 MiB, is one circuit's worth at 160 MiB/s over a 100
// ms link round trip but less than the largest congestion window (32 MiB);
// the maximum here matches that window, so the link never caps a circuit
// that congestion control lets grow. The growth rule is what stalls near
// 512 KiB when the reader is slow to drain (libp2p/go-yamux issue 136);
// the circuit's own windows keep relays' readers draining.
const linkWindowMax = cwndMax * CellSize

// muxerOptions replaces libp2p's yamux transport with one whose windows
// fit circuits at wide-area latencies.
func muxerOptions() []libp2p.Option {
	cfg := *lpyamux.DefaultTransport
	cfg.MaxStreamWindowSize = linkWindowMax
	return []libp2p.Option{libp2p.Muxer(lpyamux.ID, &cfg)}
}
