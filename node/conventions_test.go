package node_test

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/pikcio/pikcio/proxy"
)

// TestProxyConventions through real circuits: curl's CONNECT (-p -x) on
// the SOCKS port, two HTTP proxy users with different credentials on
// different circuits, and the SOCKS and HTTP listeners without credentials
// on different circuits.
func TestProxyConventions(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is not installed; .ci/run installs it")
		}
		t.Skip("curl is not installed")
	}
	n := startNet(t, 3, 1, nil)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") })}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	url := "http://" + l.Addr().String() + "/"
	run := func(args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, curl, append([]string{"-q", "--silent", "--show-error", "--max-time", "20", "--noproxy", ""}, args...)...).CombinedOutput()
		if err != nil || string(out) != "hi" {
			t.Fatalf("curl %v: %v: %s", args, err, out)
		}
	}
	socks, httpp := n.Client.SOCKSAddr().String(), n.Client.HTTPAddr().String()
	run("-p", "-x", "http://"+socks, url)
	run("-x", "http://alice:1@"+httpp, url)
	run("-x", "http://bob:1@"+httpp, url)
	run("-x", "http://"+httpp, url)

	basic := func(u string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u)) }
	circ := func(key string) uint64 {
		t.Helper()
		ci, ok := n.Client.Pool().CircuitFor(key)
		if !ok {
			t.Fatalf("no circuit for key %q", key)
		}
		return ci.ID
	}
	socksNone := circ(proxy.SOCKSIsolationKey(false, "", ""))
	alice, bob := circ(proxy.HTTPIsolationKey(basic("alice:1"))), circ(proxy.HTTPIsolationKey(basic("bob:1")))
	httpNone := circ(proxy.HTTPIsolationKey(""))
	ids := map[uint64]bool{socksNone: true, alice: true, bob: true, httpNone: true}
	if len(ids) != 4 {
		t.Fatalf("circuits: SOCKS %d, alice %d, bob %d, HTTP %d: want four different ones", socksNone, alice, bob, httpNone)
	}
}
