package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/testutil"
)

// binary is the pikcio command built by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pikcio-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "pikcio")
	code := 1
	if err := build(binary); err != nil {
		fmt.Fprintln(os.Stderr, err)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles ./cmd/pikcio to out.
func build(out string) error {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", out, "./cmd/pikcio")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/pikcio: %w\n%s", err, stderr.String())
	}
	return nil
}

// proc is a running pikcio process.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // of Wait, once done is closed

	mu     sync.Mutex
	stdout bytes.Buffer
	stderr bytes.Buffer
}

type syncWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// start runs the binary with args; the test's cleanup kills it if it is
// still running, and logs its output if the test failed.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(binary, args...), done: make(chan struct{})}
	home := t.TempDir()
	p.cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + home, "XDG_DATA_HOME=" + filepath.Join(home, "data")}
	p.cmd.Stdout = syncWriter{&p.mu, &p.stdout}
	p.cmd.Stderr = syncWriter{&p.mu, &p.stderr}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, p.out(), name, p.errOut())
		}
		keepLog(t, name, p)
	})
	return p
}

// keepLog writes p's output to a file in PIKCIO_TEST_LOG_DIR, when it is
// set, so that a passing run's decisions can be read too.
func keepLog(t *testing.T, name string, p *proc) {
	dir := os.Getenv("PIKCIO_TEST_LOG_DIR")
	if dir == "" {
		return
	}
	f, err := os.CreateTemp(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())+"-"+name+"-*.log")
	if err != nil {
		t.Logf("keep the log of %s: %v", name, err)
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s stdout:\n%s\n%s stderr:\n%s", name, p.out(), name, p.errOut())
}

func (p *proc) out() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stdout.String()
}

func (p *proc) errOut() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitLine waits until stdout has a line starting with prefix and returns
// the rest of that line.
func (p *proc) waitLine(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range strings.Split(p.out(), "\n") {
			if strings.HasPrefix(l, prefix) {
				return strings.TrimSpace(strings.TrimPrefix(l, prefix))
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited (%v) before printing %q", p.name, p.err, prefix)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q line after %v", p.name, prefix, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStderr waits until stderr contains s.
func (p *proc) waitStderr(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.errOut(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q in stderr after %v", p.name, s, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends sig and waits for the process to exit within timeout. It
// returns the exit code and how long the exit took.
func (p *proc) stop(t *testing.T, sig os.Signal, timeout time.Duration) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(timeout):
		t.Fatalf("%s still running %v after %v", p.name, timeout, sig)
	}
	return p.cmd.ProcessState.ExitCode(), time.Since(start)
}

// freePort returns a loopback address with a port that was free a moment
// ago and that no earlier call of this test binary returned: the kernel
// can hand a port just closed out again at once, and a test that took
// two in a row then gave one process the same address twice (TestDemo in
// CI: "client.http_listen ... same address as client.socks_listen").
func freePort(t *testing.T) string {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		handedOut.Lock()
		seen := handedOut.ports[addr]
		if !seen {
			handedOut.ports[addr] = true
		}
		handedOut.Unlock()
		if !seen {
			return addr
		}
	}
	t.Fatal("no loopback port that was not handed out before")
	return ""
}

// handedOut is every address freePort returned.
var handedOut = struct {
	sync.Mutex
	ports map[string]bool
}{ports: map[string]bool{}}

// fileServer serves size random bytes at /file on 127.0.0.1.
func fileServer(t *testing.T, size int) (url string, body []byte) {
	return testutil.FileServer(t, size)
}

func needCurl(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is not installed; .ci/run installs it")
		}
		t.Skip("curl is not installed")
	}
	return p
}

// curl fetches url with args into a file and returns its content.
func curl(t *testing.T, args ...string) []byte {
	t.Helper()
	path := needCurl(t)
	out := filepath.Join(t.TempDir(), "body")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append([]string{"-q", "--silent", "--show-error", "--fail", "--noproxy", "", "--max-time", "50", "-o", out}, args...)
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + t.TempDir()}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("curl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkBody compares every byte.
func checkBody(t *testing.T, what string, got, want []byte) {
	t.Helper()
	if !bytes.Equal(got, want) {
		n := 0
		for n < len(got) && n < len(want) && got[n] == want[n] {
			n++
		}
		t.Fatalf("%s: got %d bytes, want %d; first difference at byte %d", what, len(got), len(want), n)
	}
}

// processesWith lists the PIDs of running processes whose command line
// contains s.
func processesWith(s string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(s)) {
			// A zombie has an empty cmdline; one that still shows is alive.
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestFreePortsDistinct: freePort never returns one address twice, which
// the kernel alone does within a few hundred picks.
func TestFreePortsDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		a := freePort(t)
		if seen[a] {
			t.Fatalf("freePort returned %s twice", a)
		}
		seen[a] = true
	}
}
