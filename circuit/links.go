package circuit

import "github.com/libp2p/go-libp2p"

// LinkOptions are the libp2p options that shape the links circuits run over
// (muxer windows, transport liveness). Every pikcio host is built with them,
// so a relay, a client and a test fixture see the same links.
func LinkOptions() []libp2p.Option {
	return nil
}
