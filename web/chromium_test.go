package web

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/chromium"
)

// needChromium skips when no browser is installed, except in CI.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := chromium.Find(); err != nil {
		if errors.Is(err, chromium.ErrNotFound) && os.Getenv("CI") == "" {
			t.Skip("no chromium installed (CI unset)")
		}
		t.Fatalf("find chromium: %v", err)
	}
}

// TestChromium loads the page in a real headless Chromium: with
// JavaScript, the script must have redrawn the page from /api/status with
// data that changed after the page was served; without, the server's view
// must be complete.
func TestChromium(t *testing.T) {
	needChromium(t)
	first := clientStatus(2)
	later := clientStatus(3) // one more circuit after the page load
	later.Network.RelaysKnown = 4242
	later.Client.Circuits[2].Hops[2].TCI = &Band{Min: 90, Max: 99}
	tests := []struct {
		name   string
		js     bool
		want   []string
		absent []string
	}{
		{
			name: "js on",
			js:   true,
			want: []string{
				`data-rendered="js"`,
				`<span id="relays-known">4242</span>`,
				`data-circuit="102"`,
				`data-hop="` + later.Client.Circuits[2].Hops[2].ID + `" data-role="exit" data-tci="90-99"`,
				`data-tci="0-19"`, `data-contact="Alice-2"`,
				"guard · <code>" + shortID(later.Client.Circuits[2].Hops[0].ID) + "</code> · TCI 0–19 · Alice-2",
				`<button type="button" class="copy" data-copy="` + first.PeerID + `">Copy</button>`,
				"Live: updated every 2 s.",
			},
			absent: []string{`data-rendered="server"`, "secret-destination", `class="copy" hidden`},
		},
		{
			name: "js off",
			js:   false,
			want: []string{
				`data-rendered="server"`,
				`<span id="relays-known">42</span>`,
				`data-circuit="101"`,
				`data-tci="40-59"`,
				"middle · <code>" + shortID(first.Client.Circuits[1].Hops[1].ID) + "</code> · no TCI",
				"isolation group 1",
				"1 min 0 s ago",
			},
			absent: []string{`data-rendered="js"`, `data-circuit="102"`, "4242", "secret-destination"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{Now: func() time.Time { return testNow }}
			if !tt.js {
				// The page without script reloads itself (meta refresh),
				// which keeps headless Chromium from ever settling within
				// its virtual time budget: reload after it.
				opts.PollInterval = 2 * chromium.VirtualTimeBudget
			}
			srv := httptest.NewServer(NewHandler(&fixedSource{first: first, later: &later}, opts))
			t.Cleanup(srv.Close)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dom, err := chromium.DumpDOM(ctx, srv.URL+"/", chromium.Options{JS: tt.js})
			if err != nil {
				t.Fatal(err)
			}
			dom = normalizeAttrs(dom)
			for _, w := range tt.want {
				if !strings.Contains(dom, w) {
					t.Errorf("DOM lacks %q", w)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(dom, a) {
					t.Errorf("DOM holds %q", a)
				}
			}
			if t.Failed() {
				t.Logf("DOM:\n%s", dom)
			}
		})
	}

	t.Run("screenshot", func(t *testing.T) {
		srv := newServer(t, &fixedSource{first: first, later: &later})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		path := filepath.Join(t.ArtifactDir(), "status-page.png")
		if err := chromium.Screenshot(ctx, srv.URL+"/", path, chromium.Options{JS: true}); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Size() < 10000 {
			t.Fatalf("screenshot %s: %v (size %d)", path, err, fi.Size())
		}
		t.Logf("screenshot: %s", path)
	})
}

var emptyAttr = regexp.MustCompile(` (hidden|checked)=""`)

// normalizeAttrs writes Chromium's serialization of boolean attributes
// (hidden="") as the template does (hidden).
func normalizeAttrs(dom string) string { return emptyAttr.ReplaceAllString(dom, " $1") }
