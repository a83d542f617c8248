package node_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/control"
	"github.com/pikcio/pikcio/control/client"
	"github.com/pikcio/pikcio/node/localnet"
	"github.com/pikcio/pikcio/web"
)

// TestControlAPI drives a client node through the control API with the Go
// client package: the refusals (no cookie, a wrong one, a foreign Host, a
// web page's Origin), the circuit of an isolation key against the status
// page's hops for it, a new circuit for that key only, and the event
// stream reporting it.
func TestControlAPI(t *testing.T) {
	n := startNet(t, 4, 2, func(o *localnet.Options) {
		o.Config = func(i int, c *config.Config) {
			if i == -1 {
				c.Client.ControlListen = "127.0.0.1:0"
			}
		}
	})
	addr := n.Client.ControlAddr()
	cookiePath := filepath.Join(n.Client.DataDir(), control.CookieFile)
	fi, err := os.Stat(cookiePath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cookie file: %v, %v; want mode 0600", fi, err)
	}
	cookie, _ := os.ReadFile(cookiePath)

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			header map[string]string
			host   string
			want   int
		}{
			{"no cookie", nil, "", http.StatusUnauthorized},
			{"wrong cookie", map[string]string{"Authorization": "Bearer " + strings.Repeat("0", 64)}, "", http.StatusUnauthorized},
			{"cookie without Bearer", map[string]string{"Authorization": strings.TrimSpace(string(cookie))}, "", http.StatusUnauthorized},
			{"foreign Host", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(cookie))}, "evil.test", http.StatusForbidden},
			{"Origin", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(cookie)), "Origin": "http://127.0.0.1"}, "", http.StatusForbidden},
			{"fetch metadata", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(cookie)), "Sec-Fetch-Site": "same-origin"}, "", http.StatusForbidden},
			{"good", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(cookie))}, "", http.StatusOK},
			{"good localhost", map[string]string{"Authorization": "Bearer " + strings.TrimSpace(string(cookie))}, "localhost", http.StatusOK},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest("GET", "http://"+addr+"/v1/status", nil)
				for k, v := range tc.header {
					req.Header.Set(k, v)
				}
				if tc.host != "" {
					req.Host = tc.host
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.want {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, body)
				}
				if tc.want != http.StatusOK && strings.Contains(string(body), strings.TrimSpace(string(cookie))) {
					t.Fatal("the answer shows the cookie")
				}
			})
		}
	})

	c, err := client.ForDataDir(addr, n.Client.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// A destination, fetched by alice and bob on the SOCKS port.
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	fetch := func(user string) {
		t.Helper()
		d, err := xproxy.SOCKS5("tcp", n.Client.SOCKSAddr().String(), &xproxy.Auth{User: user, Password: "x"}, xproxy.Direct)
		if err != nil {
			t.Fatal(err)
		}
		tr := &http.Transport{DialContext: d.(xproxy.ContextDialer).DialContext, DisableKeepAlives: true}
		resp, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Get("http://" + l.Addr().String() + "/")
		if err != nil {
			t.Fatalf("fetch as %s: %v", user, err)
		}
		_, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	alice := control.Isolation{Proxy: "socks", Username: "alice", Password: "x"}
	bob := control.Isolation{Proxy: "socks", Username: "bob", Password: "x"}
	if got, err := c.Circuit(ctx, alice); err != nil || got != nil {
		t.Fatalf("circuit before the first stream: %+v, %v; want none", got, err)
	}
	fetch("alice")
	fetch("bob")
	ac, err := c.Circuit(ctx, alice)
	if err != nil || ac == nil {
		t.Fatalf("alice's circuit: %+v, %v", ac, err)
	}
	bc, err := c.Circuit(ctx, bob)
	if err != nil || bc == nil || bc.ID == ac.ID || bc.Group == ac.Group {
		t.Fatalf("bob's circuit %+v, alice's %+v: want another one", bc, ac)
	}

	// The status page shows the same hops for alice's circuit.
	resp, err := http.Get("http://" + n.Client.StatusAddr().String() + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	var st web.Status
	err = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(st.Client.Circuits, func(cs web.CircuitStatus) bool { return cs.ID == ac.ID })
	if i < 0 {
		t.Fatalf("status page lacks circuit %d", ac.ID)
	}
	page := st.Client.Circuits[i]
	if page.Group != ac.Group || len(page.Hops) != 3 || !slices.EqualFunc(page.Hops, ac.Hops, func(a, b web.HopStatus) bool {
		return a.PeerID == b.PeerID && a.Role == b.Role
	}) {
		t.Fatalf("status page circuit %+v, control API %+v", page, ac)
	}

	// A new circuit for alice only, seen on the event stream.
	events, err := c.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	retired, err := c.NewCircuit(ctx, alice)
	if err != nil || retired != 1 {
		t.Fatalf("new circuit: %d, %v; want 1 retired", retired, err)
	}
	if got, _ := c.Circuit(ctx, alice); got != nil {
		t.Fatalf("alice still has circuit %d", got.ID)
	}
	if got, _ := c.Circuit(ctx, bob); got == nil || got.ID != bc.ID {
		t.Fatalf("bob's circuit changed: %+v, want %d", got, bc.ID)
	}
	fetch("alice")
	ac2, err := c.Circuit(ctx, alice)
	if err != nil || ac2 == nil || ac2.ID == ac.ID {
		t.Fatalf("alice's new circuit %+v, %v; want another than %d", ac2, err, ac.ID)
	}
	closed := false
	for !closed {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("event stream ended")
			}
			if e.Type == control.EventCircuitClosed && e.Circuit == ac.ID {
				closed = true
			}
		case <-ctx.Done():
			t.Fatal("no circuit_closed event for alice's old circuit")
		}
	}

	// New identity: an event too.
	if err := c.NewIdentity(ctx); err != nil {
		t.Fatal(err)
	}
	for got := false; !got; {
		select {
		case e := <-events:
			got = e.Type == control.EventNewIdentity
		case <-ctx.Done():
			t.Fatal("no new_identity event")
		}
	}

	// Without [tis], contacts and trust are not available; enrollment says
	// so.
	if _, err := c.Contacts(ctx); !client.IsStatus(err, http.StatusConflict) {
		t.Fatalf("contacts without a TIS: %v, want 409", err)
	}
	if en, err := c.Enrollment(ctx); err != nil || en.Configured {
		t.Fatalf("enrollment %+v, %v", en, err)
	}
	if _, err := c.NewCircuit(ctx, control.Isolation{Proxy: "gopher"}); !client.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("bad isolation: %v, want 400", err)
	}
}
