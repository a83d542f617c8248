package node

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/service"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

// Private record traffic (issue 13): a client's trust records, and its
// services' descriptors and the descriptors it fetches to reach others'
// services, go through record circuits (circuit.RecordClient) whose last
// hop, drawn as a middle, is never the guard, so that no DHT server near
// a key sees which peer publishes or asks for it. Services use record
// circuits of their own, apart from the trust records', so that the last
// hop of one cannot tie a person's bundle to a service. Relays serve the
// trust and service namespaces only, from their own DHT, and publish
// their own records directly.

var _ tis.RecordStore = (*circuit.RecordClient)(nil)

// newTrustRecords is the client's store of trust records through
// circuits, nil for a node that keeps them in its DHT directly (a relay
// without a client, or a node without a TIS).
func (n *Node) newTrustRecords() *circuit.RecordClient {
	if !n.client || n.tis == nil {
		return nil
	}
	return circuit.NewRecordClient(n.buildRecordCircuit, circuit.RecordClientOptions{})
}

// trustStore is where the trust agent keeps its records.
func (n *Node) trustStore() tis.RecordStore {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.records != nil {
		return n.records
	}
	return n.disc
}

// buildRecordCircuit is the record client's circuit.RecordBuilder: a
// 3-hop circuit whose last hop, drawn as a middle, is not the guard and
// not in avoid while another can serve.
func (n *Node) buildRecordCircuit(ctx context.Context, avoid []peer.ID) (*circuit.Circuit, peer.ID, error) {
	req := discovery.PathRequest{Hops: circuit.DefaultHops, Internal: true, AvoidExits: avoid}
	if err := n.keeper.WaitPath(ctx, req); err != nil {
		return nil, "", err
	}
	n.mu.Lock()
	b := n.builder
	n.mu.Unlock()
	if b == nil {
		return nil, "", ErrClosed
	}
	c, path, err := b.Build(ctx, req)
	if err != nil {
		return nil, "", err
	}
	return c, path[len(path)-1].PeerID, nil
}

// serveRecords makes a relay serve, from its DHT, the service
// descriptors of circuits that end at it, and if it is enrolled their
// trust records.
func (n *Node) serveRecords(r *circuit.Relay) {
	ns := []string{service.Namespace}
	if n.tis != nil {
		ns = append(ns, trust.Namespace)
	}
	r.ServeRecords(circuit.RecordServeOptions{Store: n.disc, Namespaces: ns})
}
