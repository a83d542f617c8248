package discovery

import (
	"bufio"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio"
	"github.com/libp2p/go-msgio/pbio"
	"google.golang.org/protobuf/proto"

	"github.com/pikcio/pikcio/internal/testutil"
)

// TestHostileDHTServerCannotCrash: a DHT server that answers PUT_VALUE
// without the record it stored (kad-dht v0.42 dereferences that record in
// a goroutine of its own, which took the whole process down) makes the
// put fail at that server, and the node carries on.
func TestHostileDHTServerCannotCrash(t *testing.T) {
	ctx := testContext(t, 30*time.Second)
	d, err := New(newHost(t), Server(), NoDiscovery(), Validator("test", acceptAll{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })

	evil := newHost(t)
	var puts atomic.Int32
	evil.SetStreamHandler(ProtocolPrefix+"/kad/1.0.0", func(s network.Stream) {
		defer s.Close()
		r := msgio.NewVarintReaderSize(s, network.MessageSizeMax)
		w := bufio.NewWriter(s)
		for {
			b, err := r.ReadMsg()
			if err != nil {
				return
			}
			req := new(pb.Message)
			if err := proto.Unmarshal(b, req); err != nil {
				return
			}
			// The same type, and nothing else: no closer peers, and no
			// record in the answer to PUT_VALUE.
			if req.GetType() == pb.Message_PUT_VALUE {
				puts.Add(1)
			}
			if err := pbio.NewDelimitedWriter(w).WriteMsg(&pb.Message{Type: req.GetType(), Key: req.GetKey()}); err != nil {
				return
			}
			if w.Flush() != nil {
				return
			}
		}
	})
	if err := d.host.Connect(ctx, peer.AddrInfo{ID: evil.ID(), Addrs: evil.Addrs()}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "the hostile server in the routing table", func() bool {
		return d.dht.RoutingTable().Find(evil.ID()) != ""
	})

	// The put is stored locally and sent to the one DHT server there is.
	_ = d.PutRecord(ctx, "/test/key", []byte("value"))
	if puts.Load() == 0 {
		t.Fatal("the hostile server got no PUT_VALUE: the test did not reach the answer it sends")
	}
	if got, err := d.GetRecord(ctx, "/test/key"); err != nil || string(got) != "value" {
		t.Fatalf("after the hostile answer: get = %q, %v", got, err)
	}
}

func TestCheckDHTAnswer(t *testing.T) {
	rec := &recpb.Record{Key: []byte("k"), Value: []byte("v")}
	tests := []struct {
		name      string
		req, resp *pb.Message
		ok        bool
	}{
		{"put with record", &pb.Message{Type: pb.Message_PUT_VALUE, Record: rec}, &pb.Message{Type: pb.Message_PUT_VALUE, Record: rec}, true},
		{"put without record", &pb.Message{Type: pb.Message_PUT_VALUE, Record: rec}, &pb.Message{Type: pb.Message_PUT_VALUE}, false},
		{"put answered as find node", &pb.Message{Type: pb.Message_PUT_VALUE, Record: rec}, &pb.Message{Type: pb.Message_FIND_NODE, Record: rec}, false},
		{"get without record", &pb.Message{Type: pb.Message_GET_VALUE}, &pb.Message{Type: pb.Message_GET_VALUE}, true},
		{"find node", &pb.Message{Type: pb.Message_FIND_NODE}, &pb.Message{Type: pb.Message_FIND_NODE}, true},
		{"get answered as providers", &pb.Message{Type: pb.Message_GET_VALUE}, &pb.Message{Type: pb.Message_GET_PROVIDERS}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDHTAnswer(tt.req, tt.resp)
			if (err == nil) != tt.ok {
				t.Fatalf("checkDHTAnswer = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, errBadDHTAnswer) {
				t.Fatalf("error %v does not wrap errBadDHTAnswer", err)
			}
		})
	}
}
