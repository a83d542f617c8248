package testutil

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// SOCKSError is a SOCKS5 reply other than success.
type SOCKSError struct{ Code byte }

func (e *SOCKSError) Error() string { return fmt.Sprintf("SOCKS5 reply %d", e.Code) }

// IsSOCKSCode reports whether err is a SOCKS5 reply with code.
func IsSOCKSCode(err error, code byte) bool {
	se, ok := errors.AsType[*SOCKSError](err)
	return ok && se.Code == code
}

// SOCKSDial connects to addr ("host:port") through the SOCKS5 proxy at
// proxyAddr without authentication, giving the host as a name (as
// socks5h does). A refusal is a *SOCKSError; ctx's deadline bounds the
// handshake.
func SOCKSDial(ctx context.Context, proxyAddr, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", proxyAddr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	fail := func(err error) (net.Conn, error) { c.Close(); return nil, err }
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		return fail(err)
	}
	var b [2]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return fail(err)
	}
	if b != [2]byte{5, 0} {
		return fail(fmt.Errorf("SOCKS5 method reply %v", b))
	}
	req := []byte{5, 1, 0, 3, byte(len(host))}
	req = append(req, host...)
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := c.Write(req); err != nil {
		return fail(err)
	}
	var head [4]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return fail(err)
	}
	if head[1] != 0 {
		return fail(&SOCKSError{Code: head[1]})
	}
	var skip int
	switch head[3] {
	case 1:
		skip = 4 + 2
	case 4:
		skip = 16 + 2
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return fail(err)
		}
		skip = int(l[0]) + 2
	default:
		return fail(fmt.Errorf("SOCKS5 address type %d", head[3]))
	}
	if _, err := io.CopyN(io.Discard, c, int64(skip)); err != nil {
		return fail(err)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// SOCKSClient is an HTTP client whose connections go through the SOCKS5
// proxy at proxyAddr (SOCKSDial), one connection per request, each
// request bounded to 60 s.
func SOCKSClient(proxyAddr string) *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			Proxy:             nil,
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return SOCKSDial(ctx, proxyAddr, addr)
			},
		},
	}
}
