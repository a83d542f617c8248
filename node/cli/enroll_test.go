package cli

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/tis"
)

// syncBuffer is an io.Writer read while a command writes to it.
type syncBuffer = testutil.SyncBuffer

// running is a client or relay command run until the test signals it.
type running struct {
	out, errOut syncBuffer
	sig         chan os.Signal
	done        chan int
}

func start(t *testing.T, cmd func(*env, []string) int, args ...string) *running {
	t.Helper()
	r := &running{sig: make(chan os.Signal, 1), done: make(chan int, 1)}
	e := &env{stdout: &r.out, stderr: &r.errOut, signals: r.sig}
	go func() { r.done <- cmd(e, args) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// waitOut waits until stdout matches re and returns the first submatch.
func (r *running) waitOut(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(r.out.String()); m != nil {
			return m[len(m)-1]
		}
		select {
		case code := <-r.done:
			r.done <- code
			t.Fatalf("exited %d waiting for %s; stderr:\n%s", code, re, r.errOut.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("no %s after 60s; stdout:\n%s\nstderr:\n%s", re, r.out.String(), r.errOut.String())
	return ""
}

// stop sends SIGTERM and waits for the exit code.
func (r *running) stop(t *testing.T) int {
	t.Helper()
	select {
	case r.sig <- syscall.SIGTERM:
	default:
	}
	select {
	case code := <-r.done:
		r.done <- code
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30s after SIGTERM")
		return -1
	}
}

var (
	relayAddrRE = regexp.MustCompile(`relay address: (\S+)`)
	readyRE     = regexp.MustCompile(`(circuit ready)`)
)

// TestEnrollFlags: `pikcio relay` and `pikcio client` with --enroll-name
// and --enroll-email enroll at their first start and build a circuit
// through a guard that requires certificates; a second start needs no
// flags; no file of the data directories holds the name or the e-mail.
func TestEnrollFlags(t *testing.T) {
	tisDir := filepath.Join(t.TempDir(), "tis")
	root, err := tis.Init(tisDir)
	if err != nil {
		t.Fatal(err)
	}
	addr := serveTIS(t, tisDir, tis.ServerOptions{OpenEnrollment: true})
	conf := func(name string) (cfgPath, dataDir string) {
		dir := t.TempDir()
		dataDir = filepath.Join(dir, "data")
		cfgPath = filepath.Join(dir, name+".toml")
		body := fmt.Sprintf("[node]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\ndata_dir = %q\n\n[log]\nlevel = \"warn\"\n\n[tis]\nroot_key = %q\nurl = %q\n",
			dataDir, tis.FormatKey(root), addr.String())
		if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return cfgPath, dataDir
	}
	firstCfg, firstData := conf("first")
	exitCfg, exitData := conf("exit")
	clientCfg, clientData := conf("client")
	clientArgs := func(boot string, extra ...string) []string {
		return append([]string{"--config", clientCfg, "--bootstrap", boot, "--hops", "1", "--allow-same-subnet",
			"--socks", "127.0.0.1:0", "--http", "", "--status", ""}, extra...)
	}

	// The network's first relay, an exit joined through it and a client.
	first := start(t, runRelay, "--config", firstCfg, "--enroll-name", "Grace Hopper", "--enroll-email", "Grace.Hopper@Navy.invalid")
	boot := first.waitOut(t, relayAddrRE)
	exit := start(t, runRelay, "--config", exitCfg, "--exit", "--bootstrap", boot, "--enroll-name", "Edsger Dijkstra", "--enroll-email", "ewd@dijkstra.invalid")
	exit.waitOut(t, relayAddrRE)
	client := start(t, runClient, clientArgs(boot, "--enroll-name", "Ada Lovelace", "--enroll-email", "ada@lovelace.invalid")...)
	client.waitOut(t, readyRE)
	for _, r := range []*running{client, exit, first} {
		if code := r.stop(t); code != exitOK {
			t.Fatalf("exit %d: %s", code, r.errOut.String())
		}
	}
	for _, dir := range []string{firstData, exitData, clientData} {
		if _, _, err := tis.LoadEnrollment(dir); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
	}

	// Second start: no enrollment flags.
	first = start(t, runRelay, "--config", firstCfg)
	boot = first.waitOut(t, relayAddrRE)
	exit = start(t, runRelay, "--config", exitCfg, "--exit", "--bootstrap", boot)
	exit.waitOut(t, relayAddrRE)
	client = start(t, runClient, clientArgs(boot)...)
	client.waitOut(t, readyRE)
	for _, r := range []*running{client, exit, first} {
		r.stop(t)
	}

	for _, dir := range []string{firstData, exitData, clientData} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			low := strings.ToLower(string(data))
			for _, s := range []string{"grace", "hopper", "navy.invalid", "edsger", "dijkstra", "lovelace"} {
				if strings.Contains(low, s) {
					return fmt.Errorf("%s holds %q", path, s)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
