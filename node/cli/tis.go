package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"syscall"
	"time"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/tis"
)

// enrollTimeout bounds `pikcio enroll`.
const enrollTimeout = time.Minute

// runTIS runs the subcommands of `pikcio tis`.
func runTIS(e *env, args []string) int {
	fs := newFlagSet("tis", "init|serve [flags]", `Run pikcio's Trusted Identification System (TIS), which enrolls users:

  pikcio tis init --dir DIR     create a TIS (root key and secret) in DIR
  pikcio tis serve --dir DIR    serve enrollments and revocations over HTTP

Run "pikcio tis init --help" or "pikcio tis serve --help" for their flags.`)
	if len(args) == 0 {
		return usageError(e, fs, "want a subcommand: init or serve")
	}
	switch args[0] {
	case "init":
		return runTISInit(e, args[1:])
	case "serve":
		return runTISServe(e, args[1:])
	case "-h", "-help", "--help", "help":
		fs.usage(e.stdout)
		return exitOK
	}
	return usageError(e, fs, "unknown subcommand %q: want init or serve", args[0])
}

func runTISInit(e *env, args []string) int {
	fs := newFlagSet("tis init", "--dir DIR", `Create a TIS in DIR (made mode 0700): a new root signing key and the secret
of its keyed hashes, each in a file of mode 0600. Prints the root public key:
nodes pin it (--tis-key, tis.root_key). Keep DIR safe and back up hash.secret
apart from the rest. An existing TIS is never overwritten.`)
	dir := fs.String("dir", "", "TIS `directory`")
	if code, done := parse(e, fs, args); done {
		return code
	}
	if *dir == "" {
		return usageError(e, fs, "--dir is required")
	}
	pub, err := tis.Init(*dir)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", fs.Name(), err)
		return exitError
	}
	fmt.Fprintf(e.stdout, "TIS created in %s\nroot key: %s\n", *dir, tis.FormatKey(pub))
	return exitOK
}

func runTISServe(e *env, args []string) int {
	fs := newFlagSet("tis serve", "--dir DIR [flags]", `Serve the TIS in DIR (made by "pikcio tis init"): enrollments, the signed
revocation list and the root key, over HTTP on a loopback address, or HTTPS
with --tls-cert and --tls-key. Ctrl-C stops it.`)
	dir := fs.String("dir", "", "TIS `directory`")
	listen := fs.String("listen", "127.0.0.1:7070", "`address` host:port to serve on")
	var boots listFlag
	fs.Var(&boots, "bootstrap", "`multiaddr` ending in /p2p/<peer id> given to every enrolled node to join the network; repeatable or comma-separated")
	certFile := fs.String("tls-cert", "", "TLS certificate `file` (PEM); with --tls-key, serve HTTPS")
	keyFile := fs.String("tls-key", "", "TLS private key `file` (PEM)")
	if code, done := parse(e, fs, args); done {
		return code
	}
	if *dir == "" {
		return usageError(e, fs, "--dir is required")
	}
	if (*certFile == "") != (*keyFile == "") {
		return usageError(e, fs, "--tls-cert and --tls-key go together")
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		return usageError(e, fs, "--listen %q: want host:port", *listen)
	}
	srv, err := tis.NewServer(*dir, tis.ServerOptions{
		Bootstraps:  []string(boots),
		TLSCertFile: *certFile,
		TLSKeyFile:  *keyFile,
	})
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", fs.Name(), err)
		return exitError
	}
	addr, err := srv.Listen(*listen)
	if err != nil {
		_ = srv.Close()
		fmt.Fprintf(e.stderr, "%s: %v\n", fs.Name(), err)
		if errors.Is(err, tis.ErrNotLoopback) {
			return exitUsage
		}
		return exitError
	}
	fmt.Fprintf(e.stdout, "root key: %s\n", tis.FormatKey(srv.PublicKey()))
	fmt.Fprintf(e.stdout, "TIS serving on %s\n", tis.BaseURL(addr.String()))
	for s := range e.signals {
		if s == syscall.SIGHUP || s == syscall.SIGUSR1 {
			continue
		}
		break
	}
	fmt.Fprintln(e.stdout, "Stopping.")
	return shutdown(e, srv.Close)
}

func runEnroll(e *env, args []string) int {
	fs := newFlagSet("enroll", "--tis ADDR --tis-key KEY --name NAME --email EMAIL [--data DIR]", `Enroll this node with a TIS: it certifies the node's libp2p identity key (in
the data directory, created if the node never ran) and a Matryoshka key
created next to it. The name and e-mail are sent to the TIS only; the node
keeps the certificates (tis-enrollment.bin) and never stores the name or
e-mail. Then set tis.root_key (and tis.url) in the configuration file.`)
	addr := fs.String("tis", "", "TIS `address`: host:port or a URL")
	key := fs.String("tis-key", "", "the TIS root `key` (printed by \"pikcio tis init\")")
	name := fs.String("name", "", "your `name`")
	email := fs.String("email", "", "your e-mail `address`")
	dir := fs.String("dir", "", "data `directory` of the node (default $XDG_DATA_HOME/pikcio)")
	if code, done := parse(e, fs, args); done {
		return code
	}
	switch {
	case *addr == "":
		return usageError(e, fs, "--tis is required")
	case *key == "":
		return usageError(e, fs, "--tis-key is required")
	case *name == "":
		return usageError(e, fs, "--name is required")
	case *email == "":
		return usageError(e, fs, "--email is required")
	}
	root, err := tis.ParseKey(*key)
	if err != nil {
		return usageError(e, fs, "--tis-key: %v", err)
	}
	if *dir != "" && !filepath.IsAbs(*dir) {
		abs, err := filepath.Abs(*dir)
		if err != nil {
			return usageError(e, fs, "--dir: %v", err)
		}
		*dir = abs
	}
	return enroll(e, fs.Name(), tis.BaseURL(*addr), root, *dir, *name, *email)
}

func enroll(e *env, name, url string, root ed25519.PublicKey, dir, who, email string) int {
	dataDir, err := config.NodeConfig{DataDir: dir}.ResolveDataDir()
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		return exitError
	}
	priv, err := node.LoadOrCreateIdentity(dataDir)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		return exitError
	}
	ctx, cancel := context.WithTimeout(context.Background(), enrollTimeout)
	defer cancel()
	en, err := tis.EnrollNode(ctx, url, root, priv, dataDir, who, email)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		if errors.Is(err, tis.ErrBadProperties) {
			return exitUsage
		}
		return exitError
	}
	fmt.Fprintf(e.stdout, "enrolled: node certificate %s, valid until %s\n", en.NodeCert.Serial, en.NodeCert.Expires.UTC().Format(time.RFC3339))
	fmt.Fprintf(e.stdout, "data directory: %s\n", dataDir)
	for _, b := range en.Bootstraps {
		fmt.Fprintf(e.stdout, "bootstrap: %s\n", b)
	}
	return exitOK
}
