package cli

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/web"
)

func TestContactsTrustHelp(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "contacts"},
		{[]string{"--help"}, "trust"},
		{[]string{"contacts", "--help"}, "pikcio contacts accept CODE"},
		{[]string{"contacts", "invite", "--help"}, "--lifetime"},
		{[]string{"contacts", "accept", "--help"}, "--name"},
		{[]string{"contacts", "list", "--help"}, "--data-dir"},
		{[]string{"contacts", "remove", "-h"}, "NAME|ID"},
		{[]string{"trust", "--help"}, "pikcio trust show"},
		{[]string{"trust", "vouch", "--help"}, "--weight"},
		{[]string{"trust", "withdraw", "--help"}, "--config"},
		{[]string{"trust", "attestation", "--help"}, "add CODE"},
		{[]string{"trust", "attestation", "add", "--help"}, "pikcio-attestation:"},
		{[]string{"trust", "show", "--help"}, "--json"},
		{[]string{"tis", "--help"}, "pikcio tis attest"},
		{[]string{"tis", "attest", "--help"}, "--new-key"},
		{[]string{"tis", "seed", "--help"}, "pikcio tis seed add"},
		{[]string{"tis", "seed", "add", "--help"}, "--data"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if code != exitOK || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, stdout lacks %q:\n%s\nstderr: %s", code, tc.want, out, errOut)
			}
		})
	}
}

func TestContactsTrustUsageErrors(t *testing.T) {
	dir := t.TempDir()
	id := strings.Repeat("ab", 32)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"contacts without subcommand", []string{"contacts"}, "want a subcommand"},
		{"contacts unknown subcommand", []string{"contacts", "share"}, `unknown subcommand "share"`},
		{"invite without name", []string{"contacts", "invite", "--data", dir}, "--name is required"},
		{"invite bad lifetime", []string{"contacts", "invite", "--name", "A", "--lifetime", "0s"}, "--lifetime"},
		{"invite too long", []string{"contacts", "invite", "--name", "A", "--lifetime", "1000h"}, "at most"},
		{"invite stray argument", []string{"contacts", "invite", "--name", "A", "x"}, `unexpected argument "x"`},
		{"accept without code", []string{"contacts", "accept", "--name", "A"}, "want arguments"},
		{"accept without name", []string{"contacts", "accept", "pikcio-invite:x"}, "--name is required"},
		{"accept bad code", []string{"contacts", "accept", "hello", "--name", "A"}, "not an invite code"},
		{"accept two codes", []string{"contacts", "accept", "a", "b", "--name", "A"}, `unexpected argument "b"`},
		{"accept unknown flag", []string{"contacts", "accept", "a", "--bogus"}, "not defined: -bogus"},
		{"list argument", []string{"contacts", "list", "x"}, `unexpected argument "x"`},
		{"remove without argument", []string{"contacts", "remove"}, "want arguments"},
		{"bad config", []string{"contacts", "list", "--config", filepath.Join(dir, "none.toml")}, "none.toml"},
		{"trust without subcommand", []string{"trust"}, "want a subcommand"},
		{"trust unknown subcommand", []string{"trust", "score"}, `unknown subcommand "score"`},
		{"vouch without argument", []string{"trust", "vouch"}, "want arguments"},
		{"vouch weight too high", []string{"trust", "vouch", id, "--weight", "101"}, "--weight 101"},
		{"vouch weight zero", []string{"trust", "vouch", id, "--weight", "0"}, "--weight 0"},
		{"vouch bad lifetime", []string{"trust", "vouch", id, "--lifetime", "-1h"}, "--lifetime"},
		{"withdraw two", []string{"trust", "withdraw", id, id}, "unexpected argument"},
		{"attestation without subcommand", []string{"trust", "attestation"}, "want a subcommand"},
		{"attestation bad code", []string{"trust", "attestation", "add", "pikcio-attestation:!!"}, "not an attestation code"},
		{"show without argument", []string{"trust", "show"}, "want arguments"},
		{"show bad status", []string{"trust", "show", "a", "--status", "nowhere"}, "want host:port"},
		{"attest without key", []string{"tis", "attest", id, "email-verified"}, "one of --data and --key"},
		{"attest both keys", []string{"tis", "attest", "--data", dir, "--key", "k", id, "x"}, "one of --data and --key"},
		{"attest missing kind", []string{"tis", "attest", "--data", dir, id}, "ID KIND"},
		{"attest bad id", []string{"tis", "attest", "--data", dir, "nothex", "email-verified"}, "hex digits"},
		{"attest new key with args", []string{"tis", "attest", "--new-key", "k", id}, "--new-key goes alone"},
		{"seed without subcommand", []string{"tis", "seed"}, "want a subcommand"},
		{"seed unknown subcommand", []string{"tis", "seed", "clear"}, `unknown subcommand "clear"`},
		{"seed add without dir", []string{"tis", "seed", "add", id}, "--data is required"},
		{"seed add without id", []string{"tis", "seed", "add", "--data", dir}, "want arguments"},
		{"seed add bad id", []string{"tis", "seed", "add", "--data", dir, "xyz"}, "hex digits"},
		{"seed list argument", []string{"tis", "seed", "list", "--data", dir, id}, "unexpected argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(tc.args...)
			if code != exitUsage || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d (want %d), stderr lacks %q:\n%s", code, exitUsage, tc.want, errOut)
			}
		})
	}
}

// TestTISAttestAndSeedErrors: attest and seed on things that are not
// a TIS or a key.
func TestTISAttestAndSeedErrors(t *testing.T) {
	tisDir := filepath.Join(t.TempDir(), "tis")
	if _, err := tis.Init(tisDir); err != nil {
		t.Fatal(err)
	}
	id := strings.Repeat("0f", 32)
	open := filepath.Join(t.TempDir(), "open.key")
	_, priv, _ := ed25519.GenerateKey(nil)
	if err := os.WriteFile(open, priv, 0o644); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, priv[:32], 0o600); err != nil {
		t.Fatal(err)
	}
	existing := filepath.Join(t.TempDir(), "exists.key")
	if err := os.WriteFile(existing, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad kind", []string{"tis", "attest", "--data", tisDir, id, "E-Mail Verified"}, exitUsage, "KIND"},
		{"not a TIS", []string{"tis", "attest", "--data", t.TempDir(), id, "x"}, exitError, "root key"},
		{"key readable by others", []string{"tis", "attest", "--key", open, id, "x"}, exitError, "chmod 600"},
		{"short key", []string{"tis", "attest", "--key", short, id, "x"}, exitError, "64 raw bytes"},
		{"new key over a file", []string{"tis", "attest", "--new-key", existing}, exitError, "already exists"},
		{"seed in a non-TIS", []string{"tis", "seed", "add", "--data", t.TempDir(), id}, exitError, "root key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d (want %d), stderr lacks %q:\n%s", code, tc.code, tc.want, errOut)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(tisDir, tis.SeedsFile)); !os.IsNotExist(err) {
		t.Fatalf("seeds file written by failed commands: %v", err)
	}
}

var parseArgsCases = []struct {
	args    []string
	pos     []string
	name    string
	verbose bool
	bad     bool
}{
	{args: []string{"a"}, pos: []string{"a"}},
	{args: []string{"a", "--name", "N"}, pos: []string{"a"}, name: "N"},
	{args: []string{"--name", "N", "a", "-v", "b"}, pos: []string{"a", "b"}, name: "N", verbose: true},
	{args: []string{"--name=N", "--", "-a", "--name"}, pos: []string{"-a", "--name"}, name: "N"},
	{args: []string{"--name", "--", "a"}, pos: []string{"a"}, name: "--"},
	{args: []string{"-v", "--", "--x"}, pos: []string{"--x"}, verbose: true},
	{args: []string{"a", "--bogus"}, bad: true},
	{args: []string{"a", "--name"}, bad: true},
	{args: []string{}, pos: nil},
}

func TestParseArgs(t *testing.T) {
	for _, tc := range parseArgsCases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb strings.Builder
			e := &env{stdout: &out, stderr: &errb}
			fs := newFlagSet("x", "ARGS", "")
			name := fs.String("name", "", "")
			verbose := fs.Bool("v", false, "")
			pos, code, done := parseArgs(e, fs, tc.args, 0, -1)
			if tc.bad {
				if !done || code != exitUsage {
					t.Fatalf("no usage error: %q", pos)
				}
				return
			}
			if done {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			if strings.Join(pos, "|") != strings.Join(tc.pos, "|") || *name != tc.name || *verbose != tc.verbose {
				t.Fatalf("got %q name %q v %v; want %q %q %v", pos, *name, *verbose, tc.pos, tc.name, tc.verbose)
			}
		})
	}
}

// FuzzParseArgs: every argument ends up as a flag, a flag's value or a
// positional argument, in order; parsing never panics.
func FuzzParseArgs(f *testing.F) {
	for _, tc := range parseArgsCases {
		f.Add(strings.Join(tc.args, "\x00"))
	}
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		var out, errb strings.Builder
		e := &env{stdout: &out, stderr: &errb}
		fs := newFlagSet("x", "ARGS", "")
		fs.String("name", "", "")
		fs.Bool("v", false, "")
		pos, _, done := parseArgs(e, fs, args, 0, -1)
		if done {
			return
		}
		// The positional arguments are a subsequence of args.
		i := 0
		for _, a := range args {
			if i < len(pos) && a == pos[i] {
				i++
			}
		}
		if i != len(pos) {
			t.Fatalf("positional %q not in order in %q", pos, args)
		}
	})
}

func intp(i int) *int { return &i }

var reportCases = []struct {
	name string
	r    web.TrustReport
	want []string
}{
	{"identity", web.TrustReport{
		Kind: "identity", ID: strings.Repeat("ab", 32), Contact: "Alice", Computed: time.Unix(1_800_000_000, 0), Identities: 12,
		Known: true, Score: intp(66), Attestations: []string{"email-verified"}, BasePoints: 10, VouchPoints: 56.25,
		Vouchers:    []web.VoucherShare{{ID: strings.Repeat("cd", 32), Contact: "Bob", Score: 100, Weight: 50, OutOf: 100, Points: 37.5}, {ID: strings.Repeat("ef", 32), Score: 38, Weight: 100, OutOf: 100, Points: 28.13}},
		NumVouchers: 3,
	}, []string{"identity:", "contact:", "Alice", "66 of 100", "over 12 identities", "email-verified", "10.00 points", "56.25 points", "vouchers (2 of 3", "Bob", "50/100", "37.50", strings.Repeat("ef", 32) + "  -"}},
	{"not computed", web.TrustReport{Kind: "identity", ID: strings.Repeat("ab", 32)}, []string{"scores computed:  not yet", "not computed yet", "attestations:", "none"}},
	{"unknown", web.TrustReport{Kind: "identity", ID: "x", Score: intp(0), Computed: time.Unix(1_800_000_000, 0)}, []string{"no record names"}},
	{"relay", web.TrustReport{Kind: "relay", ID: "12D3KooW", Band: &web.Band{Min: 40, Max: 59}, BandExpires: time.Unix(1_800_000_000, 0)}, []string{"relay:", "12D3KooW", "score 40 to 59", "stated until"}},
	{"relay without band", web.TrustReport{Kind: "relay", ID: "12D3KooW", Contact: "Carol"}, []string{"no valid statement", "Carol"}},
	{"control characters", web.TrustReport{Kind: "identity\x1b[2J", ID: "a\rb", Contact: "E\x1bve"}, []string{"identity[2J:", "ab", "Eve"}},
}

func TestPrintReport(t *testing.T) {
	for _, tc := range reportCases {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := printReport(&b, &tc.r); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Fatalf("lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

// FuzzTrustReport: any JSON the node (or something on its port) answers
// prints without a panic and without control characters but newlines.
func FuzzTrustReport(f *testing.F) {
	for _, tc := range reportCases {
		b, err := json.Marshal(tc.r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"kind":"relay","band":{"min":-5,"max":1000}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r web.TrustReport
		if json.Unmarshal(data, &r) != nil {
			return
		}
		var b bytes.Buffer
		if err := printReport(&b, &r); err != nil {
			t.Fatal(err)
		}
		for _, c := range b.String() {
			if c < 0x20 && c != '\n' || c == 0x7f || c >= 0x80 && c < 0xa0 {
				t.Fatalf("control character %U in output:\n%q", c, b.String())
			}
		}
	})
}

func TestParseKeyFile(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(priv)
	bad[40] ^= 1
	cases := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"key", priv, true},
		{"empty", nil, false},
		{"seed only", priv[:32], false},
		{"long", append(bytes.Clone(priv), 0), false},
		{"public half wrong", bad, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			k, err := parseKeyFile(tc.b)
			if tc.ok != (err == nil) {
				t.Fatalf("err %v", err)
			}
			if tc.ok && !bytes.Equal(k, priv) {
				t.Fatal("other key")
			}
		})
	}
}

// FuzzParseKeyFile: a key file is accepted only when it is the 64 bytes
// of a real key pair.
func FuzzParseKeyFile(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(nil)
	f.Add([]byte(priv))
	f.Add([]byte(priv[:32]))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseKeyFile(b)
		if err != nil {
			return
		}
		if !bytes.Equal(k, b) || !bytes.Equal(k.Public().(ed25519.PublicKey), b[32:]) {
			t.Fatalf("accepted %x", b)
		}
	})
}

// FuzzResolveContact: a NAME|ID argument resolves to a parsed ID or to
// an error, never a panic; a hex ID resolves to itself.
func FuzzResolveContact(f *testing.F) {
	for _, s := range []string{strings.Repeat("ab", 32), strings.Repeat("AB", 32), "Alice", " alice ", "", "\x00", "ab"} {
		f.Add(s)
	}
	dir := f.TempDir()
	c, err := trust.OpenContacts(dir, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, q string) {
		id, name, err := resolveContact(c, q)
		if err != nil {
			return
		}
		if name != "" {
			t.Fatalf("%q named contact %q in an empty store", q, name)
		}
		if !strings.EqualFold(id.String(), strings.TrimSpace(q)) {
			t.Fatalf("%q resolved to %s", q, id)
		}
	})
}
