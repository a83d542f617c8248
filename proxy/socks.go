package proxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"time"

	socks5 "github.com/armon/go-socks5"
	"github.com/sirupsen/logrus"
)

// The SOCKS front end runs github.com/armon/go-socks5 on each connection with
// a per-connection configuration, whose hooks are the connection itself:
//
//   - the resolver returns no address, so the library dials the name itself
//     and the name travels to the exit (no DNS on the client);
//   - the credential store accepts any username and password and keeps them
//     as the isolation key (like Tor's IsolateSOCKSAuth);
//   - the rule set marks the end of the handshake (the handshake deadline is
//     cleared) and hands the dial a context that Close cancels;
//   - the dial goes to the shared Dialer and records the precise reply code
//     of a failure; the library maps dial errors by matching their text, so
//     the connection rewrites the reply byte of the library's failure reply.
//
// Before the library sees a connection, the server reads the SOCKS5 method
// greeting itself: a client that speaks HTTP gets a short HTTP answer, SOCKS4
// and anything else are closed, and username/password is moved to the front
// of the offered methods (the library picks the first one it supports, and
// clients such as curl offer "no auth" first even when they have credentials).
type socksServer struct {
	dialer   Dialer
	opts     ServerOptions
	log      *logrus.Entry
	libLog   *log.Logger
	resolver socks5.NameResolver
	ctx      context.Context // canceled by Close
	tr       *tracker
}

func newSOCKSServer(ctx context.Context, d Dialer, opts ServerOptions, tr *tracker) *socksServer {
	l := logrus.WithField("component", "proxy.socks")
	return &socksServer{
		dialer:   d,
		opts:     opts,
		log:      l,
		libLog:   log.New(debugWriter{l}, "", 0),
		resolver: exitResolver{},
		ctx:      ctx,
		tr:       tr,
	}
}

// exitResolver leaves names unresolved: with a nil IP go-socks5 dials
// AddrSpec.Address(), which is then the name, and the name goes to the exit.
type exitResolver struct{}

func (exitResolver) Resolve(ctx context.Context, _ string) (context.Context, net.IP, error) {
	return ctx, nil, nil
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
	greeting, kind, err := readGreeting(c)
	if err != nil {
		s.log.WithError(err).Debug("read greeting")
		return
	}
	switch kind {
	case clientHTTP:
		s.log.Debug("HTTP request on the SOCKS port")
		_, _ = io.WriteString(c, notSOCKSResponse)
		linger(c)
		return
	case clientSOCKS4:
		s.log.Debug("SOCKS4 request refused")
		linger(c)
		return
	case clientUnknown:
		s.log.Debug("not a SOCKS client")
		return
	}
	sc := &socksConn{Conn: c, s: s, prefix: greeting}
	srv, err := socks5.New(&socks5.Config{
		AuthMethods: []socks5.Authenticator{
			socks5.NoAuthAuthenticator{},
			socks5.UserPassAuthenticator{Credentials: sc},
		},
		Resolver: s.resolver,
		Rules:    sc,
		Logger:   s.libLog,
		Dial:     sc.dial,
	})
	if err != nil {
		s.log.WithError(err).Error("socks5 server")
		return
	}
	_ = srv.ServeConn(sc) // errors are logged at debug by libLog
}

type clientKind int

const (
	clientUnknown clientKind = iota
	clientSOCKS5
	clientSOCKS4
	clientHTTP
)

// readGreeting reads exactly the SOCKS5 method greeting (VER NMETHODS
// METHODS) or, for other protocols, the first byte only, and classifies the
// client. For SOCKS5 it returns the greeting to replay, with
// username/password moved to the front of the methods if offered.
func readGreeting(r io.Reader) ([]byte, clientKind, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		return nil, clientUnknown, fmt.Errorf("read version: %w", err)
	}
	switch hdr[0] {
	case 5:
	case 4:
		return nil, clientSOCKS4, nil
	case 'G', 'P', 'C', 'H', 'O', 'D', 'T': // GET POST PUT PATCH CONNECT HEAD OPTIONS DELETE TRACE
		return nil, clientHTTP, nil
	default:
		return nil, clientUnknown, nil
	}
	if _, err := io.ReadFull(r, hdr[1:]); err != nil {
		return nil, clientUnknown, fmt.Errorf("read method count: %w", err)
	}
	g := make([]byte, 2+int(hdr[1]))
	copy(g, hdr[:])
	if _, err := io.ReadFull(r, g[2:]); err != nil {
		return nil, clientUnknown, fmt.Errorf("read methods: %w", err)
	}
	if i := bytes.IndexByte(g[2:], socks5.UserPassAuth); i > 0 {
		m := g[2:]
		copy(m[1:i+1], m[:i])
		m[0] = socks5.UserPassAuth
	}
	return g, clientSOCKS5, nil
}

// socksConn is a client connection as go-socks5 sees it, and the
// connection's hooks into the library.
type socksConn struct {
	net.Conn
	s      *socksServer
	prefix []byte // greeting to replay before reading from Conn
	key    string // isolation key
	code   byte   // reply code to put into the library's next failure reply
}

func (c *socksConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		if len(c.prefix) == 0 {
			c.prefix = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// Write sends b; the library's reply after a failed dial gets the reply code
// the dial recorded.
func (c *socksConn) Write(b []byte) (int, error) {
	if c.code != 0 && len(b) >= 2 && b[0] == 5 {
		r := bytes.Clone(b)
		r[1] = c.code
		c.code = 0
		return c.Conn.Write(r)
	}
	return c.Conn.Write(b)
}

// WriteTo relays the client's data after the handshake (go-socks5 copies
// from its bufio.Reader, whose WriteTo hands over to this).
func (c *socksConn) WriteTo(w io.Writer) (int64, error) {
	if !c.s.tr.start() {
		return 0, ErrClosed
	}
	defer c.s.tr.done()
	var n int64
	if len(c.prefix) > 0 {
		m, err := w.Write(c.prefix)
		n += int64(m)
		c.prefix = nil
		if err != nil {
			return n, err
		}
	}
	m, err := copyAdaptive(w, c.Conn)
	if err != nil {
		resetClient(c) // the stream failed, e.g. a refused connect after an early success
	}
	return n + m, err
}

func (c *socksConn) CloseWrite() error { closeWrite(c.Conn); return nil }

// Valid accepts any username and password and keeps them as the isolation
// key (socks5.CredentialStore).
func (c *socksConn) Valid(user, password string) bool {
	c.key = credentialKey(user, password)
	return true
}

// Allow permits every command: BIND and UDP ASSOCIATE then get "command not
// supported" from the library (socks5.RuleSet). The handshake is over here.
func (c *socksConn) Allow(_ context.Context, _ *socks5.Request) (context.Context, bool) {
	_ = c.Conn.SetDeadline(time.Time{})
	return c.s.ctx, true
}

func (c *socksConn) dial(ctx context.Context, _, addr string) (net.Conn, error) {
	host, port, err := splitDest(addr)
	if err != nil {
		c.code = socksReply(err)
		return nil, err
	}
	// The dial runs on its own short-lived goroutine: the dial path is deep,
	// and this goroutine then parks for the whole life of the tunnel. The GC
	// only shrinks a parked goroutine's stack while it uses under a quarter
	// of it, so dialing here would cost every idle tunnel several KiB.
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	ctx = earlyContext(ctx, !c.s.opts.SOCKSWaitConnected)
	go func() {
		conn, err := c.s.dialer.Dial(ctx, c.key, host, port)
		ch <- result{conn, err}
	}()
	r := <-ch
	conn, err := r.conn, r.err
	if err != nil {
		c.code = socksReply(err)
		c.s.log.WithError(err).Debug("dial failed")
		return nil, err
	}
	t := &trackedStream{Conn: conn, t: c.s.tr}
	if !c.s.tr.add(t) {
		c.code = socksGeneralFailure
		return nil, ErrClosed
	}
	return t, nil
}

// debugWriter turns a library's log lines into debug logs: they may name
// destinations.
type debugWriter struct{ log *logrus.Entry }

func (w debugWriter) Write(p []byte) (int, error) {
	if w.log.Logger.IsLevelEnabled(logrus.DebugLevel) {
		w.log.Debug(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}
