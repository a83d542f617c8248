package node_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/node/localnet"
	"github.com/pikcio/pikcio/trust"
)

// dhtRequest is what a DHT server was asked, and by whom.
type dhtRequest struct {
	from peer.ID
	typ  dhtpb.Message_MessageType
	key  string
}

// recordingDHT is a DHT server on a real libp2p host that speaks pikcio's
// DHT protocol just enough to be in every routing table (FIND_NODE and
// PING answered with itself), stores what it is given (PUT_VALUE) and
// answers GET_VALUE from that, and writes down which peer asked what: an
// attacker's DHT server near chosen keys.
type recordingDHT struct {
	h host.Host

	mu   sync.Mutex
	seen []dhtRequest
	recs map[string]*recpb.Record
}

func newRecordingDHT(t *testing.T) *recordingDHT {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	d := &recordingDHT{h: h, recs: map[string]*recpb.Record{}}
	h.SetStreamHandler(protocol.ID(discovery.ProtocolPrefix+"/kad/1.0.0"), d.serve)
	return d
}

func (d *recordingDHT) serve(s network.Stream) {
	defer s.Close()
	r := bufio.NewReader(s)
	for {
		_ = s.SetDeadline(time.Now().Add(30 * time.Second))
		n, err := binary.ReadUvarint(r)
		if err != nil || n > network.MessageSizeMax {
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		var m dhtpb.Message
		if err := proto.Unmarshal(buf, &m); err != nil {
			return
		}
		resp := d.answer(s.Conn().RemotePeer(), &m)
		if resp == nil {
			continue
		}
		out, err := proto.Marshal(resp)
		if err != nil {
			return
		}
		if _, err := s.Write(append(binary.AppendUvarint(nil, uint64(len(out))), out...)); err != nil {
			return
		}
	}
}

func (d *recordingDHT) answer(from peer.ID, m *dhtpb.Message) *dhtpb.Message {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.seen = append(d.seen, dhtRequest{from: from, typ: m.GetType(), key: string(m.GetKey())})
	resp := &dhtpb.Message{Type: m.GetType(), Key: m.GetKey()}
	switch m.GetType() {
	case dhtpb.Message_ADD_PROVIDER:
		return nil // answered by nothing, as kad-dht does
	case dhtpb.Message_PUT_VALUE:
		if rec := m.GetRecord(); rec != nil {
			d.recs[string(rec.GetKey())] = rec
		}
		return m
	case dhtpb.Message_GET_VALUE:
		resp.Record = d.recs[string(m.GetKey())]
	case dhtpb.Message_FIND_NODE:
		resp.CloserPeers = dhtpb.RawPeerInfosToPBPeers([]peer.AddrInfo{{ID: d.h.ID(), Addrs: d.h.Addrs()}})
	}
	return resp
}

// requests returns what was asked of keys under prefix.
func (d *recordingDHT) requests(prefix string) []dhtRequest {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []dhtRequest
	for _, r := range d.seen {
		if strings.HasPrefix(r.key, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func (d *recordingDHT) connect(t *testing.T, nodes ...*node.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, n := range nodes {
		if err := d.h.Connect(ctx, peer.AddrInfo{ID: n.ID(), Addrs: n.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTrustTrafficThroughCircuits plays a DHT server that stores the
// client's bundle and one near its contact's key: every trust record the
// client puts or gets reaches it from a relay, never from the client's
// peer ID, although the server is in the client's routing table (before
// issue 13 the client put and fetched them itself). The client still
// computes the scores from what it crawled through circuits.
func TestTrustTrafficThroughCircuits(t *testing.T) {
	refresh := []discovery.Option{discovery.RefreshInterval(time.Second), discovery.RepublishInterval(2 * time.Second)}
	net := localnet.StartTest(t, 4, func(o *localnet.Options) {
		o.Exits, o.Seeds = 2, 1
		o.Vouches = []localnet.Vouch{{From: 0, To: 1, Weight: 30}}
		o.TrustRefresh = time.Second
		o.ExtraClients = 1
		o.NodeOptions = func(_ int, opts *node.Options) { opts.Discovery = refresh }
	})
	obs := newRecordingDHT(t)
	obs.connect(t, append([]*node.Node{net.Client, net.Extra[0]}, net.Relays...)...)
	net.WaitReady(t)

	// The client's contact is the other user, whom no vouch leads to: the
	// client fetches that bundle only because it is a contact.
	root := net.TIS.PublicKey()
	own := enrollmentOf(t, net.Client.DataDir()).MatryoshkaCert
	contact := enrollmentOf(t, net.Extra[0].DataDir()).MatryoshkaCert
	book, err := trust.OpenContacts(net.Client.DataDir(), root)
	if err != nil {
		t.Fatal(err)
	}
	if err := book.Add("Other User", contact, time.Now()); err != nil {
		t.Fatal(err)
	}
	ownKey, contactKey := trust.BundleKey(own.ID), trust.BundleKey(contact.ID)
	relays := map[peer.ID]bool{}
	for _, r := range net.Relays {
		relays[r.ID()] = true
	}
	asked := func(key string, typ dhtpb.Message_MessageType) bool {
		for _, r := range obs.requests(key) {
			if r.typ == typ {
				return true
			}
		}
		return false
	}
	testutil.WaitFor(t, 60*time.Second, "the client's bundle put and its contact's fetched", func() bool {
		return asked(ownKey, dhtpb.Message_PUT_VALUE) && asked(contactKey, dhtpb.Message_GET_VALUE)
	})
	// The seed's, the one it vouches for, the client's own and the
	// contact's.
	testutil.WaitFor(t, 30*time.Second, "four bundles in the client's view", func() bool {
		return net.Client.TrustAgent().View().Bundles() >= 4
	})
	trustKeys := "/" + trust.Namespace + "/"
	all := obs.requests(trustKeys)
	for _, r := range all {
		switch {
		case r.from == net.Client.ID():
			t.Errorf("the DHT server saw the client's peer ID ask %v of %s", r.typ, r.key)
		case !relays[r.from]: // the other client's go through circuits too
			t.Errorf("the DHT server saw %s, not a relay, ask %v of %s", r.from.ShortString(), r.typ, r.key)
		case r.key == ownKey && r.typ == dhtpb.Message_GET_VALUE:
			// No one vouches for the client: only its own crawl could
			// fetch its bundle, and it never does (its view holds it).
			t.Errorf("the client's own bundle was fetched, by %s", r.from.ShortString())
		}
	}
	t.Logf("%d trust requests seen by the DHT server, none from the client", len(all))

	// The record circuits and the circuit identities' loop stop with the
	// nodes.
	_ = obs.h.Close()
	if err := net.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.CheckNoLeaks(t, testutil.Pikcio)
}
