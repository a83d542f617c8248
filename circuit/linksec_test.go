package circuit

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/sec"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// rawCounter counts every write to the connection below TLS: each is a
// system call on a real link.
type rawCounter struct {
	net.Conn
	mu     sync.Mutex
	writes int
}

func (c *rawCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *rawCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// securedPair runs a TLS handshake of tr over a pipe and returns the
// client's end (whose raw writes are counted) and the server's.
func securedPair(t *testing.T, newTr func(crypto.PrivKey) (sec.SecureTransport, error)) (sec.SecureConn, sec.SecureConn, *rawCounter) {
	t.Helper()
	keys := make([]crypto.PrivKey, 2)
	trs := make([]sec.SecureTransport, 2)
	for i := range keys {
		var err error
		if keys[i], _, err = crypto.GenerateEd25519Key(nil); err != nil {
			t.Fatal(err)
		}
		if trs[i], err = newTr(keys[i]); err != nil {
			t.Fatal(err)
		}
	}
	serverID, err := peer.IDFromPrivateKey(keys[1])
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	deadline := time.Now().Add(10 * time.Second)
	_ = a.SetDeadline(deadline)
	_ = b.SetDeadline(deadline)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw := &rawCounter{Conn: a}
	type result struct {
		c   sec.SecureConn
		err error
	}
	srv := make(chan result, 1)
	go func() {
		c, err := trs[1].SecureInbound(ctx, b, "")
		srv <- result{c, err}
	}()
	client, err := trs[0].SecureOutbound(ctx, raw, serverID)
	if err != nil {
		t.Fatal(err)
	}
	r := <-srv
	if r.err != nil {
		t.Fatal(r.err)
	}
	// The pipe first: a TLS Close would wait for its close_notify to be read.
	t.Cleanup(func() { _ = a.Close(); _ = b.Close(); _ = client.Close(); _ = r.c.Close() })
	return client, r.c, raw
}

func newTLS(k crypto.PrivKey) (sec.SecureTransport, error) {
	return libp2ptls.New(libp2ptls.ID, k, nil)
}

func newCorked(k crypto.PrivKey) (sec.SecureTransport, error) {
	return newCorkedTLS(libp2ptls.ID, k, nil)
}

// TestCorkedTLSOneWrite: a link Write leaves as one write to the connection
// below, however many TLS records it takes (a batch of cells is four; each
// was a system call of its own, a fifth of a loopback download's CPU), and
// arrives intact. libp2p's own TLS transport is the control.
func TestCorkedTLSOneWrite(t *testing.T) {
	batch := batchCells*CellSize + yamuxHeaderLen
	tests := []struct {
		name   string
		tr     func(crypto.PrivKey) (sec.SecureTransport, error)
		size   int
		writes int // 0: more than one
	}{
		{"a yamux header", newCorked, yamuxHeaderLen, 1},
		{"a batch of cells", newCorked, batch, 1},
		{"four batches", newCorked, 4 * batch, 1},
		{"beyond what a cork holds", newCorked, 2 * corkMax, 0},
		{"libp2p's TLS, a batch of cells", newTLS, batch, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server, raw := securedPair(t, tt.tr)
			data := randBytes(t, tt.size)
			got := make(chan []byte, 1)
			go func() {
				b := make([]byte, len(data))
				_, _ = io.ReadFull(server, b)
				got <- b
			}()
			before := raw.count()
			if _, err := client.Write(data); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(<-got, data) {
				t.Fatal("data changed on the way")
			}
			n := raw.count() - before
			switch {
			case tt.writes == 0 && n < 2:
				t.Errorf("%d bytes took %d write, want several", tt.size, n)
			case tt.writes > 0 && n != tt.writes:
				t.Errorf("%d bytes took %d writes, want %d", tt.size, n, tt.writes)
			}
		})
	}
}

// TestCorkedTLSConcurrent: Writes from several goroutines, and the reader's
// own writes (close_notify at Close), keep their order on the wire: every
// message arrives whole and each writer's in sequence (a record out of
// order would fail TLS's authentication).
func TestCorkedTLSConcurrent(t *testing.T) {
	const writers, msgs, size = 4, 50, 9000 // a message spans records
	client, server, _ := securedPair(t, newCorked)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := make([]byte, size)
			for i := 0; i < msgs; i++ {
				binary.BigEndian.PutUint16(m, uint16(w))
				binary.BigEndian.PutUint16(m[2:], uint16(i))
				for j := 4; j < size; j++ {
					m[j] = byte(w*msgs + i)
				}
				if _, err := client.Write(m); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	next := make([]int, writers)
	m := make([]byte, size)
	for k := 0; k < writers*msgs; k++ {
		if _, err := io.ReadFull(server, m); err != nil {
			t.Fatalf("message %d: %v", k, err)
		}
		w, i := int(binary.BigEndian.Uint16(m)), int(binary.BigEndian.Uint16(m[2:]))
		if w >= writers || i != next[w] {
			t.Fatalf("message %d is writer %d's %d, want its %d", k, w, i, next[min(w, writers-1)])
		}
		next[w]++
		if want := bytes.Repeat([]byte{byte(w*msgs + i)}, size-4); !bytes.Equal(m[4:], want) {
			t.Fatalf("message %d of writer %d garbled", i, w)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Close sends close_notify through the same cork; the peer sees EOF.
	done := make(chan error, 1)
	go func() {
		_, err := server.Read(m)
		done <- err
	}()
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != io.EOF {
		t.Fatalf("read after close: %v, want EOF", err)
	}
}

// TestLinksUseTLS: hosts built with LinkOptions, which name the security
// transports themselves now, still secure their links with TLS first.
func TestLinksUseTLS(t *testing.T) {
	a := linkHost(t, "/ip4/127.0.0.1/tcp/0")
	b := linkHost(t, "/ip4/127.0.0.1/tcp/0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	conns := a.Network().ConnsToPeer(b.ID())
	if len(conns) == 0 {
		t.Fatal("no connection")
	}
	if got := conns[0].ConnState().Security; got != libp2ptls.ID {
		t.Fatalf("link security %q, want %q", got, libp2ptls.ID)
	}
}
