package proxy

import (
	"context"
	"net"
)

// Circuit is a built onion circuit as the pool sees it.
type Circuit interface {
	// OpenStream asks the exit to connect to host:port (host is a DNS name or
	// an IP literal; names are resolved at the exit, never here). The conn
	// implements CloseWrite() error and its LocalAddr() is a *net.TCPAddr.
	OpenStream(ctx context.Context, host string, port uint16) (net.Conn, error)
	Close() error          // tear the circuit down; idempotent
	Done() <-chan struct{} // closed when the circuit is dead (closed, destroyed, link lost)
}

// BuildFunc builds a fresh circuit (path selection is the caller's business).
type BuildFunc func(ctx context.Context) (Circuit, error)

// Dialer opens a stream to host:port on a circuit of the isolation group
// named by isolationKey ("" is the default group). Both front ends dial
// through one Dialer; *Pool is the implementation.
type Dialer interface {
	Dial(ctx context.Context, isolationKey, host string, port uint16) (net.Conn, error)
}
