package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/internal/datadir"
	"github.com/pikcio/pikcio/internal/privfile"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/tis/token"
	"github.com/pikcio/pikcio/trust"
)

// enrollTimeout bounds `pikcio enroll`.
const enrollTimeout = time.Minute

// runTIS runs the subcommands of `pikcio tis`.
func runTIS(e *env, args []string) int {
	fs := newFlagSet("tis", "init|serve|attest|seed [flags]", `Run pikcio's Trusted Identification System (TIS), which enrolls users:

  pikcio tis init --data DIR             create a TIS (root key and secret) in DIR
  pikcio tis serve --data DIR            serve enrollments and revocations over HTTP
  pikcio tis attest --data DIR ID KIND   attest that an identity passed a check
  pikcio tis seed add|remove|list --data DIR [ID...]
                                        edit the pre-trusted identities
  pikcio tis confirm-migration --dir DIR [--db URL]
                                        remove a state.json moved into the database

Run "pikcio tis init --help" and so on for their flags.`)
	return dispatch(e, fs, args, []subcommand{{"init", runTISInit}, {"serve", runTISServe}, {"attest", runTISAttest}, {"seed", runTISSeed}, {"confirm-migration", runTISConfirmMigration}})
}

func runTISInit(e *env, args []string) int {
	fs := newFlagSet("tis init", "--data DIR", `Create a TIS in DIR (made mode 0700): a new root signing key and the secret
of its keyed hashes, each in a file of mode 0600. Prints the root public key:
nodes pin it (--tis-key, tis.root_key). The key alone goes to standard
output, messages to standard error: KEY=$(pikcio tis init --data DIR). Keep
DIR safe and back up hash.secret apart from the rest (--secret-file writes it
elsewhere, e.g. another disk, so that a stolen DIR cannot test guessed
e-mails). An existing TIS is never overwritten.`)
	dir := fs.dataFlag("TIS `directory`")
	secretFile := fs.String("secret-file", "", "write the hash secret to this `file` instead of DIR/hash.secret (then pass it to \"tis serve\")")
	if code, done := parse(e, fs, args); done {
		return code
	}
	if *dir == "" {
		return usageError(e, fs, "--data is required")
	}
	pub, err := tis.InitWithSecret(*dir, *secretFile)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", fs.Name(), err)
		return exitError
	}
	// The bare key on stdout, so that KEY=$(pikcio tis init ...) works.
	fmt.Fprintln(e.stdout, tis.FormatKey(pub))
	fmt.Fprintf(e.stderr, "TIS created in %s; its root key is printed above.\n", *dir)
	return exitOK
}

func runTISServe(e *env, args []string) int {
	fs := newFlagSet("tis serve", "--data DIR [flags]", `Serve the TIS in DIR (made by "pikcio tis init"): enrollments, the signed
revocation list, the seed list and the root key, over HTTP on a loopback
address, or HTTPS with --tls-cert and --tls-key. With --bootstrap it also
joins the network's DHT (as a DHT client with a throwaway key) and crawls
the trust records every --trust-refresh, so that it can state relays'
trust bands (without --bootstrap it answers relay score requests with 501).
Ctrl-C stops it.

State lives in DIR/tis.db (SQLite), or in the PostgreSQL database of --db,
which several "tis serve" processes may share. A state.json of an older
version is migrated on the first start and kept until "pikcio tis
confirm-migration".

Enrollment needs a one-time code mailed to the person's e-mail address,
sent through the SMTP relay of --smtp (TLS always; AUTH PLAIN with
--smtp-user and the password in $PIKCIO_SMTP_PASSWORD). --demo-codes sends
no mail and writes the codes to this log instead: for trying pikcio out
only, as anyone who reads the log can enroll any address.

The hash secret is DIR/hash.secret unless --secret-file names another file
or $PIKCIO_TIS_SECRET holds it (base64).`)
	dir := fs.dataFlag("TIS `directory`")
	listen := fs.String("listen", "127.0.0.1:7070", "`address` host:port to serve on")
	var boots listFlag
	fs.Var(&boots, "bootstrap", "`multiaddr` ending in /p2p/<peer id> given to every enrolled node to join the network; repeatable or comma-separated")
	certFile := fs.String("tls-cert", "", "TLS certificate `file` (PEM); with --tls-key, serve HTTPS")
	keyFile := fs.String("tls-key", "", "TLS private key `file` (PEM)")
	refresh := fs.Duration("trust-refresh", 10*time.Minute, "how often to crawl the trust records (`duration`)")
	var attesterFlags listFlag
	fs.Var(&attesterFlags, "attester", "public `key` of an attester whose attestations count (as in trust.attesters); repeatable")
	db := fs.String("db", "", "database `URL`: postgres://... (shared by several servers) or sqlite:PATH (default DIR/tis.db)")
	secretFile := fs.String("secret-file", "", "hash secret `file` kept apart from DIR (default DIR/hash.secret)")
	smtpAddr := fs.String("smtp", "", "SMTP relay `host:port` that mails enrollment codes (implicit TLS on 465, STARTTLS elsewhere)")
	smtpFrom := fs.String("smtp-from", "", "sender `address` of the code mails")
	smtpUser := fs.String("smtp-user", "", "SMTP AUTH `user` (password in $PIKCIO_SMTP_PASSWORD)")
	demoCodes := fs.Bool("demo-codes", false, "mail nothing: write enrollment codes to the log (trying pikcio out only)")
	enrollRate := fs.Float64("enroll-rate", tis.DefaultEnrollRate, "enrollment requests a `second`, all clients and (on PostgreSQL) all servers together")
	enrollBurst := fs.Int("enroll-burst", tis.DefaultEnrollBurst, "enrollment requests at once above --enroll-rate (`count`)")
	var proxies listFlag
	fs.Var(&proxies, "trusted-proxy", "`prefix` (CIDR) of a reverse proxy whose X-Forwarded-For gives the client address for the per-address limit; repeatable")
	if code, done := parse(e, fs, args); done {
		return code
	}
	if *dir == "" {
		return usageError(e, fs, "--data is required")
	}
	if *refresh <= 0 {
		return usageError(e, fs, "--trust-refresh %v: want more than 0", *refresh)
	}
	if (*certFile == "") != (*keyFile == "") {
		return usageError(e, fs, "--tls-cert and --tls-key go together")
	}
	if *enrollRate <= 0 || *enrollBurst <= 0 {
		return usageError(e, fs, "--enroll-rate and --enroll-burst: want more than 0")
	}
	if _, _, err := net.SplitHostPort(*listen); err != nil {
		return usageError(e, fs, "--listen %q: want host:port", *listen)
	}
	mailer, code := tisMailer(e, fs, *smtpAddr, *smtpFrom, *smtpUser, *demoCodes)
	if mailer == nil {
		return code
	}
	var trusted []netip.Prefix
	for _, p := range proxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return usageError(e, fs, "--trusted-proxy %q: want an address or a prefix such as 10.0.0.0/8", p)
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		trusted = append(trusted, pfx.Masked())
	}
	secret, err := secretFromEnv()
	if err != nil {
		return usageError(e, fs, "%v", err)
	}
	root, err := tis.OpenWithSecret(*dir, *secretFile, secret)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", fs.Name(), err)
		return exitError
	}
	var srv *tis.Server
	opts := tis.ServerOptions{
		Bootstraps:     []string(boots),
		TLSCertFile:    *certFile,
		TLSKeyFile:     *keyFile,
		DB:             *db,
		SecretFile:     *secretFile,
		Secret:         secret,
		Mailer:         mailer,
		TrustedProxies: trusted,
		EnrollRate:     *enrollRate,
		EnrollBurst:    *enrollBurst,
	}
	var attesters []ed25519.PublicKey
	for _, a := range attesterFlags {
		k, err := tis.ParseKey(a)
		if err != nil {
			return usageError(e, fs, "--attester %q: %v", a, err)
		}
		attesters = append(attesters, k)
	}
	var view *trust.View
	if len(boots) > 0 {
		view = trust.NewView(trust.ViewOptions{Root: root.PublicKey(), Attesters: attesters, Revocations: func() *tis.RevocationList {
			l, _ := srv.RevocationList()
			return l
		}})
		opts.RelayScorer = trust.TISScorer{View: view}
	}
	srv, err = tis.NewServer(*dir, opts)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", fs.Name(), err)
		return exitError
	}
	if _, err := token.Mount(srv, *dir, token.IssuerOptions{}); err != nil {
		_ = srv.Close()
		fmt.Fprintf(e.stderr, "%s: %v\n", fs.Name(), err)
		return exitError
	}
	if view != nil {
		crawler, err := trust.NewCrawler(root.PublicKey(), boots, view, *refresh)
		if err != nil {
			_ = srv.Close()
			fmt.Fprintf(e.stderr, "%s: %v\n", fs.Name(), err)
			return exitError
		}
		defer crawler.Close()
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
e-mail. Then set tis.root_key (and tis.url) in the configuration file.

The TIS mails a one-time code to the address; enter it when asked, or run
again with --code. Enrolling an address that is enrolled already (a new
device) works the same way and revokes the old device's certificates.`)
	addr := fs.String("tis", "", "TIS `address`: host:port or a URL")
	key := fs.String("tis-key", "", "the TIS root `key` (printed by \"pikcio tis init\")")
	name := fs.String("name", "", "your `name`")
	email := fs.String("email", "", "your e-mail `address`")
	codeFlag := fs.String("code", "", "the enrollment `code` the TIS mailed you (without it, the TIS mails one and this asks for it)")
	dir := fs.dataFlag("data `directory` of the node (default $XDG_DATA_HOME/pikcio)")
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
			return usageError(e, fs, "--data: %v", err)
		}
		*dir = abs
	}
	return enroll(e, fs.Name(), tis.BaseURL(*addr), root, *dir, *name, *email, *codeFlag)
}

func enroll(e *env, name, url string, root ed25519.PublicKey, dir, who, email, code string) int {
	dataDir, err := config.NodeConfig{DataDir: dir}.ResolveDataDir()
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		return exitError
	}
	priv, err := datadir.LoadOrCreateIdentity(dataDir)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		return exitError
	}
	ctx, cancel := context.WithTimeout(context.Background(), enrollTimeout)
	defer cancel()
	c := tis.NewClient(url, root)
	if e.stdin != nil {
		c.Code = func(_ context.Context, email string) (string, error) { return promptCode(e, email) }
	}
	en, err := c.EnrollNode(ctx, priv, dataDir, who, email, code)
	if errors.Is(err, tis.ErrCodeSent) || errors.Is(err, errNoCode) {
		fmt.Fprintf(e.stderr, "%s: the TIS mailed a code to %s: run this again with --code CODE\n", name, email)
		return exitError
	}
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

// attestLifetime is the default validity of `pikcio tis attest`.
const attestLifetime = 365 * 24 * time.Hour

// errKeyFile reports a private key file that is not 64 raw Ed25519 bytes.
var errKeyFile = errors.New("not an Ed25519 private key file (64 raw bytes)")

func runTISAttest(e *env, args []string) int {
	fs := newFlagSet("tis attest", "--data DIR|--key FILE ID KIND [--lifetime 8760h]  or  --new-key FILE", `Attest that the identity ID (a Matryoshka ID) passed a check of some kind,
such as "email-verified" or "account-linked:<service>" (1 to 64 of a-z 0-9
. : _ -). It is signed with the root key of the TIS in DIR, or with the
attester key in FILE, whose public key nodes list in trust.attesters.
Prints the attestation code to hand to the person, who adds it with
"pikcio trust attestation add CODE".

With --new-key FILE, create an attester key in FILE (mode 0600) and print
its public key.`)
	dir := fs.dataFlag("TIS `directory`: sign with its root key")
	keyFile := fs.String("key", "", "attester key `file` (64 raw bytes, mode 0600): sign with it")
	newKey := fs.String("new-key", "", "create an attester key in `file` and print its public key")
	lifetime := fs.Duration("lifetime", attestLifetime, "how long the attestation stays valid")
	pos, code, done := parseArgs(e, fs, args, 0, 2)
	if done {
		return code
	}
	if *newKey != "" {
		if *dir != "" || *keyFile != "" || len(pos) > 0 {
			return usageError(e, fs, "--new-key goes alone")
		}
		pub, priv, err := ed25519.GenerateKey(nil)
		if err != nil {
			return fail(e, fs, err)
		}
		if err := privfile.Create(*newKey, priv); err != nil {
			if errors.Is(err, iofs.ErrExist) {
				return failf(e, fs, "%s already exists: choose another file", *newKey)
			}
			return fail(e, fs, err)
		}
		fmt.Fprintf(e.stdout, "attester key: %s\n", tis.FormatKey(pub))
		fmt.Fprintf(e.stderr, "Private key in %s. Nodes count its attestations once they list the key above in trust.attesters.\n", *newKey)
		return exitOK
	}
	switch {
	case (*dir == "") == (*keyFile == ""):
		return usageError(e, fs, "want one of --data and --key")
	case len(pos) != 2:
		return usageError(e, fs, "want the arguments ID KIND")
	case *lifetime < time.Second:
		return usageError(e, fs, "--lifetime %v: want at least 1s", *lifetime)
	}
	subject, err := tis.ParseID(strings.ToLower(pos[0]))
	if err != nil {
		return usageError(e, fs, "%v", err)
	}
	var key ed25519.PrivateKey
	if *dir != "" {
		if _, err := tis.OpenKey(*dir); err != nil {
			return fail(e, fs, err)
		}
		key, err = readKeyFile(filepath.Join(*dir, tis.RootKeyFile))
	} else {
		key, err = readKeyFile(*keyFile)
	}
	if err != nil {
		return fail(e, fs, err)
	}
	now := time.Now().Truncate(time.Second)
	a := &trust.Attestation{Subject: subject, Kind: pos[1], IssuedAt: now, Expires: now.Add(lifetime.Truncate(time.Second))}
	if err := a.Sign(key); err != nil {
		if errors.Is(err, trust.ErrMalformed) {
			return usageError(e, fs, "KIND %q: want 1 to %d of a-z 0-9 . : _ -", pos[1], trust.MaxKindLen)
		}
		return fail(e, fs, err)
	}
	s, err := trust.FormatAttestation(a)
	if err != nil {
		return fail(e, fs, err)
	}
	fmt.Fprintln(e.stdout, s)
	fmt.Fprintf(e.stderr, "Valid until %s. Give it to the person; they add it with \"pikcio trust attestation add CODE\".\n", a.Expires.Local().Format(time.DateTime))
	return exitOK
}

// readKeyFile reads a raw Ed25519 private key that only its owner may
// read.
func readKeyFile(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat key %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("key %s has mode %04o: make it readable by you only (chmod 600)", path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, ed25519.PrivateKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("read key %s: %w", path, err)
	}
	k, err := parseKeyFile(b)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	return k, nil
}

// parseKeyFile checks the contents of a key file: 64 raw bytes, the seed
// and the public key that belongs to it.
func parseKeyFile(b []byte) (ed25519.PrivateKey, error) {
	if len(b) != ed25519.PrivateKeySize {
		return nil, errKeyFile
	}
	k := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
	if !bytes.Equal(k, b) {
		return nil, errKeyFile
	}
	return k, nil
}

func runTISSeed(e *env, args []string) int {
	fs := newFlagSet("tis seed", "add|remove|list --data DIR [ID...]", `Edit the seed identities of the TIS in DIR: the pre-trusted Matryoshka IDs
that all trust flows from. The server signs the new list at its next
request; nodes fetch it on their next trust refresh.

  pikcio tis seed add --data DIR ID...      add identities
  pikcio tis seed remove --data DIR ID...   remove identities
  pikcio tis seed list --data DIR           list them`)
	if len(args) == 0 {
		return usageError(e, fs, "want a subcommand: add, remove or list")
	}
	op := args[0]
	switch op {
	case "add", "remove", "list":
	case "-h", "-help", "--help", "help":
		fs.usage(e.stdout)
		return exitOK
	default:
		return usageError(e, fs, "unknown subcommand %q: want add, remove or list", op)
	}
	sub := newFlagSet("tis seed "+op, "--data DIR ID...", fs.about)
	if op == "list" {
		sub.synopsis = "--data DIR"
	}
	dir := sub.dataFlag("TIS `directory`")
	minArgs, maxArgs := 1, -1
	if op == "list" {
		minArgs, maxArgs = 0, 0
	}
	pos, code, done := parseArgs(e, sub, args[1:], minArgs, maxArgs)
	if done {
		return code
	}
	if *dir == "" {
		return usageError(e, sub, "--data is required")
	}
	var ids []tis.ID
	for _, s := range pos {
		id, err := tis.ParseID(strings.ToLower(strings.TrimSpace(s)))
		if err != nil {
			return usageError(e, sub, "%v", err)
		}
		ids = append(ids, id)
	}
	if _, err := tis.OpenKey(*dir); err != nil {
		return fail(e, sub, err)
	}
	seeds, err := tis.ReadSeeds(*dir)
	if err != nil {
		return fail(e, sub, err)
	}
	switch op {
	case "list":
		for _, id := range seeds {
			fmt.Fprintln(e.stdout, id)
		}
		if len(seeds) == 0 {
			fmt.Fprintln(e.stderr, "no seeds yet: see \"pikcio tis seed add --help\"")
		}
		return exitOK
	case "add":
		n := 0
		for _, id := range ids {
			if !slices.Contains(seeds, id) {
				seeds = append(seeds, id)
				n++
			}
		}
		if len(seeds) > tis.MaxSeeds {
			return failf(e, sub, "%d seeds: at most %d", len(seeds), tis.MaxSeeds)
		}
		if err := tis.WriteSeeds(*dir, seeds); err != nil {
			return fail(e, sub, err)
		}
		fmt.Fprintf(e.stdout, "added %d seeds, %d in all\n", n, len(seeds))
	case "remove":
		before := len(seeds)
		seeds = slices.DeleteFunc(seeds, func(id tis.ID) bool { return slices.Contains(ids, id) })
		if err := tis.WriteSeeds(*dir, seeds); err != nil {
			return fail(e, sub, err)
		}
		fmt.Fprintf(e.stdout, "removed %d seeds, %d left\n", before-len(seeds), len(seeds))
	}
	return exitOK
}

// errNoCode reports that no code was typed in (end of input).
var errNoCode = errors.New("no code entered")

// promptCode asks for the code mailed to email on stdin.
func promptCode(e *env, email string) (string, error) {
	fmt.Fprintf(e.stderr, "The TIS mailed a code to %s. Code: ", email)
	line, _ := bufio.NewReader(io.LimitReader(e.stdin, 256)).ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" {
		fmt.Fprintln(e.stderr)
		return "", errNoCode
	}
	return line, nil
}

// secretEnv holds a TIS hash secret (base64), an alternative to a file.
const secretEnv = "PIKCIO_TIS_SECRET"

func secretFromEnv() ([]byte, error) {
	v := os.Getenv(secretEnv)
	if v == "" {
		return nil, nil
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("$%s: want base64 of 32 bytes (base64 < hash.secret)", secretEnv)
	}
	return b, nil
}

// tisMailer is the mailer of "tis serve": the SMTP relay, or with
// --demo-codes the log. It returns nil and an exit code when neither or
// both are given.
func tisMailer(e *env, fs *flagSet, addr, from, user string, demo bool) (tis.Mailer, int) {
	switch {
	case demo && addr != "":
		return nil, usageError(e, fs, "--smtp and --demo-codes exclude each other")
	case demo:
		fmt.Fprintln(e.stderr, "DEMO MODE: enrollment codes go to this log, not by mail; anyone who reads it can enroll any address.")
		return &tis.DemoMailer{}, exitOK
	case addr == "":
		return nil, usageError(e, fs, "enrollment mails codes: give --smtp HOST:PORT and --smtp-from (or --demo-codes to try pikcio out)")
	case from == "":
		return nil, usageError(e, fs, "--smtp-from is required with --smtp")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, usageError(e, fs, "--smtp %q: want host:port", addr)
	}
	pw := os.Getenv("PIKCIO_SMTP_PASSWORD")
	if user != "" && pw == "" {
		return nil, usageError(e, fs, "--smtp-user needs the password in $PIKCIO_SMTP_PASSWORD")
	}
	return &tis.SMTPMailer{Addr: addr, From: from, User: user, Password: pw}, exitOK
}

func runTISConfirmMigration(e *env, args []string) int {
	fs := newFlagSet("tis confirm-migration", "--data DIR [--db URL]", `Remove DIR/state.json, the state of an older TIS version, once "tis serve"
has moved it into the database (DIR/tis.db, or --db) and the database holds
every person it held.`)
	dir := fs.dataFlag("TIS `directory`")
	db := fs.String("db", "", "database `URL` as given to \"tis serve\"")
	if code, done := parse(e, fs, args); done {
		return code
	}
	if *dir == "" {
		return usageError(e, fs, "--data is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := tis.ConfirmMigration(ctx, *dir, *db); err != nil {
		return fail(e, fs, err)
	}
	fmt.Fprintf(e.stdout, "removed %s\n", filepath.Join(*dir, tis.StateFile))
	return exitOK
}
