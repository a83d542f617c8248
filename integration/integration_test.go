package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

const startTimeout = 30 * time.Second

// TestProcessNetwork runs a network of separate processes: a bootstrap
// relay, four relays (two of them exits that may reach 127.0.0.1), and a
// client given only the bootstrap relay's address, so that it finds the
// others through the DHT. A file of random bytes comes through the
// client's SOCKS5 proxy intact.
func TestProcessNetwork(t *testing.T) {
	base := t.TempDir()
	boot := start(t, "bootstrap", "relay", "--data", filepath.Join(base, "boot"))
	bootAddr := boot.waitLine(t, "relay address: ", startTimeout)

	var relays []*proc
	for i := range 4 {
		args := []string{"relay", "--data", filepath.Join(base, fmt.Sprintf("relay-%d", i)), "--bootstrap", bootAddr}
		if i >= 2 {
			args = append(args, "--exit", "--exit-policy", "accept 127.0.0.1:*")
		}
		relays = append(relays, start(t, fmt.Sprintf("relay-%d", i), args...))
	}
	for _, r := range relays {
		r.waitLine(t, "relay address: ", startTimeout)
	}

	socks, status := freePort(t), freePort(t)
	client := start(t, "client", "client", "--data", filepath.Join(base, "client"),
		"--bootstrap", bootAddr, "--allow-same-subnet",
		"--socks", socks, "--http", "", "--status", status)
	if got := client.waitLine(t, "SOCKS5 proxy: ", startTimeout); got != socks {
		t.Fatalf("client SOCKS5 proxy on %q, want %q", got, socks)
	}
	client.waitLine(t, "circuit ready", 90*time.Second)

	url, body := fileServer(t, 4<<20)
	got := curl(t, "--socks5-hostname", socks, url)
	checkBody(t, "download through the SOCKS5 proxy", got, body)

	// The client knows every relay, and only from the DHT.
	var st struct {
		Network struct {
			RelaysKnown int `json:"relays_known"`
			ExitsKnown  int `json:"exits_known"`
		} `json:"network"`
		Client struct {
			Circuits []struct {
				Hops      []struct{ ID, Role string } `json:"hops"`
				BytesDown uint64                      `json:"bytes_down"`
			} `json:"circuits"`
		} `json:"client"`
	}
	// It found enough relays for a path at first, and finds the rest at
	// its next refreshes.
	waitStatus(t, status, &st, 30*time.Second, func() bool {
		return st.Network.RelaysKnown == 5 && st.Network.ExitsKnown == 2
	})
	var carried uint64
	for _, c := range st.Client.Circuits {
		if len(c.Hops) != 3 || c.Hops[2].Role != "exit" {
			t.Fatalf("circuit %+v", c)
		}
		carried += c.BytesDown
	}
	if carried < uint64(len(body)) {
		t.Fatalf("circuits carried %d bytes down, want at least %d", carried, len(body))
	}

	for _, p := range append([]*proc{client, boot}, relays...) {
		if code, took := p.stop(t, syscall.SIGTERM, 12*time.Second); code != 0 {
			t.Fatalf("%s exited %d after SIGTERM (%v)", p.name, code, took)
		}
	}
}

// TestDemo runs `pikcio demo` as the README says, on free ports, fetches
// through its SOCKS5 and HTTP proxies, reads its status, and stops it with
// SIGINT: it exits 0 within 5 seconds, leaves no process behind and
// removes its temporary data directory.
func TestDemo(t *testing.T) {
	socks, httpAddr, status := freePort(t), freePort(t), freePort(t)
	demo := start(t, "demo", "demo", "--socks", socks, "--http", httpAddr, "--status", status,
		"--exit-policy", "accept 127.0.0.1:*")
	if got := demo.waitLine(t, "SOCKS5 proxy: ", startTimeout); got != socks {
		t.Fatalf("SOCKS5 proxy on %q, want %q", got, socks)
	}
	data := strings.TrimSuffix(demo.waitLine(t, "data directory: ", startTimeout), " (removed on exit)")
	demo.waitLine(t, "First circuit ready", 90*time.Second)

	url, body := fileServer(t, 2<<20)
	cases := []struct {
		name string
		args []string
	}{
		{"SOCKS5", []string{"--socks5-hostname", socks}},
		{"HTTP proxy", []string{"-x", "http://" + httpAddr}},
		{"HTTP CONNECT", []string{"-p", "-x", "http://" + httpAddr}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkBody(t, tc.name, curl(t, append(tc.args, url)...), body)
		})
	}

	var st struct {
		Client struct {
			Ready    bool `json:"ready"`
			Circuits []struct {
				Hops []struct{ ID, Role string } `json:"hops"`
			} `json:"circuits"`
		} `json:"client"`
		Network struct {
			RelaysKnown int `json:"relays_known"`
		} `json:"network"`
	}
	waitStatus(t, status, &st, 30*time.Second, func() bool {
		return st.Client.Ready && len(st.Client.Circuits) > 0 && st.Network.RelaysKnown == 5
	})

	// SIGUSR1 is "new identity": every circuit is retired for new
	// connections, and the next one gets a new circuit.
	var pool struct {
		Client struct {
			Pool struct {
				Builds uint64 `json:"builds"`
			} `json:"pool"`
		} `json:"client"`
	}
	waitStatus(t, status, &pool, 10*time.Second, func() bool { return true })
	before := pool.Client.Pool.Builds
	if err := demo.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	demo.waitLine(t, "New identity", 10*time.Second)
	checkBody(t, "SOCKS5 after new identity", curl(t, "--socks5-hostname", socks, url), body)
	waitStatus(t, status, &pool, 30*time.Second, func() bool { return pool.Client.Pool.Builds > before })

	code, took := demo.stop(t, syscall.SIGINT, 12*time.Second)
	if code != 0 {
		t.Fatalf("demo exited %d after SIGINT", code)
	}
	t.Logf("demo stopped %v after SIGINT", took)
	if pids := processesWith(socks); len(pids) > 0 {
		t.Fatalf("processes left with %s in their command line: %v", socks, pids)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatalf("temporary data directory %s still there: %v", data, err)
	}
}

// TestSIGHUP: a relay run with --config reloads the file on SIGHUP. The
// file is reached through a symbolic link in another directory, so that
// the file watcher (which watches the link's directory) does not see the
// change and only the signal can make the relay read it.
func TestSIGHUP(t *testing.T) {
	dir, real := t.TempDir(), t.TempDir()
	target := filepath.Join(real, "pikcio.toml")
	link := filepath.Join(dir, "pikcio.toml")
	write := func(policy string) {
		cfg := fmt.Sprintf("[node]\ndata_dir = %q\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n\n[relay]\nenabled = true\nexit = true\nexit_policy = [%q]\n",
			filepath.Join(dir, "data"), policy)
		if err := os.WriteFile(target, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("accept 127.0.0.1:*")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	status := freePort(t)
	relay := start(t, "relay", "relay", "--config", link, "--status", status)
	relay.waitLine(t, "relay address: ", startTimeout)

	policy := func() []string {
		var st struct {
			Relay struct {
				ExitPolicy []string `json:"exit_policy"`
			} `json:"relay"`
		}
		getJSON(t, "http://"+status+"/api/status", &st)
		return st.Relay.ExitPolicy
	}
	if got := policy(); !slices.Equal(got, []string{"accept 127.0.0.1:*"}) {
		t.Fatalf("exit policy at start %q", got)
	}

	write("reject *:25")
	time.Sleep(500 * time.Millisecond) // five times the watcher's debounce
	if got := policy(); !slices.Equal(got, []string{"accept 127.0.0.1:*"}) {
		t.Fatalf("exit policy changed without SIGHUP: %q; the test cannot tell SIGHUP's work", got)
	}
	if err := relay.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	relay.waitStderr(t, "config reloaded: relay.exit_policy changed", 10*time.Second)
	if got := policy(); !slices.Equal(got, []string{"reject *:25"}) {
		t.Fatalf("exit policy after SIGHUP %q", got)
	}

	// A broken file on SIGHUP is refused with its line, and the relay runs on.
	if err := os.WriteFile(target, []byte("[relay]\nexit_policy = [\"accept everything\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := relay.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	relay.waitStderr(t, "pikcio.toml:2: relay.exit_policy", 10*time.Second)
	if got := policy(); !slices.Equal(got, []string{"reject *:25"}) {
		t.Fatalf("exit policy after a broken file %q", got)
	}
	if code, _ := relay.stop(t, syscall.SIGINT, 12*time.Second); code != 0 {
		t.Fatalf("relay exited %d", code)
	}
}

// TestCommandLine checks the binary's exit codes.
func TestCommandLine(t *testing.T) {
	cases := []struct {
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{[]string{"version"}, 0, "pikcio "},
		{[]string{"demo", "--help"}, 0, "--relays"},
		{[]string{"client", "--help"}, 0, "--socks"},
		{[]string{"relay", "--help"}, 0, "--exit-policy"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"relay", "--frob"}, 2, "not defined: -frob"},
		{[]string{"client", "stray"}, 2, `unexpected argument "stray"`},
		{nil, 2, "Usage:"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			p := start(t, "pikcio", tc.args...)
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Fatal("still running")
			}
			if code := p.cmd.ProcessState.ExitCode(); code != tc.code {
				t.Fatalf("exit %d, want %d", code, tc.code)
			}
			if !strings.Contains(p.out()+p.errOut(), tc.out) {
				t.Fatalf("output lacks %q:\n%s%s", tc.out, p.out(), p.errOut())
			}
		})
	}
}

// waitStatus reads the status into v until cond holds.
func waitStatus(t *testing.T, addr string, v any, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		getJSON(t, "http://"+addr+"/api/status", v)
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after %v: %+v", timeout, v)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
