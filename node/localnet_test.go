package node_test

import (
	"testing"

	"github.com/pikcio/pikcio/node/localnet"
)

// startNet is a local network without a TIS (localnet.Options.NoTIS):
// relays relays, of which the last exits are exits that accept 127.0.0.1,
// and a client; edit, if not nil, changes the options first. It waits for
// the client's first circuit; the test's end closes the network.
func startNet(t testing.TB, relays, exits int, edit func(*localnet.Options)) *localnet.Network {
	t.Helper()
	n := localnet.StartTest(t, relays, func(o *localnet.Options) {
		o.NoTIS = true
		o.Exits = exits
		if edit != nil {
			edit(o)
		}
	})
	n.WaitReady(t)
	return n
}
