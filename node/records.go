package node

import (
	"context"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/circuit"
	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

// Private trust traffic (issue 13): a client's trust records go through
// record circuits (circuit.RecordClient) whose last hop, drawn as a
// middle, is never the guard; relays serve the trust namespace only, from
// their own DHT, and publish their own records directly.

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

// serveRecords makes an enrolled relay serve the trust records of
// circuits that end at it from its DHT.
func (n *Node) serveRecords(r *circuit.Relay) {
	if n.tis == nil {
		return
	}
	r.ServeRecords(circuit.RecordServeOptions{Store: n.disc, Namespaces: []string{trust.Namespace}})
}
