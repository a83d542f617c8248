package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runToEnd runs a pikcio command to its end (90 s at most).
func runToEnd(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := start(t, name, args...)
	select {
	case <-p.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("%s still running after 90s", name)
	}
	return p
}

// runOnce runs a pikcio command to its end and returns its stdout; it
// fails the test unless the command exits 0.
func runOnce(t *testing.T, name string, args ...string) string {
	t.Helper()
	p := runToEnd(t, name, args...)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("%s exited %d:\n%s", name, code, p.errOut())
	}
	return p.out()
}

// runFailing runs a pikcio command that is to stop with an error whose
// message holds want.
func runFailing(t *testing.T, name, want string, args ...string) {
	t.Helper()
	p := runToEnd(t, name, args...)
	if code := p.cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(p.errOut(), want) {
		t.Fatalf("%s exited %d, want an error with %q:\n%s", name, code, want, p.errOut())
	}
}

var demoCode = regexp.MustCompile(`enrollment code for (\S+) is (\d{8})`)

// mailedCode is the last code the TIS (run with --demo-codes) printed for
// email in its log.
func mailedCode(t *testing.T, serve *proc, email string) string {
	t.Helper()
	code := ""
	for _, m := range demoCode.FindAllStringSubmatch(serve.errOut(), -1) {
		if m[1] == email {
			code = m[2]
		}
	}
	if code == "" {
		t.Fatalf("no code for %s in the TIS log:\n%s", email, serve.errOut())
	}
	return code
}

// TestTISEnrollment runs the whole TIS path through the command: `tis
// init`, `tis serve`, `enroll` of relays 0 to 2, enrollment at the first
// start (--enroll-name, --enroll-email, then --enroll-code with the code
// the TIS printed in demo mode) of relay 3 and the client, then a
// network whose relays and client join through the bootstraps the TIS
// handed out at enrollment (no --bootstrap), with certificates required
// everywhere, and a download through it.
func TestTISEnrollment(t *testing.T) {
	base := t.TempDir()
	tisDir := filepath.Join(base, "tis")
	out := runOnce(t, "tis init", "tis", "init", "--data", tisDir)
	key := strings.TrimSpace(out) // the bare key: KEY=$(pikcio tis init ...)
	if key == "" || strings.ContainsAny(key, " \n") {
		t.Fatalf("tis init printed %q, want the bare root key", out)
	}

	tisAddr := freePort(t)
	serve := start(t, "tis serve", "tis", "serve", "--data", tisDir, "--listen", tisAddr, "--demo-codes")
	url := serve.waitLine(t, "TIS serving on ", startTimeout)
	if url != "http://"+tisAddr {
		t.Fatalf("TIS on %q, want http://%s", url, tisAddr)
	}
	conf := filepath.Join(base, "pikcio.toml")
	toml := fmt.Sprintf("[tis]\nroot_key = %q\nurl = %q\nrevocation_refresh = \"5s\"\n", key, url)
	if err := os.WriteFile(conf, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	enroll := func(name, dir string) {
		t.Helper()
		args := []string{"enroll", "--tis", tisAddr, "--tis-key", key, "--name", name, "--email", name + "@demo.invalid", "--data", dir}
		runFailing(t, "enroll "+name, "--code", args...)
		out := runOnce(t, "enroll "+name, append(args, "--code", mailedCode(t, serve, name+"@demo.invalid"))...)
		if !strings.Contains(out, "enrolled") {
			t.Fatalf("enroll %s:\n%s", name, out)
		}
	}

	// The first relay, which the TIS then hands out as the bootstrap.
	bootDir := filepath.Join(base, "relay-0")
	enroll("relay-0", bootDir)
	boot := start(t, "relay-0", "relay", "--config", conf, "--data", bootDir)
	bootAddr := boot.waitLine(t, "relay address: ", startTimeout)
	if code, took := serve.stop(t, syscall.SIGINT, 12*time.Second); code != 0 {
		t.Fatalf("tis serve exited %d after SIGINT (%v)", code, took)
	}
	serve = start(t, "tis serve 2", "tis", "serve", "--data", tisDir, "--listen", tisAddr, "--bootstrap", bootAddr, "--demo-codes")
	serve.waitLine(t, "TIS serving on ", startTimeout)

	procs := []*proc{boot}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("relay-%d", i)
		dir := filepath.Join(base, name)
		args := []string{"relay", "--config", conf, "--data", dir}
		if i == 3 {
			// Enrolls itself at its first start: the first has the code
			// mailed, the second enters it.
			args = append(args, "--enroll-name", name, "--enroll-email", name+"@demo.invalid")
			runFailing(t, name+" without a code", "code was mailed", args...)
			args = append(args, "--enroll-code", mailedCode(t, serve, name+"@demo.invalid"))
		} else {
			enroll(name, dir)
		}
		if i >= 2 {
			args = append(args, "--exit", "--exit-policy", "accept 127.0.0.1:*")
		}
		r := start(t, name, args...)
		r.waitLine(t, "relay address: ", startTimeout)
		procs = append(procs, r)
	}
	clientDir := filepath.Join(base, "client")
	socks := freePort(t)
	clientArgs := []string{"client", "--config", conf, "--data", clientDir,
		"--allow-same-subnet", "--socks", socks, "--http", "", "--status", "",
		"--enroll-name", "demo-client", "--enroll-email", "demo-client@demo.invalid"}
	runFailing(t, "client without a code", "code was mailed", clientArgs...)
	client := start(t, "client", append(clientArgs, "--enroll-code", mailedCode(t, serve, "demo-client@demo.invalid"))...)
	client.waitLine(t, "circuit ready", 90*time.Second)
	procs = append(procs, client)

	fileURL, body := fileServer(t, 1<<20)
	checkBody(t, "download through an enrolled network", curl(t, "--socks5-hostname", socks, fileURL), body)

	for _, p := range append(procs, serve) {
		if code, took := p.stop(t, syscall.SIGTERM, 12*time.Second); code != 0 {
			t.Fatalf("%s exited %d after SIGTERM (%v)", p.name, code, took)
		}
	}
}
