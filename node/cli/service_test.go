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
