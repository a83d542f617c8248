package proxy_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pikcio/pikcio/proxy"
	"github.com/pikcio/pikcio/proxy/proxytest"
)

const curlPath = "/usr/bin/curl"

// curl runs curl with a clean environment (no proxy variables, no .curlrc)
// and returns its stdout.
func curl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if _, err := os.Stat(curlPath); err != nil {
		t.Skip("no curl at " + curlPath)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	args = append([]string{"-q", "--silent", "--show-error", "--noproxy", "", "--max-time", "10"}, args...)
	cmd := exec.CommandContext(ctx, curlPath, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Logf("curl %v: %v: %s", args, err, stderr.String())
	}
	return string(out), err
}

func TestCurl(t *testing.T) {
	checkLeaks(t)
	e := newEnv(t, proxy.PoolOptions{}, proxy.ServerOptions{})
	b := newBackend(t)
	url := "http://" + proxytest.ExitOnlyName + ":" + strconv.Itoa(int(b.port)) + "/"

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"socks5-hostname", []string{"--socks5-hostname", e.socksAddr, url}, oneKiB()},
		{"socks5-hostname with credentials", []string{"--socks5-hostname", e.socksAddr, "--proxy-user", "alice:pw", url}, oneKiB()},
		{"socks5h URL", []string{"-x", "socks5h://" + e.socksAddr, url}, oneKiB()},
		{"http proxy", []string{"-x", "http://" + e.httpAddr, url}, oneKiB()},
		{"http proxy with credentials", []string{"-x", "http://bob:pw@" + e.httpAddr, url}, oneKiB()},
		{"http proxy CONNECT tunnel", []string{"-p", "-x", "http://" + e.httpAddr, url}, oneKiB()},
		{"CONNECT on the SOCKS port", []string{"-p", "-x", "http://" + e.socksAddr, url}, oneKiB()},
		{"CONNECT on the SOCKS port with credentials", []string{"-p", "-x", "http://carol:pw@" + e.socksAddr, url}, oneKiB()},
		{"http to the SOCKS port", []string{"-x", "http://" + e.socksAddr, "-o", "/dev/null", "-w", "%{http_code}", url}, "501"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := countOpened(e.builder, proxytest.ExitOnlyName+":"+strconv.Itoa(int(b.port)))
			got, err := curl(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			after := countOpened(e.builder, proxytest.ExitOnlyName+":"+strconv.Itoa(int(b.port)))
			wantOpens := 1
			if tc.want == "501" {
				wantOpens = 0
			}
			if after-before != wantOpens {
				t.Fatalf("the exit got %d opens for the name, want %d", after-before, wantOpens)
			}
		})
	}
	// Isolation groups: SOCKS without credentials (also CONNECT on the
	// SOCKS port), alice and carol on the SOCKS port, HTTP without
	// credentials, bob on the HTTP port.
	if g := e.pool.Stats().Groups; g != 5 {
		t.Fatalf("%d isolation groups, want 5", g)
	}
}
