package cli

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/pikcio/pikcio/tis"
)

// TestTISInitAndEnroll: tis init prints the root key, and enroll with it
// certifies the node's identity against a TIS serving that directory.
func TestTISInitAndEnroll(t *testing.T) {
	tisDir := filepath.Join(t.TempDir(), "tis")
	code, out, errOut := run("tis", "init", "--data", tisDir)
	if code != exitOK {
		t.Fatalf("tis init: exit %d: %s", code, errOut)
	}
	// Standard output is the bare key and a newline, so that
	// KEY=$(pikcio tis init ...) works; the message is on standard error.
	keyText, ok := strings.CutSuffix(out, "\n")
	if !ok || strings.ContainsAny(keyText, " \n") || !strings.Contains(errOut, "TIS created in") {
		t.Fatalf("stdout %q, stderr %q: want the bare key, and the message on stderr", out, errOut)
	}
	root, err := tis.ParseKey(keyText)
	if err != nil {
		t.Fatalf("root key %q: %v", keyText, err)
	}
	// --dir, the old spelling, is a hidden alias of --data.
	if code, _, errOut := run("tis", "init", "--dir", tisDir); code != exitError || !strings.Contains(errOut, "already") {
		t.Fatalf("second init: exit %d, %q", code, errOut)
	}

	srv, err := tis.NewServer(tisDir, tis.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nodeDir := filepath.Join(t.TempDir(), "node")
	key := tis.FormatKey(root)
	code, out, errOut = run("enroll", "--tis", addr.String(), "--tis-key", key, "--name", "Ada", "--email", "ada@demo.invalid", "--data", nodeDir)
	if code != exitOK {
		t.Fatalf("enroll: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "enrolled") {
		t.Fatalf("enroll output %q", out)
	}
	en, _, err := tis.LoadEnrollment(nodeDir)
	if err != nil {
		t.Fatalf("load enrollment: %v", err)
	}
	if err := en.NodeCert.Verify(root, en.NodeCert.IssuedAt); err != nil {
		t.Fatalf("node certificate: %v", err)
	}

	// Another TIS's key is refused by the client's check of the answer.
	other := filepath.Join(t.TempDir(), "other")
	otherKey, err := tis.Init(other)
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut = run("enroll", "--tis", addr.String(), "--tis-key", tis.FormatKey(otherKey), "--name", "Bob", "--email", "bob@demo.invalid", "--data", filepath.Join(t.TempDir(), "n2"))
	if code != exitError || errOut == "" {
		t.Fatalf("enroll with a foreign key: exit %d, %q", code, errOut)
	}
	// Bad properties are a usage error.
	code, _, errOut = run("enroll", "--tis", addr.String(), "--tis-key", key, "--name", "Bob", "--email", "not-an-email", "--data", filepath.Join(t.TempDir(), "n3"))
	if code != exitUsage {
		t.Fatalf("enroll with a bad e-mail: exit %d, %q", code, errOut)
	}
}
