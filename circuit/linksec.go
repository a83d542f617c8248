package circuit

import (
	"context"
	"fmt"
	"net"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// Link security: libp2p's TLS 1.3, unchanged, with every Write's records
// sent in one system call.
//
// crypto/tls writes each record of at most 16 KiB with its own write to the
// connection, so a batch of cells (one 60 KiB yamux frame) cost four write
// system calls, and on loopback each one also runs the receiver's TCP
// input; those took a fifth of the CPU of a loopback download through three
// hops. Here the TCP connection under TLS is corked while a Write turns into
// records and uncorked after, so the records leave in one write (and arrive
// in one TCP segment). What goes on the wire is the same bytes; TLS's
// record sizes, keys and checks are untouched. Noise, the second choice,
// already sends a 64 KiB message per write (see "Links" in doc.go for why
// TLS stays first).

// corkMax bounds what a corked connection holds before it writes anyway.
const corkMax = 256 << 10

var corkPool = sync.Pool{New: func() any { b := make([]byte, 0, 80<<10); return &b }}

// corkConn is the raw connection under a link's TLS: writes made while it
// is corked collect in a buffer, and uncork sends them in one write.
type corkConn struct {
	net.Conn

	mu     sync.Mutex // corked, buf
	corked bool
	buf    *[]byte
	wmu    sync.Mutex // held across writes to Conn, taken with mu held: keeps them in order
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// Write buffers p while corked; otherwise (a handshake, an alert) it goes
// out at once, after whatever an earlier uncork is still sending.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.corked && len(p) <= corkMax {
		if c.buf == nil {
			c.buf = corkPool.Get().(*[]byte)
		}
		if len(*c.buf)+len(p) <= corkMax {
			*c.buf = append(*c.buf, p...)
			c.mu.Unlock()
			return len(p), nil
		}
	}
	b := c.take()
	c.wmu.Lock()
	c.mu.Unlock()
	defer c.wmu.Unlock()
	if err := c.send(b); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// uncork sends what was buffered, in one write.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	c.corked = false
	b := c.take()
	c.wmu.Lock()
	c.mu.Unlock()
	defer c.wmu.Unlock()
	return c.send(b)
}

// take removes the buffer. Called with mu held.
func (c *corkConn) take() *[]byte {
	b := c.buf
	c.buf = nil
	return b
}

// send writes b and returns it to the pool. Called with wmu held.
func (c *corkConn) send(b *[]byte) error {
	if b == nil {
		return nil
	}
	var err error
	if len(*b) > 0 {
		_, err = c.Conn.Write(*b)
	}
	*b = (*b)[:0]
	corkPool.Put(b)
	return err
}

// corkedConn is a secured link whose Writes leave in one write each.
type corkedConn struct {
	sec.SecureConn
	raw *corkConn
}

func (c *corkedConn) Write(p []byte) (int, error) {
	c.raw.cork()
	n, err := c.SecureConn.Write(p)
	if uerr := c.raw.uncork(); err == nil && uerr != nil {
		return 0, uerr
	}
	return n, err
}

// corkedTLS is libp2p's TLS security transport over corkConns.
type corkedTLS struct{ *libp2ptls.Transport }

var _ sec.SecureTransport = corkedTLS{}

// newCorkedTLS has libp2ptls.New's signature, for libp2p.Security.
func newCorkedTLS(id protocol.ID, key crypto.PrivKey, muxers []tptu.StreamMuxer) (corkedTLS, error) {
	t, err := libp2ptls.New(id, key, muxers)
	if err != nil {
		return corkedTLS{}, fmt.Errorf("tls transport: %w", err)
	}
	return corkedTLS{t}, nil
}

func (t corkedTLS) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	return corked(insecure, func(raw net.Conn) (sec.SecureConn, error) { return t.Transport.SecureInbound(ctx, raw, p) })
}

func (t corkedTLS) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	return corked(insecure, func(raw net.Conn) (sec.SecureConn, error) { return t.Transport.SecureOutbound(ctx, raw, p) })
}

// corked secures insecure through a corkConn with secure.
func corked(insecure net.Conn, secure func(net.Conn) (sec.SecureConn, error)) (sec.SecureConn, error) {
	raw := &corkConn{Conn: insecure}
	sc, err := secure(raw)
	if err != nil {
		return nil, err
	}
	return &corkedConn{SecureConn: sc, raw: raw}, nil
}
