package web

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Timeouts of a Server's connections.
const (
	ReadHeaderTimeout = 5 * time.Second
	IdleTimeout       = time.Minute
)

// Server serves a handler (NewHandler's, or one with more routes in
// front) on one TCP listener. It warns when the address is not a loopback
// one: the page's Host and header checks guard against DNS rebinding, not
// against other machines.
type Server struct {
	srv  *http.Server
	l    net.Listener
	done chan struct{}
	once sync.Once
	err  error
}

// Listen listens on addr (ctx bounds the listen itself) and serves h
// until Close.
func Listen(ctx context.Context, addr string, h http.Handler) (*Server, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	log := logrus.WithField("component", "status")
	if ta, ok := l.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		log.WithField("addr", l.Addr().String()).Warn("status page listening on a non-loopback address")
	} else {
		log.WithField("addr", l.Addr().String()).Info("status page listening")
	}
	s := &Server{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: ReadHeaderTimeout,
			IdleTimeout:       IdleTimeout,
		},
		l:    l,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.WithError(err).Error("status page stopped")
		}
	}()
	return s, nil
}

// Addr is the listener's address.
func (s *Server) Addr() net.Addr { return s.l.Addr() }

// Close stops the server and its connections and waits for it. It is
// idempotent; every call returns the same error.
func (s *Server) Close() error {
	s.once.Do(func() { s.err = s.srv.Close() })
	<-s.done
	return s.err
}
