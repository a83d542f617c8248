package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"

	"github.com/sirupsen/logrus"
)

// The status server serves the web package's page and API (which refuse
// any Host header but a loopback one, and cross-origin POSTs) and the
// node's trust queries (web.TrustPath) behind the same checks.

// statusServer serves the status handler on one listener.
type statusServer struct {
	srv  *http.Server
	l    net.Listener
	done chan struct{}
	once sync.Once
	err  error
}

func startStatusServer(ctx context.Context, addr string, h http.Handler) (*statusServer, error) {
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
	s := &statusServer{
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: statusReadHeaderTimeout,
			IdleTimeout:       statusIdleTimeout,
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

func (s *statusServer) Addr() net.Addr { return s.l.Addr() }

// Close stops the server and its connections and waits for it.
func (s *statusServer) Close() error {
	s.once.Do(func() { s.err = s.srv.Close() })
	<-s.done
	return s.err
}
