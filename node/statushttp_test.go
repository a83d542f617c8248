package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/node/localnet"
	"github.com/pikcio/pikcio/web"
)

// TestStatusServer checks the node's status server end to end: the web
// page and API behind the Host check, a refused connection in the recent
// errors without its destination unless asked, and the trust query
// without a TIS.
func TestStatusServer(t *testing.T) {
	n := startNet(t, 3, 1, nil)
	base := "http://" + n.Client.StatusAddr().String()

	// A connection refused at the destination.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The SOCKS port replies success at once (optimistic data), so the
	// refusal shows as an error on the first read.
	if c, err := testutil.SOCKSDial(ctx, n.Client.SOCKSAddr().String(), fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		_, _ = c.Write([]byte("hello"))
		_, rerr := c.Read(make([]byte, 1))
		c.Close()
		if rerr == nil {
			t.Fatal("read from a refused connection succeeded")
		}
	}
	dest := fmt.Sprintf("127.0.0.1:%d", port)

	get := func(path, host string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("/api/status", "")
	if code != 200 {
		t.Fatalf("/api/status: %d %s", code, body)
	}
	var st web.Status
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Client == nil || len(st.Client.Circuits) == 0 || len(st.Client.Circuits[0].Hops) != 3 {
		t.Fatalf("status without a 3-hop circuit: %+v", st.Client)
	}
	if len(st.Errors) == 0 || st.Errors[0].Kind != "refused" {
		t.Fatalf("recent errors %+v, want the refused connection first", st.Errors)
	}
	if strings.Contains(body, dest) {
		t.Fatal("/api/status names a destination without being asked")
	}
	if _, body := get("/api/status?destinations=1", ""); !strings.Contains(body, dest) {
		t.Fatal("?destinations=1 does not show the destination")
	}
	for _, tc := range []struct {
		path, host string
		code       int
	}{
		{"/", "", 200},
		{"/metrics", "", 200},
		{"/proxy.pac", "", 200},
		{"/api/status", "attacker.example", 403},
		{"/api/trust/anything", "attacker.example", 403},
		{"/api/trust/anything", "", 503}, // no TIS: no trust view
	} {
		if code, body := get(tc.path, tc.host); code != tc.code {
			t.Errorf("GET %s (Host %q): %d, want %d: %.200s", tc.path, tc.host, code, tc.code, body)
		}
	}
}

// TestRelayStatusPage: a relay with a status address shows its own side:
// circuits carried and bytes, and no client part.
func TestRelayStatusPage(t *testing.T) {
	n := startNet(t, 3, 1, func(o *localnet.Options) {
		o.Config = func(i int, cfg *config.Config) {
			if i == 0 {
				cfg.Client.StatusListen = "127.0.0.1:0"
			}
		}
	})
	r := n.Relays[0]
	resp, err := http.Get("http://" + r.StatusAddr().String() + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st web.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Relay == nil || st.Client != nil {
		t.Fatalf("relay status: relay %+v, client %+v", st.Relay, st.Client)
	}
	page, err := http.Get("http://" + r.StatusAddr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(page.Body)
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(string(b), "Relay") {
		t.Fatalf("relay page: %d\n%.500s", page.StatusCode, b)
	}
}
