package proxy

import (
	"context"
	"io"
	"net"

	"github.com/pikcio/pikcio/internal/earlydata"
)

// Optimistic data (issue 16): a stream opened with earlydata is returned as
// soon as its BEGIN has left, and the client's first bytes follow at once.
// The HTTP proxy does this for every plain request (it writes the request
// itself right after the dial, and a failed connect comes back as the
// response's error, which it answers with the precise status). The SOCKS
// front end does it with ServerOptions.SOCKSEarlySuccess: it then replies
// success before the exit has connected (an early success), and a connect
// that fails after all resets the client's connection, so the application
// sees an error rather than a clean close.

// earlyContext marks ctx for optimistic data when on.
func earlyContext(ctx context.Context, on bool) context.Context {
	if !on {
		return ctx
	}
	return earlydata.With(ctx)
}

// resetClient resets the client's connection (a TCP RST), so that a
// failure after an early success reaches the application as an error
// (ECONNRESET), not as the end of a normal reply. It closes the connection
// at once: a FIN sent first would read as that normal end.
func resetClient(w io.Writer) {
	for {
		switch c := w.(type) {
		case *net.TCPConn:
			_ = c.SetLinger(0)
			_ = c.Close()
			return
		case *prefixConn:
			w = c.Conn
		case *trackedConn:
			w = c.Conn
		default:
			return
		}
	}
}
