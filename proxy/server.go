package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/sirupsen/logrus"
)

// Server runs the SOCKS5 and HTTP proxy front ends over one Dialer.
type Server struct {
	log    *logrus.Entry
	ctx    context.Context // canceled by Close: aborts dials in progress
	cancel context.CancelFunc
	tr     *tracker
	socks  *socksServer
	http   *httpProxy

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
}

// NewServer returns a server whose front ends dial through d.
func NewServer(d Dialer, opts ServerOptions) *Server {
	opts = opts.withDefaults()
	d = routePikcio(d, opts.Services)
	ctx, cancel := context.WithCancel(context.Background())
	tr := newTracker()
	h := newHTTPProxy(ctx, d, opts, tr)
	return &Server{
		log:       logrus.WithField("component", "proxy"),
		ctx:       ctx,
		cancel:    cancel,
		tr:        tr,
		socks:     newSOCKSServer(ctx, d, opts, tr, h),
		http:      h,
		listeners: make(map[net.Listener]struct{}),
	}
}

// ListenSOCKS listens on addr (DefaultSOCKSAddr if empty; an empty host means
// 127.0.0.1) and serves SOCKS5 there until Close. It returns the bound
// address.
func (s *Server) ListenSOCKS(addr string) (net.Addr, error) {
	return s.listen(addr, DefaultSOCKSAddr, s.ServeSOCKS)
}

// ListenHTTP listens on addr (DefaultHTTPAddr if empty; an empty host means
// 127.0.0.1) and serves the HTTP proxy there until Close. It returns the
// bound address.
func (s *Server) ListenHTTP(addr string) (net.Addr, error) {
	return s.listen(addr, DefaultHTTPAddr, s.ServeHTTPProxy)
}

func (s *Server) listen(addr, def string, serve func(net.Listener) error) (net.Addr, error) {
	addr = listenAddr(addr, def)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	if !s.tr.start() {
		_ = l.Close()
		return nil, ErrClosed
	}
	go func() {
		defer s.tr.done()
		if err := serve(l); err != nil {
			s.log.WithError(err).Error("serving stopped")
		}
	}()
	return l.Addr(), nil
}

// listenAddr fills in the default address and the loopback host.
func listenAddr(addr, def string) string {
	if addr == "" {
		return def
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "" {
		return addr
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// ServeSOCKS serves SOCKS5 on l until l fails or Close; it returns nil after
// Close.
func (s *Server) ServeSOCKS(l net.Listener) error {
	if err := s.addListener(l, "SOCKS"); err != nil {
		return err
	}
	defer s.removeListener(l)
	return s.socks.serve(l)
}

// ServeHTTPProxy serves the HTTP proxy on l until l fails or Close; it
// returns nil after Close.
func (s *Server) ServeHTTPProxy(l net.Listener) error {
	if err := s.addListener(l, "HTTP proxy"); err != nil {
		return err
	}
	defer s.removeListener(l)
	err := s.http.srv.Serve(trackListener{Listener: l, t: s.tr})
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (s *Server) addListener(l net.Listener, what string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = l.Close()
		return ErrClosed
	}
	s.listeners[l] = struct{}{}
	log := s.log.WithField("addr", l.Addr().String())
	if !isLoopback(l.Addr()) {
		log.Warnf("%s listening on a non-loopback address: anyone who can reach it can use your circuits", what)
	} else {
		log.Infof("%s listening", what)
	}
	return nil
}

func (s *Server) removeListener(l net.Listener) {
	s.mu.Lock()
	delete(s.listeners, l)
	s.mu.Unlock()
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// Close stops listening, aborts dials in progress, closes every client
// connection and stream (including ones held inside the SOCKS and HTTP
// libraries), and waits for the front ends' goroutines. It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.tr.wait()
		return nil
	}
	s.closed = true
	ls := make([]net.Listener, 0, len(s.listeners))
	for l := range s.listeners {
		ls = append(ls, l)
	}
	s.mu.Unlock()

	s.cancel()
	for _, l := range ls {
		_ = l.Close()
	}
	_ = s.http.srv.Close()
	s.http.transport.CloseIdleConnections()
	s.tr.close()
	s.tr.wait()
	return nil
}
