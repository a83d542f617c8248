package node_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/node/localnet"
)

// TestIPv6Literal: with two exits, of which only one says it reaches IPv6
// (and only it may reach [::1]), every stream to an IPv6 literal (one per
// isolation group, so each builds its own circuit) reaches a server on
// ::1 through that exit.
func TestIPv6Literal(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "over ipv6") })}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	n := startNet(t, 5, 2, func(o *localnet.Options) {
		o.Config = func(i int, cfg *config.Config) {
			if i == 4 {
				cfg.Relay.IPv6Exit = true
				cfg.Relay.ExitPolicy = []string{"accept [::1]:*", "accept 127.0.0.1:*"}
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The client must have the IPv6 exit's descriptor first.
	testutil.WaitFor(t, 30*time.Second, "the IPv6 exit in the directory", func() bool {
		d, ok := n.Client.Directory().Descriptor(n.Relays[4].ID())
		return ok && d.ExitsIPv6()
	})
	for i := range 4 {
		d, err := xproxy.SOCKS5("tcp", n.Client.SOCKSAddr().String(), &xproxy.Auth{User: fmt.Sprint("u", i), Password: "x"}, xproxy.Direct)
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{DialContext: d.(xproxy.ContextDialer).DialContext, DisableKeepAlives: true}
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+l.Addr().String()+"/", nil)
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			t.Fatalf("stream %d to %s: %v", i, l.Addr(), err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "over ipv6" {
			t.Fatalf("stream %d: %q", i, b)
		}
	}
}
