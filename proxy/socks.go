package proxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// The SOCKS front end is pikcio's own SOCKS5 server (RFC 1928, RFC 1929), so
// that the reply to a request is written where its outcome is known:
//
//   - no name is ever resolved on the client: a name in a CONNECT goes to the
//     exit as it was sent;
//   - any username and password are accepted and become the isolation key
//     (Tor's IsolateSOCKSAuth); username/password is chosen whenever a client
//     offers it (curl offers "no auth" first even with credentials);
//   - Tor's extensions RESOLVE (0xF0) and RESOLVE_PTR (0xF1) are answered by
//     the exit through a circuit when the Dialer is also a [Resolver];
//   - an HTTP CONNECT request on the SOCKS port opens a tunnel as on the HTTP
//     port (as arti does), after the same checks; any other HTTP request gets
//     a short "this is a SOCKS port" answer; SOCKS4 and anything else are
//     closed.
//
// Everything the server reads before the tunnel starts is read through one
// bufio.Reader, and what it buffered beyond the request (a client may send
// its first bytes right behind the request) goes into the tunnel first.
type socksServer struct {
	dialer Dialer
	opts   ServerOptions
	log    *logrus.Entry
	ctx    context.Context // canceled by Close
	tr     *tracker
	http   *httpProxy // for CONNECT requests on the SOCKS port
}

func newSOCKSServer(ctx context.Context, d Dialer, opts ServerOptions, tr *tracker, h *httpProxy) *socksServer {
	return &socksServer{
		dialer: d,
		opts:   opts,
		log:    logrus.WithField("component", "proxy.socks"),
		ctx:    ctx,
		tr:     tr,
		http:   h,
	}
}

func (s *socksServer) serve(l net.Listener) error {
	return acceptLoop(l, func(c net.Conn) {
		tc, ok := s.tr.wrap(c)
		if !ok {
			return
		}
		if !s.tr.start() {
			_ = tc.Close()
			return
		}
		go func() {
			defer s.tr.done()
			s.handle(tc)
		}()
	})
}

const notSOCKSBody = "This is a SOCKS5 proxy port, not an HTTP proxy.\n" +
	"Configure your application to use it as a SOCKS5 proxy, or use pikcio's HTTP proxy port.\n"

var notSOCKSResponse = "HTTP/1.0 501 This is a SOCKS port, not an HTTP proxy\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Content-Length: " + strconv.Itoa(len(notSOCKSBody)) + "\r\n" +
	"Connection: close\r\n\r\n" + notSOCKSBody

func (s *socksServer) handle(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		s.log.WithError(err).Debug("read greeting")
		return
	}
	switch {
	case first[0] == 5:
		s.serveSOCKS5(c, br)
	case first[0] == 4:
		s.log.Debug("SOCKS4 request refused")
		linger(c)
	case isHTTPMethodStart(first[0]):
		s.serveHTTP(c, br)
	default:
		s.log.Debug("not a SOCKS client")
	}
}

// isHTTPMethodStart reports whether b starts an HTTP method: GET POST PUT
// PATCH CONNECT HEAD OPTIONS DELETE TRACE.
func isHTTPMethodStart(b byte) bool {
	return bytes.IndexByte([]byte("GPCHODT"), b) >= 0
}

// serveHTTP answers an HTTP request on the SOCKS port: CONNECT opens a
// tunnel, anything else is told this is not an HTTP proxy. A CONNECT must
// not carry an Origin header, and its Host header, if any, must name the
// request target: a web page could otherwise make a browser use the port.
func (s *socksServer) serveHTTP(c net.Conn, br *bufio.Reader) {
	tp := textproto.NewReader(br)
	line, err := tp.ReadLine()
	method, rest, _ := strings.Cut(line, " ")
	target, proto, _ := strings.Cut(rest, " ")
	var hdr textproto.MIMEHeader
	if err == nil {
		hdr, err = tp.ReadMIMEHeader()
	}
	if err != nil || method != http.MethodConnect || !strings.HasPrefix(proto, "HTTP/1.") {
		s.log.Debug("HTTP request on the SOCKS port")
		_, _ = io.WriteString(c, notSOCKSResponse)
		linger(c)
		return
	}
	if hosts := hdr.Values("Host"); hdr.Get("Origin") != "" || len(hosts) > 1 ||
		len(hosts) == 1 && !strings.EqualFold(hosts[0], target) {
		refuseConnect(c, "CONNECT on the SOCKS port with an Origin or a foreign Host refused")
		linger(c)
		return
	}
	s.http.serveConnect(&prefixConn{Conn: c, r: br}, listenerSOCKS, target, hdr.Get("Proxy-Authorization"))
}

func (s *socksServer) serveSOCKS5(c net.Conn, br *bufio.Reader) {
	cred, err := negotiate(c, br)
	if err != nil {
		s.log.WithError(err).Debug("SOCKS5 negotiation")
		return
	}
	req, err := readRequest(br)
	if err != nil {
		s.log.WithError(err).Debug("SOCKS5 request")
		var re *requestError
		if errors.As(err, &re) {
			_, _ = c.Write(reply(re.code, nil))
			linger(c)
		}
		return
	}
	_ = c.SetDeadline(time.Time{})
	key := isolationKey(listenerSOCKS, cred)
	switch req.cmd {
	case socksCmdConnect:
		s.connect(c, br, key, req)
	case socksCmdResolve, socksCmdResolvePTR:
		s.resolve(c, key, req)
	}
}

func (s *socksServer) connect(c net.Conn, br *bufio.Reader, key string, req socksRequest) {
	host, port, err := splitDest(net.JoinHostPort(req.host, strconv.Itoa(int(req.port))))
	if err != nil {
		_, _ = c.Write(reply(socksReply(err), nil))
		linger(c)
		return
	}
	stream, err := s.dial(s.ctx, key, host, port)
	if err != nil {
		s.log.WithError(err).Debug("dial failed")
		_, _ = c.Write(reply(socksReply(err), nil))
		linger(c)
		return
	}
	defer stream.Close()
	// The reply's bound address is 0.0.0.0:0, as Tor's: nothing about the
	// client's side or the exit leaks into it.
	if _, err := c.Write(reply(0, nil)); err != nil {
		return
	}
	relay(&prefixConn{Conn: c, r: br}, stream)
}

// dial runs the dial on its own short-lived goroutine: the dial path is
// deep, and the connection's goroutine then parks for the whole life of the
// tunnel. The GC only shrinks a parked goroutine's stack while it uses under
// a quarter of it, so dialing here would cost every idle tunnel several KiB.
func (s *socksServer) dial(ctx context.Context, key, host string, port uint16) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	ctx = earlyContext(ctx, s.opts.SOCKSEarlySuccess)
	go func() {
		conn, err := s.dialer.Dial(ctx, key, host, port)
		ch <- result{conn, err}
	}()
	r := <-ch
	if r.err != nil {
		return nil, r.err
	}
	t := &trackedStream{Conn: r.conn, t: s.tr}
	if !s.tr.add(t) {
		return nil, ErrClosed
	}
	return t, nil
}

// resolve answers RESOLVE and RESOLVE_PTR through the exit, and closes.
func (s *socksServer) resolve(c net.Conn, key string, req socksRequest) {
	res, ok := s.dialer.(Resolver)
	if !ok {
		_, _ = c.Write(reply(socksCmdNotSupported, nil))
		linger(c)
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, DefaultConnectTimeout)
	defer cancel()
	var answer []byte
	if req.cmd == socksCmdResolve {
		addrs, err := res.Resolve(ctx, key, req.host)
		if err == nil && len(addrs) == 0 {
			err = errNoAnswer
		}
		if err != nil {
			s.log.WithError(err).Debug("RESOLVE failed")
			_, _ = c.Write(reply(socksReply(err), nil))
			linger(c)
			return
		}
		answer = addrAnswer(addrs[0])
	} else {
		ip, err := netip.ParseAddr(req.host)
		var name string
		if err == nil {
			name, err = res.ResolvePTR(ctx, key, ip)
		}
		if err == nil && (name == "" || len(name) > 255) {
			err = errNoAnswer
		}
		if err != nil {
			s.log.WithError(err).Debug("RESOLVE_PTR failed")
			_, _ = c.Write(reply(socksReply(err), nil))
			linger(c)
			return
		}
		answer = append([]byte{socksAtypName, byte(len(name))}, name...)
	}
	_, _ = c.Write(reply(0, answer))
	linger(c)
}

// prefixConn is a client connection whose first bytes are in r, the reader
// the handshake used.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p)
		}
		c.r = nil
	}
	return c.Conn.Read(p)
}

func (c *prefixConn) CloseWrite() error { closeWrite(c.Conn); return nil }

// debugWriter turns a library's log lines into debug logs: they may name
// destinations.
type debugWriter struct{ log *logrus.Entry }

func (w debugWriter) Write(p []byte) (int, error) {
	if w.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		w.log.Debug(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}
