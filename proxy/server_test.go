package proxy_test

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/proxy/proxytest"
)

// addrListener reports a different address than the one it listens on.
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l addrListener) Addr() net.Addr { return l.addr }

func TestListenAddresses(t *testing.T) {
	checkLeaks(t)
	hook := logtest.NewGlobal()
	t.Cleanup(func() { logrus.StandardLogger().ReplaceHooks(make(logrus.LevelHooks)) })

	pool := proxy.NewPool(proxytest.NewBuilder().Build, proxy.PoolOptions{Prebuilt: -1})
	t.Cleanup(func() { _ = pool.Close() })
	s := proxy.NewServer(pool, proxy.ServerOptions{})
	t.Cleanup(func() { _ = s.Close() })

	// An empty host means loopback.
	for _, listen := range []func(string) (net.Addr, error){s.ListenSOCKS, s.ListenHTTP} {
		a, err := listen(":0")
		if err != nil {
			t.Fatal(err)
		}
		if ip := a.(*net.TCPAddr).IP; !ip.Equal(net.IPv4(127, 0, 0, 1)) {
			t.Fatalf("listening on %v", a)
		}
	}
	for _, e := range hook.AllEntries() {
		if e.Level <= logrus.WarnLevel {
			t.Fatalf("warning for a loopback listener: %s", e.Message)
		}
	}

	// A listener on a non-loopback address gets a warning.
	for _, tc := range []struct {
		name  string
		serve func(net.Listener) error
	}{{"SOCKS", s.ServeSOCKS}, {"HTTP proxy", s.ServeHTTPProxy}} {
		hook.Reset()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			done <- tc.serve(addrListener{Listener: l, addr: &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1080}})
		}()
		waitFor(t, "the warning", func() bool {
			for _, e := range hook.AllEntries() {
				if e.Level == logrus.WarnLevel && strings.Contains(e.Message, tc.name+" listening on a non-loopback address") {
					return true
				}
			}
			return false
		})
		_ = l.Close()
		if err := <-done; err != nil {
			t.Fatalf("serve: %v", err)
		}
	}

	_ = s.Close()
	_ = s.Close()
	if _, err := s.ListenSOCKS("127.0.0.1:0"); !errors.Is(err, proxy.ErrClosed) {
		t.Fatalf("listen after Close: %v", err)
	}
}
