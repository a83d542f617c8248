package cli

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/token"
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

	mail := &tis.DemoMailer{Quiet: true}
	addr := serveTIS(t, tisDir, tis.ServerOptions{Mailer: mail})
	nodeDir := filepath.Join(t.TempDir(), "node")
	key := tis.FormatKey(root)
	// The first run gets a code mailed; no terminal here to ask for it.
	var o, eo strings.Builder
	code = runEnroll(&env{stdout: &o, stderr: &eo}, []string{"--tis", addr.String(), "--tis-key", key, "--name", "Ada", "--email", "ada@demo.invalid", "--data", nodeDir})
	if code != exitError || !strings.Contains(eo.String(), "--code") {
		t.Fatalf("enroll without a code: exit %d: %s", code, eo.String())
	}
	mailed, err := mail.Code(context.Background(), "ada@demo.invalid")
	if err != nil {
		t.Fatal(err)
	}
	code, _, errOut = run("enroll", "--tis", addr.String(), "--tis-key", key, "--name", "Ada", "--email", "ada@demo.invalid", "--data", nodeDir, "--code", "0"+mailed[1:])
	if mailed[0] != '0' && (code != exitError || !strings.Contains(errOut, "wrong")) {
		t.Fatalf("enroll with a wrong code: exit %d: %s", code, errOut)
	}
	code, out, errOut = run("enroll", "--tis", addr.String(), "--tis-key", key, "--name", "Ada", "--email", "ada@demo.invalid", "--data", nodeDir, "--code", mailed)
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

	// Asked on the terminal: the code typed in after the mail came.
	o.Reset()
	eo.Reset()
	typed := &typedCode{code: func() string { c, _ := mail.Code(context.Background(), "bea@demo.invalid"); return c + "\n" }}
	code = runEnroll(&env{stdin: typed, stdout: &o, stderr: &eo}, []string{"--tis", addr.String(), "--tis-key", key, "--name", "Bea", "--email", "bea@demo.invalid", "--data", filepath.Join(t.TempDir(), "bea")})
	if code != exitOK || !strings.Contains(eo.String(), "Code: ") {
		t.Fatalf("enroll with a prompt: exit %d: %s", code, eo.String())
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

// typedCode is a terminal where the person types the code they got by
// mail: it reads the code only when asked.
type typedCode struct {
	code func() string
	r    io.Reader
}

func (t *typedCode) Read(p []byte) (int, error) {
	if t.r == nil {
		t.r = strings.NewReader(t.code())
	}
	return t.r.Read(p)
}

func TestSecretFromEnv(t *testing.T) {
	t.Setenv(secretEnv, "")
	if b, err := secretFromEnv(); b != nil || err != nil {
		t.Fatalf("unset: %x, %v", b, err)
	}
	t.Setenv(secretEnv, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
	if b, err := secretFromEnv(); len(b) != 32 || err != nil {
		t.Fatalf("32 bytes: %x, %v", b, err)
	}
	t.Setenv(secretEnv, "c2hvcnQ=")
	if _, err := secretFromEnv(); err == nil {
		t.Fatal("a short secret accepted")
	}
}

// TestSecretFileApart: "tis init --secret-file" keeps the secret out of
// the directory; "tis seed" and "tis attest" work without it, and "tis
// serve" refuses to start without it.
func TestSecretFileApart(t *testing.T) {
	base := t.TempDir()
	dir, secret := filepath.Join(base, "tis"), filepath.Join(base, "secret")
	if code, _, errOut := run("tis", "init", "--data", dir, "--secret-file", secret); code != exitOK {
		t.Fatalf("init: %d %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, tis.SecretFile)); !os.IsNotExist(err) {
		t.Fatalf("secret in the directory: %v", err)
	}
	if code, _, errOut := run("tis", "seed", "list", "--data", dir); code != exitOK {
		t.Fatalf("seed list: %d %s", code, errOut)
	}
	if code, _, errOut := run("tis", "serve", "--data", dir, "--demo-codes"); code != exitError || !strings.Contains(errOut, "secret") {
		t.Fatalf("serve without the secret: %d %s", code, errOut)
	}
}

// serveTIS serves the TIS initialized in dir, with its token issuer, on
// 127.0.0.1 until the test ends.
func serveTIS(t *testing.T, dir string, opts tis.ServerOptions) net.Addr {
	t.Helper()
	srv, err := tis.NewServer(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if _, err := token.Mount(srv, dir, token.IssuerOptions{}); err != nil {
		t.Fatal(err)
	}
	addr, err := srv.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return addr
}
