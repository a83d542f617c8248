package node_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/node"
)

// sourceServer sends zeros to every connection until it closes.
func sourceServer(t testing.TB) string {
	t.Helper()
	addr, _ := testutil.Serve(t, func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	return addr.String()
}

// TestRelayDiesMidStream: the middle relay of a circuit whose exit is
// sending more than the client reads dies; the client's stream ends, and
// every other node still closes promptly.
func TestRelayDiesMidStream(t *testing.T) {
	n := startNet(t, 3, 1, nil)
	src := sourceServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := testutil.SOCKSDial(ctx, n.Client.SOCKSAddr().String(), src)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	// The middle relay of the circuit that carries the stream.
	var middle *node.Node
	for _, ci := range n.Client.Status().Client.Circuits {
		if ci.Streams == 0 {
			continue
		}
		for _, r := range n.Relays {
			if node.ShortID(r.ID()) == ci.Hops[1].ID {
				middle = r
			}
		}
	}
	if middle == nil {
		t.Fatal("middle relay not found")
	}
	if err := middle.Close(); err != nil {
		t.Logf("middle close: %v", err)
	}
	// The stream ends: the client learns that its circuit broke.
	_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("stream still open 15s after its middle relay died")
		}
	}
	for i, r := range append([]*node.Node{n.Client}, n.Relays...) {
		start := time.Now()
		done := make(chan struct{})
		go func() { _ = r.Close(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("node %d still closing after 10s", i)
		}
		t.Logf("node %d closed in %v", i, time.Since(start))
	}
}
