package node

import (
	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/internal/datadir"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

// What the external tests (package node_test, which build their networks
// with node/localnet) read of a node's insides.

// TISAgent is the node's TIS agent (nil without [tis]).
func (n *Node) TISAgent() *tis.Agent { return n.tis }

// TrustAgent is the node's trust agent (nil without [tis]).
func (n *Node) TrustAgent() *trust.Agent { return n.trust }

// Directory is the node's discovery.
func (n *Node) Directory() *discovery.Discovery { return n.disc }

// Pool is the client's circuit pool.
func (n *Node) Pool() *proxy.Pool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pool
}

// RelayOf is what the agents read of a descriptor.
var RelayOf = relayOf

// TrustWeigher is the node's discovery.Weigher over a.
func TrustWeigher(a *trust.Agent) discovery.Weigher { return trustWeigher{a} }

// LoadOrCreateIdentity is the data directory's key (datadir), for the
// tests that enroll a node before it starts.
var LoadOrCreateIdentity = datadir.LoadOrCreateIdentity

// circuitHops are a path's hops (discovery.Hops).
var circuitHops = discovery.Hops

// RelayLimits are the relay's limits in force.
func (n *Node) RelayLimits() circuit.Limits {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.relay.Limits()
}

// CircuitFailureHook is the circuit client's OnFailure.
func (n *Node) CircuitFailureHook() func([]circuit.Hop, error) { return n.clientOptions().OnFailure }

// ClientCircuits are the circuit client's open circuits.
func (n *Node) ClientCircuits() []*circuit.Circuit {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cc.Circuits()
}
