package chromium

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needChromium skips the test when no browser is installed, except in CI,
// where a missing browser is a failure.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := Find(); err != nil {
		if errors.Is(err, ErrNotFound) && os.Getenv("CI") == "" {
			t.Skip("no chromium installed (CI unset)")
		}
		t.Fatalf("find chromium: %v", err)
	}
}

const page = `<!DOCTYPE html><html><head><title>t</title></head><body>
<p id="x">static</p>
<script>document.getElementById("x").textContent = "script ran";</script>
</body></html>`

func TestDumpDOM(t *testing.T) {
	needChromium(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name string
		js   bool
		want string
		not  string
	}{
		{"js on", true, `<p id="x">script ran</p>`, `<p id="x">static</p>`},
		{"js off", false, `<p id="x">static</p>`, `<p id="x">script ran</p>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			dom, err := DumpDOM(ctx, srv.URL+"/", Options{JS: tt.js})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(dom, tt.want) || strings.Contains(dom, tt.not) {
				t.Fatalf("DOM = %q, want %q and not %q", dom, tt.want, tt.not)
			}
		})
	}
}

func TestScreenshot(t *testing.T) {
	needChromium(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "shot.png")
	if err := Screenshot(ctx, srv.URL+"/", path, Options{JS: true}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG (%d bytes)", len(b))
	}
}

func TestCancelledContext(t *testing.T) {
	needChromium(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := DumpDOM(ctx, "about:blank", Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestFindEnv(t *testing.T) {
	t.Setenv(EnvBinary, filepath.Join(t.TempDir(), "missing"))
	if _, err := Find(); err == nil || errors.Is(err, ErrNotFound) {
		t.Fatalf("Find with a missing $%s: err = %v, want a stat error", EnvBinary, err)
	}
}

func TestLoadFailed(t *testing.T) {
	needChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A name that the run's resolver rules map to "not found": no DNS
	// query leaves the machine.
	if _, err := DumpDOM(ctx, "http://pikcio-test.invalid/", Options{}); !errors.Is(err, ErrLoadFailed) {
		t.Fatalf("err = %v, want ErrLoadFailed", err)
	}
}
