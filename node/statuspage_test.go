package node_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/chromium"
	"github.com/pikcio/pikcio/internal/testutil"
)

// pacedServer serves /slow: about 10 MiB, paced over about 30 s, so that a
// download is running while the test looks at the status page.
func pacedServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for range 160 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

var (
	circuitRE = regexp.MustCompile(`(?s)<table class="circuit" data-circuit="\d+">(.*?)</table>`)
	hopRE     = regexp.MustCompile(`data-hop="[^"]+" data-role="(guard|middle|exit)" data-tci="([^"]+)"`)
)

// checkCircuitsDOM reports whether dom shows a circuit of 3 hops, each
// with a TCI band.
func checkCircuitsDOM(dom string) bool {
	for _, m := range circuitRE.FindAllStringSubmatch(dom, -1) {
		hops := hopRE.FindAllStringSubmatch(m[1], -1)
		if len(hops) != 3 {
			continue
		}
		ok := true
		for _, h := range hops {
			if h[2] == "none" || !strings.Contains(h[2], "-") {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// TestStatusPageChromium loads the client's status page in a real
// headless Chromium while a download runs through the proxy: the DOM the
// page's script builds shows a 3-hop circuit whose hops all carry a TCI
// band; a screenshot goes to the test's artifact directory; with
// JavaScript off, the server-rendered page shows the same.
func TestStatusPageChromium(t *testing.T) {
	if _, err := chromium.Find(); errors.Is(err, chromium.ErrNotFound) {
		if os.Getenv("CI") == "" {
			t.Skip("no chromium installed")
		}
		t.Fatal("CI needs chromium: .ci/run installs it")
	}
	net := newTrustNet(t)
	testutil.WaitFor(t, 60*time.Second, "every hop of a circuit with a TCI band", func() bool {
		for _, c := range net.Client.Status().Client.Circuits {
			all := len(c.Hops) == 3
			for _, h := range c.Hops {
				all = all && h.TCI != nil
			}
			if all {
				return true
			}
		}
		return false
	})

	// A download runs through the proxy meanwhile.
	addr := pacedServer(t)
	dctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { stop(); wg.Wait() })
	var got int64
	wg.Go(func() {
		req, _ := http.NewRequestWithContext(dctx, "GET", "http://"+addr+"/slow", nil)
		resp, err := socksClient(t, net.Client.SOCKSAddr().String()).Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		got, _ = io.Copy(io.Discard, resp.Body)
	})
	testutil.WaitFor(t, 30*time.Second, "a stream open on a circuit", func() bool {
		for _, c := range net.Client.Status().Client.Circuits {
			if c.Streams > 0 && c.BytesDown > 0 {
				return true
			}
		}
		return false
	})

	page := "http://" + net.Client.StatusAddr().String() + "/"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dom, err := chromium.DumpDOM(ctx, page, chromium.Options{JS: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dom, `data-rendered="js"`) {
		t.Fatalf("the page's script did not render:\n%.3000s", dom)
	}
	if !checkCircuitsDOM(dom) {
		t.Fatalf("no 3-hop circuit with TCI on every hop in the DOM:\n%.5000s", dom)
	}
	shot := filepath.Join(t.ArtifactDir(), "status-page.png")
	if err := chromium.Screenshot(ctx, page, shot, chromium.Options{JS: true}); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the status page: %s", shot)

	plain, err := chromium.DumpDOM(ctx, page, chromium.Options{JS: false})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain, `data-rendered="js"`) {
		t.Fatal("the script ran with JavaScript off")
	}
	if !checkCircuitsDOM(plain) {
		t.Fatalf("without JavaScript: no 3-hop circuit with TCI on every hop:\n%.5000s", plain)
	}
	stop()
	wg.Wait()
	t.Logf("downloaded %d bytes while the page was looked at", got)
}

// BenchmarkStatusPage200 measures the client's status server with 200
// live 3-hop circuits on a real network: GET /api/status and GET / over
// HTTP, with the size of each answer.
func BenchmarkStatusPage200(b *testing.B) {
	net := newTrustNet(b)
	n := net.Client
	pool := n.Pool()
	opts := pool.Options()
	opts.Prebuilt, opts.MaxCircuits = 200, 256
	pool.SetOptions(opts)
	testutil.WaitFor(b, 120*time.Second, "200 circuits", func() bool { return pool.Stats().Circuits >= 200 })
	base := "http://" + n.StatusAddr().String()
	for name, path := range map[string]string{"api": "/api/status", "page": "/"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var size int
			for b.Loop() {
				resp, err := http.Get(base + path)
				if err != nil {
					b.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("%s: %d %v", path, resp.StatusCode, err)
				}
				size = len(body)
			}
			b.ReportMetric(float64(size), "bytes/answer")
			b.ReportMetric(float64(len(n.Status().Client.Circuits)), "circuits")
		})
	}
}
