package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	urlpkg "net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/pelletier/go-toml/v2"
	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/control/client"
	"github.com/pikcio/pikcio/internal/chromium"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/node/localnet"
	"github.com/pikcio/pikcio/trust/exchange"
)

const servicePage = `<!doctype html><html><head><title>svc</title></head><body><p id="m">matryoshka service page 7f3a</p></body></html>`

// TestServiceThroughSOCKS: a node publishes its loopback web server as a
// service; through the SOCKS port, a Go client and a headless Chromium
// load the page by its full .pikcio address, bytes checked. No exit is
// involved: the exit policy refuses everything.
func TestServiceThroughSOCKS(t *testing.T) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, servicePage)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	n := localnet.StartTest(t, 4, func(o *localnet.Options) {
		o.Base.Relay.ExitPolicy = []string{"reject *:*"}
		o.DemoService = true
		o.NodeOptions = func(i int, no *node.Options) {
			if i == -1 {
				no.Services = append(no.Services, node.ServiceConfig{Name: "web", Target: l.Addr().String()})
			}
		}
	})
	c := n.Client
	published := func() bool {
		s := c.Services()
		return len(s) == 2 && !s[0].Published.IsZero() && len(s[0].IntroPoints) == 3 && !s[1].Published.IsZero()
	}
	for deadline := time.Now().Add(2 * time.Minute); !published(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("services not published: %+v", c.Services())
		}
	}
	svcs := c.Services() // by name: demo, web
	if svcs[0].Name != localnet.DemoServiceName || svcs[1].Name != "web" {
		t.Fatalf("services %q and %q", svcs[0].Name, svcs[1].Name)
	}
	host := svcs[1].Address.Host()
	socks := c.SOCKSAddr().String()

	d, err := xproxy.SOCKS5("tcp", socks, nil, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DialContext: d.(xproxy.ContextDialer).DialContext, DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	start := time.Now()
	resp, err := (&http.Client{Transport: tr, Timeout: 90 * time.Second}).Get("http://" + host + "/")
	if err != nil {
		t.Fatalf("GET through SOCKS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != servicePage {
		t.Fatalf("page through SOCKS: %q", body)
	}
	t.Logf("first page through SOCKS after %v", time.Since(start))

	// The demo's own page, by the name of the node's own service.
	resp, err = (&http.Client{Transport: tr, Timeout: 90 * time.Second}).Get("http://demo.pikcio/")
	if err != nil {
		t.Fatalf("GET demo.pikcio: %v", err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "You reached demo.pikcio") || !strings.Contains(string(body), "rendezvous relay") {
		t.Fatalf("demo.pikcio: %.200q", body)
	}

	// The status page and its API list the services and intro points.
	page := "http://" + c.StatusAddr().String()
	for _, path := range []string{"/api/status", "/"} {
		resp, err := http.Get(page + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), svcs[1].Address.String()) || (path != "/" && !strings.Contains(string(b), svcs[1].IntroPoints[0].String())) {
			t.Errorf("%s does not show the service and its intro points", path)
		}
	}

	for _, bad := range []string{"nobody.pikcio", strings.Repeat("a", 56) + ".pikcio"} {
		if _, err := d.(xproxy.ContextDialer).DialContext(context.Background(), "tcp", bad+":80"); err == nil {
			t.Errorf("%s: connected", bad)
		}
	}

	if _, err := chromium.Find(); errors.Is(err, chromium.ErrNotFound) {
		if os.Getenv("CI") == "" {
			t.Skip("no chromium installed")
		}
		t.Fatal("CI needs chromium")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dom, err := chromium.DumpDOM(ctx, "http://"+host+"/", chromium.Options{ProxyServer: "socks5://" + socks})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dom, `<p id="m">matryoshka service page 7f3a</p>`) {
		t.Fatalf("Chromium's DOM lacks the page: %.300s", dom)
	}
}

// servePage serves page on 127.0.0.1 until the test ends.
func servePage(t *testing.T, page string) string {
	t.Helper()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, page)
	})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return l.Addr().String()
}

// get fetches url through an HTTP proxy.
func get(t *testing.T, proxyAddr, url string) (int, string) {
	t.Helper()
	tr := &http.Transport{Proxy: http.ProxyURL(&urlpkg.URL{Scheme: "http", Host: proxyAddr}), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 90 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServiceContacts: Alice publishes a contacts-only service and Bob an
// open one. Before they are contacts, Bob is refused with a clear error;
// after an invite exchange (which carries the service cards), each
// reaches the other's service as CONTACTNAME.pikcio, Bob with a headless
// Chromium too.
func TestServiceContacts(t *testing.T) {
	alicePage := `<!doctype html><html><body><p id="a">alice's private page 91c2</p></body></html>`
	bobPage := `<!doctype html><html><body><p id="b">bob's open page 5d0e</p></body></html>`
	aliceTarget, bobTarget := servePage(t, alicePage), servePage(t, bobPage)
	n := localnet.StartTest(t, 4, func(o *localnet.Options) {
		o.ExtraClients = 1
		o.Base.Client.ControlListen = "127.0.0.1:0"
		o.NodeOptions = func(i int, no *node.Options) {
			switch i {
			case -1:
				no.Services = []node.ServiceConfig{{Name: "private", Target: aliceTarget, ContactsOnly: true}}
			case -2:
				no.Services = []node.ServiceConfig{{Name: "blog", Target: bobTarget}}
			}
		}
	})
	alice, bob := n.Client, n.Extra[0]
	for _, c := range []*node.Node{alice, bob} {
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			if s := c.Services(); len(s) == 1 && !s[0].Published.IsZero() {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("services not published: %+v", c.Services())
			}
		}
	}
	aliceAddr := alice.Services()[0].Address.Host()

	// Not yet a contact: refused, and told why.
	if code, body := get(t, bob.HTTPAddr().String(), "http://"+aliceAddr+"/"); code != http.StatusForbidden || !strings.Contains(body, "contacts only") {
		t.Fatalf("non-contact: %d %q, want 403 contacts only", code, body)
	}
	if code, _ := get(t, bob.HTTPAddr().String(), "http://alice.pikcio/"); code != http.StatusBadGateway {
		t.Fatalf("alice.pikcio before the exchange: %d, want 502 (unknown name)", code)
	}

	// Alice invites Bob; Bob accepts through his control API.
	inv, err := exchange.CreateInvite(alice.DataDir(), alice.Addrs(), "Bob", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := client.ForDataDir(bob.ControlAddr(), bob.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := ctl.Accept(ctx, inv.String(), "Alice"); err != nil {
		t.Fatalf("accept: %v", err)
	}

	// Alice republishes with Bob's client key within seconds.
	var code int
	var body string
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		if code, body = get(t, bob.HTTPAddr().String(), "http://alice.pikcio/"); code == http.StatusOK || time.Now().After(deadline) {
			break
		}
	}
	if code != http.StatusOK || body != alicePage {
		t.Fatalf("alice.pikcio for her contact: %d %q", code, body)
	}
	if code, body := get(t, alice.HTTPAddr().String(), "http://bob.pikcio/"); code != http.StatusOK || body != bobPage {
		t.Fatalf("bob.pikcio: %d %q", code, body)
	}

	if _, err := chromium.Find(); errors.Is(err, chromium.ErrNotFound) {
		if os.Getenv("CI") == "" {
			t.Skip("no chromium installed")
		}
		t.Fatal("CI needs chromium")
	}
	dom, err := chromium.DumpDOM(ctx, "http://alice.pikcio/", chromium.Options{ProxyServer: "socks5://" + bob.SOCKSAddr().String()})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dom, `<p id="a">alice's private page 91c2</p>`) {
		t.Fatalf("Chromium's DOM lacks Alice's page: %.300s", dom)
	}
	// Alice's service status names no client.
	if st := fmt.Sprintf("%+v", alice.Services()); strings.Contains(st, bob.ID().String()) {
		t.Fatal("Alice's service status names Bob's node")
	}
}

// saveFile replaces path's content through a rename, as editors do.
func saveFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// TestServiceReload: a [[services]] block added to the running client's
// configuration file starts the service, reachable through SOCKS by its
// name and its address; a bad block is rejected naming file and line and
// the service keeps running; removing the block stops it and it can no
// longer be reached.
func TestServiceReload(t *testing.T) {
	target := servePage(t, servicePage)
	n := localnet.StartTest(t, 4, func(o *localnet.Options) { o.Base.Relay.ExitPolicy = []string{"reject *:*"} })
	c := n.Client
	path := filepath.Join(t.TempDir(), "pikcio.toml")
	base, err := toml.Marshal(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	saveFile(t, path, base)
	w, err := config.NewWatcher(path, nil, c.Apply, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })

	added, err := config.AppendService(path, base, config.ServiceConfig{Name: "web", Target: target})
	if err != nil {
		t.Fatal(err)
	}
	saveFile(t, path, added)
	if err := w.Reload(); err != nil {
		t.Fatalf("reload with a service: %v", err)
	}
	testutil.WaitFor(t, 2*time.Minute, "web published", func() bool {
		s := c.Services()
		return len(s) == 1 && s[0].Name == "web" && !s[0].Published.IsZero() && len(s[0].IntroPoints) == 3
	})
	addr := c.Services()[0].Address.Host()
	d, err := xproxy.SOCKS5("tcp", c.SOCKSAddr().String(), nil, xproxy.Direct)
	if err != nil {
		t.Fatal(err)
	}
	get := func(host string, timeout time.Duration) (string, error) {
		tr := &http.Transport{DialContext: d.(xproxy.ContextDialer).DialContext, DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: timeout}).Get("http://" + host + "/")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	for _, host := range []string{"web.pikcio", addr} {
		if page, err := get(host, 90*time.Second); err != nil || page != servicePage {
			t.Fatalf("GET %s: %q %v", host, page, err)
		}
	}

	bad := append(slices.Clone(added), "\n[[services]]\nname = \"Bad Name\"\ntarget = \"127.0.0.1:1\"\n"...)
	saveFile(t, path, bad)
	err = w.Reload()
	line := bytes.Count(added, []byte("\n")) + 3
	if want := fmt.Sprintf("%s:%d: services.name", path, line); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("reload of a bad block: %v, want %q", err, want)
	}
	if s := c.Services(); len(s) != 1 || s[0].Name != "web" {
		t.Fatalf("services after a rejected file: %+v", s)
	}

	removed, err := config.RemoveService(path, added, "web")
	if err != nil {
		t.Fatal(err)
	}
	saveFile(t, path, removed)
	if err := w.Reload(); err != nil {
		t.Fatalf("reload without the service: %v", err)
	}
	if s := c.Services(); len(s) != 0 {
		t.Fatalf("services after removal: %+v", s)
	}
	for _, host := range []string{"web.pikcio", addr} {
		if page, err := get(host, 60*time.Second); err == nil {
			t.Fatalf("GET %s after removal: %q", host, page)
		}
	}
}
