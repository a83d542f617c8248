package proxy_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/proxy/proxytest"
	"github.com/pikcio/pikcio/service"
)

// fakeServices reaches bob.pikcio at a loopback backend; secret.pikcio is
// for contacts only; other names are unknown.
type fakeServices struct {
	backend string
	mu      sync.Mutex
	hosts   []string
}

func (f *fakeServices) DialService(ctx context.Context, host string, port uint16) (net.Conn, error) {
	f.mu.Lock()
	f.hosts = append(f.hosts, host)
	f.mu.Unlock()
	switch host {
	case "bob.pikcio":
		var d net.Dialer
		return d.DialContext(ctx, "tcp", f.backend)
	case "secret.pikcio":
		return nil, fmt.Errorf("fetch: %w", service.ErrNotAuthorized)
	}
	return nil, fmt.Errorf("%s: %w", host, service.ErrUnknownName)
}

// exitDialer records every host the exit side was asked for.
type exitDialer struct {
	proxy.Dialer
	mu    sync.Mutex
	hosts []string
}

func (d *exitDialer) Dial(ctx context.Context, key, host string, port uint16) (net.Conn, error) {
	d.mu.Lock()
	d.hosts = append(d.hosts, host)
	d.mu.Unlock()
	return d.Dialer.Dial(ctx, key, host, port)
}

func newPikcioEnv(t *testing.T, services proxy.ServiceDialer) (socks, httpAddr string, exit *exitDialer) {
	t.Helper()
	pool := proxy.NewPool(proxytest.NewBuilder().Build, proxy.PoolOptions{})
	pool.Start()
	t.Cleanup(func() { _ = pool.Close() })
	exit = &exitDialer{Dialer: pool}
	srv := proxy.NewServer(exit, proxy.ServerOptions{Services: services})
	t.Cleanup(func() { _ = srv.Close() })
	sa, err := srv.ListenSOCKS("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ha, err := srv.ListenHTTP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return sa.String(), ha.String(), exit
}

// TestPikcioNames: .pikcio names go to the services through both front
// ends, never to an exit, and a name that is not a service gets a clear
// refusal.
func TestPikcioNames(t *testing.T) {
	b := newBackend(t)
	svc := &fakeServices{backend: b.Listener.Addr().String()}
	socks, httpAddr, exit := newPikcioEnv(t, svc)
	_, noSvcHTTP, noSvcExit := newPikcioEnv(t, nil)

	if got := socksGet(t, socks, nil, "http://bob.pikcio/"); got != oneKiB() {
		t.Errorf("SOCKS bob.pikcio: %d bytes, want the backend's page", len(got))
	}
	d, err := xproxy.SOCKS5("tcp", socks, nil, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]string{"nobody.pikcio": "host unreachable", "secret.pikcio": "not allowed"} {
		_, err := d.(xproxy.ContextDialer).DialContext(context.Background(), "tcp", host+":80")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("SOCKS %s: %v, want a %q reply", host, err, want)
		}
	}

	cases := []struct {
		proxy, url string
		status     int
		body       string
	}{
		{httpAddr, "http://bob.pikcio/", 200, oneKiB()},
		{httpAddr, "http://nobody.pikcio/", 502, "unknown .pikcio name"},
		{httpAddr, "http://secret.pikcio/", 403, "contacts only"},
		{noSvcHTTP, "http://bob.pikcio/", 502, "unknown .pikcio name"},
	}
	for _, c := range cases {
		t.Run(c.url, func(t *testing.T) {
			tr := &http.Transport{Proxy: http.ProxyURL(mustURL(t, "http://"+c.proxy)), DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get(c.url)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(string(body), c.body) {
				t.Errorf("status %d body %.80q, want %d with %q", resp.StatusCode, body, c.status, c.body)
			}
		})
	}
	for _, e := range []*exitDialer{exit, noSvcExit} {
		e.mu.Lock()
		for _, h := range e.hosts {
			if service.IsPikcioHost(h) {
				t.Errorf("%s went to the exit side", h)
			}
		}
		e.mu.Unlock()
	}
}
