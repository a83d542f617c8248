package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb strings.Builder
	code = Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--help"}, "Commands:"},
		{[]string{"-h"}, "Commands:"},
		{[]string{"help"}, "Commands:"},
		{[]string{"help", "relay"}, "Usage: pikcio relay"},
		{[]string{"demo", "--help"}, "--relays"},
		{[]string{"demo", "-h"}, "--exit-policy"},
		{[]string{"client", "--help"}, "--socks"},
		{[]string{"client", "--help"}, "--bootstrap"},
		{[]string{"relay", "--help"}, "--exit"},
		{[]string{"relay", "--help"}, "--config"},
		{[]string{"version", "--help"}, "Usage: pikcio version"},
		{[]string{"tis", "--help"}, "pikcio tis serve"},
		{[]string{"tis", "init", "--help"}, "--data"},
		{[]string{"tis", "serve", "--help"}, "--bootstrap"},
		{[]string{"enroll", "--help"}, "--tis-key"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := run(tc.args...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("stdout lacks %q:\n%s", tc.want, out)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[client]\nhops = 9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "Commands:"},
		{"unknown command", []string{"serve"}, `unknown command "serve"`},
		{"unknown flag", []string{"demo", "--bogus"}, "flag provided but not defined: -bogus"},
		{"unknown flag of another command", []string{"client", "--exit"}, "not defined: -exit"},
		{"stray argument", []string{"relay", "extra"}, `unexpected argument "extra"`},
		{"stray argument after flags", []string{"demo", "--relays", "4", "x"}, `unexpected argument "x"`},
		{"version argument", []string{"version", "x"}, `unexpected argument "x"`},
		{"bad number", []string{"demo", "--relays", "many"}, "invalid value"},
		{"too few relays", []string{"demo", "--relays", "2"}, "--relays 2"},
		{"bad exit rule", []string{"relay", "--exit", "--exit-policy", "allow everything"}, "invalid value"},
		{"exit policy without exit", []string{"relay", "--exit-policy", "accept *:80"}, "--exit-policy needs --exit"},
		{"bad hops", []string{"client", "--hops", "9"}, "client.hops"},
		{"bad bootstrap", []string{"client", "--bootstrap", "/ip4/127.0.0.1/tcp/1"}, "node.bootstrap"},
		{"bad config file", []string{"client", "--config", bad}, "bad.toml:2: client.hops"},
		{"tis without subcommand", []string{"tis"}, "want a subcommand"},
		{"tis unknown subcommand", []string{"tis", "rotate"}, `unknown subcommand "rotate"`},
		{"tis init without dir", []string{"tis", "init"}, "--data is required"},
		{"tis serve without dir", []string{"tis", "serve"}, "--data is required"},
		{"tis serve bad listen", []string{"tis", "serve", "--data", dir, "--listen", "nowhere"}, "want host:port"},
		{"tis serve half TLS", []string{"tis", "serve", "--data", dir, "--tls-cert", "c.pem"}, "go together"},
		{"tis serve without a mailer", []string{"tis", "serve", "--data", dir}, "--smtp HOST:PORT"},
		{"tis serve smtp without from", []string{"tis", "serve", "--data", dir, "--smtp", "mail.example:587"}, "--smtp-from is required"},
		{"tis serve smtp and demo", []string{"tis", "serve", "--data", dir, "--smtp", "mail.example:587", "--demo-codes"}, "exclude each other"},
		{"tis serve zero rate", []string{"tis", "serve", "--data", dir, "--demo-codes", "--enroll-rate", "0"}, "--enroll-rate"},
		{"tis serve bad proxy", []string{"tis", "serve", "--data", dir, "--demo-codes", "--trusted-proxy", "nowhere"}, "--trusted-proxy"},
		{"tis serve smtp user without password", []string{"tis", "serve", "--data", dir, "--smtp", "mail.example:587", "--smtp-from", "a@b", "--smtp-user", "u"}, "PIKCIO_SMTP_PASSWORD"},
		{"enroll without tis", []string{"enroll", "--tis-key", "x", "--name", "a", "--email", "a@b"}, "--tis is required"},
		{"enroll without key", []string{"enroll", "--tis", "127.0.0.1:1", "--name", "a", "--email", "a@b"}, "--tis-key is required"},
		{"enroll without name", []string{"enroll", "--tis", "127.0.0.1:1", "--tis-key", "x", "--email", "a@b"}, "--name is required"},
		{"enroll without email", []string{"enroll", "--tis", "127.0.0.1:1", "--tis-key", "x", "--name", "a"}, "--email is required"},
		{"enroll bad key", []string{"enroll", "--tis", "127.0.0.1:1", "--tis-key", "notakey", "--name", "a", "--email", "a@b"}, "--tis-key"},
		{"enroll name without email", []string{"client", "--enroll-name", "a"}, "go together"},
		{"enroll email without name", []string{"relay", "--enroll-email", "a@b"}, "go together"},
		{"enroll without tis", []string{"client", "--enroll-name", "a", "--enroll-email", "a@b"}, "need tis.root_key and tis.url"},
		{"missing config file", []string{"relay", "--config", filepath.Join(dir, "none.toml")}, "none.toml"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := run(tc.args...)
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, exitUsage, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Fatalf("stderr lacks %q:\n%s", tc.want, errOut)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run("version")
	if code != 0 || !strings.HasPrefix(out, "pikcio ") || !strings.Contains(out, "go1") {
		t.Fatalf("exit %d, %q", code, out)
	}
}

func TestListFlag(t *testing.T) {
	cases := []struct {
		sets []string
		want []string
	}{
		{[]string{"a"}, []string{"a"}},
		{[]string{"a,b", "c"}, []string{"a", "b", "c"}},
		{[]string{" a , ,b ", ""}, []string{"a", "b"}},
	}
	for _, tc := range cases {
		var l listFlag
		for _, s := range tc.sets {
			if err := l.Set(s); err != nil {
				t.Fatal(err)
			}
		}
		if strings.Join(l, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%q: got %q, want %q", tc.sets, l, tc.want)
		}
	}
}

// FuzzFlags: list and policy flag values never yield empty or padded
// entries, and a policy flag keeps only rules that parse.
func FuzzFlags(f *testing.F) {
	for _, s := range []string{"a,b", " a , ,b ", "accept 127.0.0.1:*", "accept *:80, reject *:*", "accept *:80\nreject *:*", "bogus"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var l listFlag
		_ = l.Set(s)
		for _, v := range l {
			if v == "" || v != strings.TrimSpace(v) || strings.Contains(v, ",") {
				t.Fatalf("list entry %q from %q", v, s)
			}
		}
		var p policyFlag
		if err := p.Set(s); err != nil {
			if len(p) != 0 {
				t.Fatalf("rules kept after an error: %q", p)
			}
			return
		}
		for _, r := range p {
			if r == "" || strings.ContainsAny(r, ",\n") {
				t.Fatalf("rule %q from %q", r, s)
			}
		}
	})
}

// Every command that takes a data directory spells it --data in its --help,
// and no --help mentions --dir; every command README.md runs as
// "pikcio CMD ... --flag" accepts that flag.
func TestHelpDataAndREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range [][]string{
		{"client"}, {"relay"}, {"demo"}, {"enroll"}, {"tis", "init"}, {"tis", "serve"},
		{"tis", "attest"}, {"tis", "seed", "add"}, {"contacts"}, {"trust"},
	} {
		t.Run(strings.Join(cmd, " "), func(t *testing.T) {
			_, out, _ := run(append(cmd, "--help")...)
			if strings.Contains(out, "--dir") {
				t.Errorf("--help mentions --dir:\n%s", out)
			}
		})
	}
	flagRE := regexp.MustCompile(`--[a-z][a-z0-9-]*`)
	cmdRE := regexp.MustCompile(`(?m)pikcio ((?:tis )?[a-z]+)((?: [^\n\\]*(?:\\\n)?)*)`)
	for _, m := range cmdRE.FindAllStringSubmatch(string(readme), -1) {
		cmd := strings.Fields(m[1])
		_, help, _ := run(append(cmd, "--help")...)
		if !strings.Contains(help, "Usage:") {
			continue
		}
		for _, f := range flagRE.FindAllString(m[2], -1) {
			if f == "--help" {
				continue
			}
			if !strings.Contains(help, f) {
				t.Errorf("README runs \"pikcio %s ... %s\", which its --help does not list", m[1], f)
			}
		}
	}
}
