package discovery

import (
	"context"
	"errors"

	"github.com/pikcio/pikcio/circuit"
)

// Circuits over discovered relays: a circuit client as a Builder's
// BuildFunc, and its failures after build as path-bias reports.

// CircuitClient is what CircuitBuild needs of a circuit client
// (*circuit.Client).
type CircuitClient interface {
	Build(ctx context.Context, hops []circuit.Hop) (*circuit.Circuit, error)
}

var _ CircuitClient = (*circuit.Client)(nil)

// Hops are the circuit hops of a path of descriptors, first hop first.
func Hops(path []*Descriptor) []circuit.Hop {
	hops := make([]circuit.Hop, len(path))
	for i, d := range path {
		hops[i] = circuit.Hop{ID: d.PeerID, Addrs: d.Addrs, OnionKey: d.OnionKey.Key}
	}
	return hops
}

// CircuitBuild adapts c to a BuildFunc: the path becomes the circuit's
// hops, and a circuit.BuildError becomes a HopError, so that the Builder
// blames that hop, unless notHops (if not nil) says the error is no
// hop's doing (a client out of admission tokens): it becomes a LocalError,
// which blames no relay.
func CircuitBuild(c CircuitClient, notHops func(error) bool) BuildFunc[*circuit.Circuit] {
	return func(ctx context.Context, path []*Descriptor) (*circuit.Circuit, error) {
		ci, err := c.Build(ctx, Hops(path))
		if err == nil {
			return ci, nil
		}
		if notHops != nil && notHops(err) {
			return nil, &LocalError{Err: err}
		}
		if be, ok := errors.AsType[*circuit.BuildError](err); ok {
			return nil, &HopError{Hop: be.Hop, Err: err}
		}
		return nil, err
	}
}

// CircuitFailed is a circuit client's OnFailure
// (circuit.ClientOptions): a built circuit through hops that failed the
// way a tampering relay makes one fail (circuit.PathBiasFailure) counts
// against its guard (ReportCircuitFailure); other failures do not.
func (d *Discovery) CircuitFailed(hops []circuit.Hop, err error) {
	if !circuit.PathBiasFailure(err) {
		return
	}
	path := make([]*Descriptor, len(hops))
	for i, h := range hops {
		if desc, ok := d.Descriptor(h.ID); ok {
			path[i] = desc
		} else {
			path[i] = &Descriptor{PeerID: h.ID}
		}
	}
	d.ReportCircuitFailure(path)
}
