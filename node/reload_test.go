package node_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/internal/testutil"
)

// writeConfig saves cfg at path the way many editors do: a temporary file
// renamed over the old one.
func writeConfig(t testing.TB, path string, cfg *config.Config) {
	t.Helper()
	b, err := toml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeRaw(t, path, b)
}

func writeRaw(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".swp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// slowServer sends half of body, then waits for release before the rest.
func slowServer(t testing.TB, body []byte) (url string, release chan struct{}, started chan struct{}) {
	t.Helper()
	release = make(chan struct{})
	started = make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/slow" {
			_, _ = w.Write(body)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		half := len(body) / 2
		_, _ = w.Write(body[:half])
		w.(http.Flusher).Flush()
		started <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write(body[half:])
	}))
	t.Cleanup(srv.Close)
	return srv.URL, release, started
}

// TestReloadExitPolicy runs an exit relay from a configuration file under
// a config.Watcher: a new exit policy saved while a download runs lets the
// download finish and refuses the next connection; a broken file keeps the
// running policy and logs the file and line; fixing the file applies it.
func TestReloadExitPolicy(t *testing.T) {
	n := startNet(t, 3, 1, nil)
	exit := n.Relays[2]
	path := filepath.Join(t.TempDir(), "pikcio.toml")
	fileCfg := exit.Config()
	writeConfig(t, path, fileCfg)
	logger, hook := logtest.NewNullLogger()
	w, err := config.NewWatcher(path, nil, exit.Apply, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 4<<20)
	for i := range body {
		body[i] = byte(i * 7)
	}
	base, release, started := slowServer(t, body)
	hc := testutil.SOCKSClient(n.Client.SOCKSAddr().String())

	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := hc.Get(base + "/slow")
		if err != nil {
			done <- result{nil, err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{b, err}
	}()
	select {
	case <-started:
	case r := <-done:
		t.Fatalf("download ended before the reload: %v", r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("download did not start")
	}

	policyIs := func(want []string) func() bool {
		return func() bool { return slices.Equal(exit.Config().Relay.ExitPolicy, want) }
	}
	// The new policy lets the exit reach only port 9 of the loopback.
	closed := []string{"accept 127.0.0.1:9"}
	next := fileCfg.Clone()
	next.Relay.ExitPolicy = closed
	writeConfig(t, path, next)
	testutil.WaitFor(t, 10*time.Second, "the new exit policy", policyIs(closed))

	close(release)
	r := <-done
	if r.err != nil || !bytes.Equal(r.b, body) {
		t.Fatalf("download across the reload: %v, %d bytes of %d", r.err, len(r.b), len(body))
	}
	// The SOCKS port replies success at once (optimistic data), so a
	// refusal resets the connection; the policy is named in the client's
	// recent errors.
	policyRefusals := func() int {
		k := 0
		for _, e := range n.Client.Status().Errors {
			if e.Kind == "policy" {
				k++
			}
		}
		return k
	}
	refusedByPolicy := func(t *testing.T, url string) {
		t.Helper()
		before := policyRefusals()
		if _, err := fetch(t, hc, url); err == nil {
			t.Fatalf("connection to %s succeeded, want a refusal by the exit policy", url)
		}
		testutil.WaitFor(t, 10*time.Second, "the policy refusal in the recent errors", func() bool { return policyRefusals() > before })
	}
	refusedByPolicy(t, base+"/after")

	t.Run("broken file keeps the config", func(t *testing.T) {
		hook.Reset()
		b, _ := toml.Marshal(next)
		broken := bytes.Replace(b, []byte("[relay]\n"), []byte("[relay]\nmax_streams_per_circuit = 'many'\n"), 1)
		if bytes.Equal(broken, b) {
			t.Fatal("could not break the file")
		}
		line := bytes.Count(broken[:bytes.Index(broken, []byte("'many'"))], []byte("\n")) + 1
		writeRaw(t, path, broken)
		want := fmt.Sprintf("pikcio.toml:%d: relay.max_streams_per_circuit", line)
		testutil.WaitFor(t, 10*time.Second, "the rejected reload in the log", func() bool {
			for _, e := range hook.AllEntries() {
				if e.Level == logrus.ErrorLevel && strings.Contains(e.Message, want) {
					return true
				}
			}
			return false
		})
		if !policyIs(closed)() {
			t.Fatalf("policy changed by a broken file: %v", exit.Config().Relay.ExitPolicy)
		}
		refusedByPolicy(t, base+"/after")
	})

	t.Run("fixed file applies", func(t *testing.T) {
		writeConfig(t, path, fileCfg)
		testutil.WaitFor(t, 10*time.Second, "the old exit policy back", policyIs(fileCfg.Relay.ExitPolicy))
		got, err := fetch(t, hc, base+"/again")
		if err != nil || !bytes.Equal(got, body) {
			t.Fatalf("download after the fix: %v", err)
		}
	})
}
