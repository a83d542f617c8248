package cli

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pikcio/pikcio/service"
)

// TestServiceList: `pikcio service list` names each service key of the
// data directory with its address, and not the client key.
func TestServiceList(t *testing.T) {
	dir := t.TempDir()
	if code, _, errOut := run("service", "list", "--data", dir); code != exitOK || !strings.Contains(errOut, "no services") {
		t.Fatalf("empty: %d %q", code, errOut)
	}
	id, err := service.NewIdentity(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sd := filepath.Join(dir, service.ServicesDir)
	if err := os.MkdirAll(sd, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"web.key": id.Seed(), service.ClientKeyFile: make([]byte, 32)} {
		if err := os.WriteFile(filepath.Join(sd, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := run("service", "list", "--data", dir)
	if code != exitOK || !strings.Contains(out, "web") || !strings.Contains(out, id.Address().Host()) || strings.Contains(out, "client") {
		t.Fatalf("list: %d %q %q", code, out, errOut)
	}
}

// TestServiceAddRemove: `service add` appends a [[services]] block to the
// file (the rest as written), makes the key and prints its address, which
// `service list` shows with the target; `service remove` takes the block
// out again. Bad names, targets off loopback and duplicates are refused
// and leave the file alone.
func TestServiceAddRemove(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(t.TempDir(), "pikcio.toml")
	orig := "# my node\n[node]\ndata_dir = \"" + dir + "\"\n\n# quieter\n[log]\nlevel = \"warn\"\n"
	if err := os.WriteFile(cfgPath, []byte(orig), 0o640); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run("service", "add", "blog", "--target", "127.0.0.1:8080", "--config", cfgPath)
	if code != exitOK {
		t.Fatalf("add: %d %q", code, errOut)
	}
	addr := strings.TrimSpace(out)
	if _, err := service.ParseAddress(strings.TrimSuffix(addr, ".pikcio")); err != nil || !strings.HasSuffix(addr, ".pikcio") {
		t.Fatalf("add printed %q: %v", out, err)
	}
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), orig) || !strings.Contains(string(b), "[[services]]\nname = \"blog\"\ntarget = \"127.0.0.1:8080\"\n") {
		t.Fatalf("file after add:\n%s", b)
	}
	if st, _ := os.Stat(cfgPath); st.Mode().Perm() != 0o640 {
		t.Errorf("file mode %v, was 0640", st.Mode().Perm())
	}
	code, out, errOut = run("service", "list", "--config", cfgPath)
	if code != exitOK || !strings.Contains(out, "blog") || !strings.Contains(out, addr) || !strings.Contains(out, "127.0.0.1:8080") {
		t.Fatalf("list: %d %q %q", code, out, errOut)
	}

	refused := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"twice", []string{"blog", "--target", "127.0.0.1:1"}, exitError, "already"},
		{"lan target", []string{"nas", "--target", "192.168.1.10:80"}, exitUsage, "loopback"},
		{"name target", []string{"nas", "--target", "nas.lan:80"}, exitUsage, "IP address"},
		{"bad name", []string{"My Blog", "--target", "127.0.0.1:1"}, exitUsage, "service name"},
		{"no target", []string{"x"}, exitUsage, "--target is required"},
		{"no name", []string{"--target", "127.0.0.1:1"}, exitUsage, "want"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := run(append([]string{"service", "add", "--config", cfgPath}, tt.args...)...)
			if code != tt.code || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d %q, want %d and %q", code, errOut, tt.code, tt.want)
			}
			if now, _ := os.ReadFile(cfgPath); string(now) != string(b) {
				t.Fatalf("a refused add changed the file:\n%s", now)
			}
		})
	}
	if code, _, errOut := run("service", "add", "blog", "--target", "127.0.0.1:1"); code != exitUsage || !strings.Contains(errOut, "--config is required") {
		t.Fatalf("add without --config: %d %q", code, errOut)
	}
	if code, _, errOut := run("service", "add", "nas", "--target", "192.168.1.10:80", "--allow-lan", "--contacts-only", "--config", cfgPath); code != exitOK {
		t.Fatalf("add --allow-lan: %d %q", code, errOut)
	}
	for _, name := range []string{"nas", "blog"} {
		if code, out, errOut := run("service", "remove", name, "--config", cfgPath); code != exitOK || !strings.Contains(out, "removed "+name) {
			t.Fatalf("remove %s: %d %q %q", name, code, out, errOut)
		}
	}
	if b, _ := os.ReadFile(cfgPath); string(b) != orig {
		t.Fatalf("file after add and remove:\n%q\nwant\n%q", b, orig)
	}
	if code, _, errOut := run("service", "remove", "blog", "--config", cfgPath); code != exitError || !strings.Contains(errOut, "not in the configuration") {
		t.Fatalf("second remove: %d %q", code, errOut)
	}
	// The key stays: adding again prints the same address.
	if code, out, _ := run("service", "add", "blog", "--target", "127.0.0.1:8080", "--config", cfgPath); code != exitOK || strings.TrimSpace(out) != addr {
		t.Fatalf("add again: %d %q, want %s", code, out, addr)
	}
}
