package node

import (
	"context"
	"errors"

	"github.com/sirupsen/logrus"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/tis/token"
)

// buildCircuit is the pool's BuildFunc (see build).
func (n *Node) buildCircuit(ctx context.Context) (proxy.Circuit, error) {
	return n.build(ctx, false)
}

// build waits (within ctx) until the directory can make a path, with an
// exit that reaches IPv6 if ipv6, then builds through discovery's Builder,
// which retries on other paths and learns the build timeout. The first
// circuit of the main pool (not ipv6) makes the node ready.
func (n *Node) build(ctx context.Context, ipv6 bool) (proxy.Circuit, error) {
	req := discovery.PathRequest{Hops: int(n.hops.Load()), IPv6: ipv6,
		AvoidExits: peerIDs(proxy.AvoidExits(ctx)), Avoid: peerIDs(proxy.AvoidRelays(ctx))}
	if err := n.keeper.WaitPath(ctx, req); err != nil {
		return nil, err
	}
	n.mu.Lock()
	b := n.builder
	n.mu.Unlock()
	c, path, err := b.Build(ctx, req)
	if err != nil {
		if ctx.Err() == nil {
			n.activity.Record("build", "circuit build failed: "+err.Error(), "")
		}
		if discovery.IsSelectError(err) {
			n.keeper.Poke()
		}
		return nil, err
	}
	if !ipv6 {
		n.readyOne.Do(func() {
			n.log.WithField("hops", len(path)).Info("first circuit ready")
			close(n.ready)
		})
	}
	return c, nil
}

// peerIDs decodes the pool's relay names (peer IDs, as circuits'
// ExitID and RelayIDs give them), skipping any that is not one.
func peerIDs(names []string) []peer.ID {
	var out []peer.ID
	for _, s := range names {
		if id, err := peer.Decode(s); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// buildPath builds a circuit through the descriptors' relays, from the
// circuit identity in use (circuit.Identities.Build),
// (discovery.CircuitBuild: a hop's failure is a HopError, so that
// discovery blames that hop; lacking a token is the client's own failure,
// not the guard's).
func (n *Node) buildPath(ctx context.Context, path []*discovery.Descriptor) (*circuit.Circuit, error) {
	return discovery.CircuitBuild(n.cids, n.noToken)(ctx, path)
}

// noToken reports a build that failed for want of an admission token: the
// wallet is empty and cannot be refilled, or the client has no wallet (no
// tis.url) and its guard requires a token. Neither is the guard's doing:
// held against it, the client would mark every guard down in turn, count
// failures against them and rotate them away. A guard that refuses with
// "missing" a token this client did present is still blamed.
func (n *Node) noToken(err error) bool {
	if errors.Is(err, token.ErrNoTokens) {
		return true
	}
	be, ok := errors.AsType[*circuit.BuildError](err)
	if !ok || be.Hop != 0 || n.admit.State() != nil {
		return false
	}
	de, ok := errors.AsType[*circuit.DestroyedError](err)
	return ok && de.Reason == circuit.DestroyTokenMissing
}

// warnShortCircuits warns of a client configured with fewer than
// circuit.DefaultHops hops: one or two are kept for tests and the demo, but
// with them the first hop also sees destinations, or the exit and the
// guard are neighbours.
func warnShortCircuits(log logrus.FieldLogger, hops int) {
	if hops > 0 && hops < circuit.DefaultHops {
		log.WithField("hops", hops).Warnf("client.hops is %d: circuits of fewer than %d hops do not hide who talks to whom (tests and demos only)", hops, circuit.DefaultHops)
	}
}

// clientOptions are the circuit client's: failures after build reach
// discovery's path-bias count.
func (n *Node) clientOptions() circuit.ClientOptions {
	o := circuit.DefaultClientOptions()
	o.OnFailure = n.disc.CircuitFailed
	o.LinkLost = n.disc.ReportUnreachable
	o.Token = n.admit.Take
	return o
}

// startPool starts the pool's prebuilt circuits once the directory can
// first make a path (the keeper's possible).
func (n *Node) startPool() {
	n.mu.Lock()
	p := n.pool
	n.mu.Unlock()
	p.Start()
}
