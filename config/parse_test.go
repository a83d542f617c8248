package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pikcio/pikcio/exitnode"
)

const peerID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"

// errorTests are files that must be rejected, each with the place of its
// (first) problem. They also seed FuzzParse.
var errorTests = []struct {
	name string
	file string
	line int
	key  string
	kind error
	msg  string // substring of the *Error's message, if not ""
}{
	// Syntax.
	{"syntax missing value", "[client]\nhops = \n", 2, "", ErrSyntax, "syntax error"},
	{"syntax unclosed table", "[log]\nlevel = \"info\"\n[client\nhops = 3\n", 3, "", ErrSyntax, "syntax error"},
	{"syntax unclosed string", "[log]\nlevel = \"info\n", 2, "", ErrSyntax, "syntax error"},
	{"syntax duplicate key", "[client]\nhops = 3\n\nhops = 4\n", 4, "client.hops", ErrSyntax, "syntax error"},
	{"syntax duplicate table", "[client]\nhops = 3\n[log]\n[client]\n", 4, "client", ErrSyntax, "syntax error"},

	// Unknown keys.
	{"unknown key in section", "[relay]\nenabled = true\n\nmax_circuit_per_peer = 3\n", 4, "relay.max_circuit_per_peer", ErrUnknownKey,
		"f.toml:4: unknown key relay.max_circuit_per_peer"},
	{"unknown section", "[log]\nlevel = \"info\"\n\n[clinet]\nhops = 3\n", 4, "clinet", ErrUnknownKey, "unknown key clinet"},
	{"unknown dotted key", "# x\nclient.hopz = 3\n", 2, "client.hopz", ErrUnknownKey, ""},
	{"unknown root key", "\n\nhops = 3\n", 3, "hops", ErrUnknownKey, ""},
	{"unknown key in inline table", "relay = { enabled = true,\n  exits = true }\n", 2, "relay.exits", ErrUnknownKey, ""},
	{"unknown quoted key", "\"client.hops\" = 3\n", 1, `"client.hops"`, ErrUnknownKey, `unknown key "client.hops"`},
	{"unknown empty key", "[client]\n\"\" = 3\n", 2, `client.""`, ErrUnknownKey, ""},
	{"unknown subsection", "[client.extra]\nx = 1\n", 1, "client.extra", ErrUnknownKey, ""},

	// Types.
	{"type string for int", "[client]\nenabled = true\nhops = \"three\"\n", 3, "client.hops", ErrType,
		"f.toml:3: client.hops: want an integer, got a string"},
	{"type int for bool", "[relay]\nenabled = 1\n", 2, "relay.enabled", ErrType, "want a boolean"},
	{"type string for list", "[node]\nlisten = \"/ip4/127.0.0.1/tcp/0\"\n", 2, "node.listen", ErrType, "want an array of strings"},
	{"type list element", "[node]\nlisten = [\n  \"/ip4/127.0.0.1/tcp/0\",\n  5,\n]\n", 4, "node.listen", ErrType, "element 2 is an integer"},
	{"type integer for duration", "[client]\nconnect_timeout = 30\n", 2, "client.connect_timeout", ErrType, "want a duration"},
	{"type float for int", "[relay]\nbandwidth_rate = 1.5\n", 2, "relay.bandwidth_rate", ErrType, "got a float"},
	{"type value for section", "log = \"debug\"\n", 1, "log", ErrType, "want a table, got a string"},
	{"type section for value", "[client.hops]\nx = 1\n", 1, "client.hops", ErrType, "want an integer, got a table"},
	{"type dotted through value", "client.hops.x = 1\n", 1, "client.hops", ErrType, "got a table"},
	{"type array of tables", "[[client]]\nhops = 3\n", 1, "client", ErrType, "array of tables"},
	{"type dotted key", "log.level = 3\n", 1, "log.level", ErrType, "want a string, got an integer"},

	// [[services]] blocks: each problem at the line of its block's key.
	{"services unknown key", "[[services]]\nname = \"a\"\ntarget = \"127.0.0.1:80\"\nport = 3\n", 4, "services.port", ErrUnknownKey, ""},
	{"services type", "[[services]]\nname = \"a\"\ntarget = \"127.0.0.1:80\"\ncontacts_only = \"yes\"\n", 4, "services.contacts_only", ErrType, "want a boolean"},
	{"services type second block", "[[services]]\nname = \"a\"\ntarget = \"127.0.0.1:80\"\n[[services]]\nname = 7\n", 5, "services.name", ErrType, "want a string"},
	{"services not blocks", "services = [\"a\"]\n", 1, "services", ErrType, "want [[services]] blocks"},
	{"services table", "[services]\nname = \"a\"\n", 1, "services", ErrType, "want [[services]] blocks"},
	{"services subtable", "[[services]]\nname.x = \"a\"\n", 2, "services.name", ErrType, "got a table"},
	{"services bad name", "[log]\nlevel = \"info\"\n\n[[services]]\nname = \"My Blog\"\ntarget = \"127.0.0.1:80\"\n", 5, "services.name", ErrValue, "f.toml:5: services.name"},
	{"services name too long", "[[services]]\nname = \"" + strings.Repeat("a", 41) + "\"\ntarget = \"127.0.0.1:80\"\n", 2, "services.name", ErrValue, "1 to 40"},
	{"services name client", "[[services]]\nname = \"client\"\ntarget = \"127.0.0.1:80\"\n", 2, "services.name", ErrValue, ""},
	{"services duplicate name", "[[services]]\nname = \"a\"\ntarget = \"127.0.0.1:80\"\n\n[[services]]\nname = \"a\"\ntarget = \"127.0.0.1:81\"\n", 6, "services.name", ErrValue, "already the name of service 1"},
	{"services lan target", "[[services]]\nname = \"a\"\ntarget = \"192.168.1.10:80\"\n", 3, "services.target", ErrValue, "not a loopback address"},
	{"services lan target ipv4 in ipv6", "[[services]]\nname = \"a\"\ntarget = \"[::ffff:10.0.0.1]:80\"\n", 3, "services.target", ErrValue, "not a loopback address"},
	{"services unspecified target", "[[services]]\nname = \"a\"\ntarget = \"0.0.0.0:80\"\nallow_lan = true\n", 3, "services.target", ErrValue, "one machine"},
	{"services name target", "[[services]]\nname = \"a\"\ntarget = \"intranet:80\"\n", 3, "services.target", ErrValue, "IP address or localhost"},
	{"services port zero", "[[services]]\nname = \"a\"\ntarget = \"127.0.0.1:0\"\n", 3, "services.target", ErrValue, "1 to 65535"},
	{"services no target", "[[services]]\nname = \"a\"\n", 1, "services.target", ErrValue, "want host:port"},
	{"services without client", "[client]\nenabled = false\n[relay]\nenabled = true\n[[services]]\nname = \"a\"\ntarget = \"127.0.0.1:80\"\n", 5, "services", ErrValue, "client.enabled"},

	// Values.
	{"hops crlf", "[log]\r\nlevel = \"info\"\r\n[client]\r\nhops = 9\r\n", 4, "client.hops", ErrValue, "between 1 and 8"},
	{"hops after byte order mark", "\ufeff[client]\nhops = 9\n", 2, "client.hops", ErrValue, "between 1 and 8"},
	{"hops too many", "[client]\nhops = 9\n", 2, "client.hops", ErrValue, "f.toml:2: client.hops: must be between 1 and 8, got 9"},
	{"hops zero dotted", "# comment\n\nclient.hops = 0\n", 3, "client.hops", ErrValue, "must be between 1 and 8, got 0"},
	{"hops inline table", "client = { enabled = true, hops = 0 }\n", 1, "client.hops", ErrValue, "between 1 and 8"},
	{"hops multi-line inline table", "client = {\n  enabled = true,\n  hops = 0,\n}\n", 3, "client.hops", ErrValue, "between 1 and 8"},
	{"prebuilt too many", "[client]\nprebuilt_circuits = 33\n", 2, "client.prebuilt_circuits", ErrValue, "between 0 and 32, got 33"},
	{"bad duration", "[client]\n\ncircuit_dirtiness = \"10 minutes\"\n", 3, "client.circuit_dirtiness", ErrValue, "duration"},
	{"zero duration", "[client]\nbuild_timeout = \"0s\"\n", 2, "client.build_timeout", ErrValue, "must be more than 0"},
	{"negative duration", "[client]\ncircuit_dirtiness = \"-1m\"\n", 2, "client.circuit_dirtiness", ErrValue, "more than 0"},
	{"bad level", "[log]\nformat = \"json\"\nlevel = \"loud\"\n", 3, "log.level", ErrValue, `"loud": must be one of trace, debug, info, warn, error`},
	{"bad format", "[log]\nformat = \"xml\"\n", 2, "log.format", ErrValue, "must be one of text, json"},
	{"bad multiaddr", "[node]\nlisten = [\"/ip4/127.0.0.1/tcp/0\",\n          \"/ip4/127.0.0.1/tcp/x\"]\n", 3, "node.listen", ErrValue, "not a multiaddr"},
	{"listen with p2p", "[node]\nlisten = [\"/ip4/127.0.0.1/tcp/1/p2p/" + peerID + "\"]\n", 2, "node.listen", ErrValue, "must not contain /p2p/"},
	{"relay without listen", "[node]\nlisten = []\n[relay]\nenabled = true\n", 2, "node.listen", ErrValue, "at least one listen address"},
	{"bootstrap without p2p", "[node]\nbootstrap = [\n  \"/ip4/192.0.2.1/tcp/4001/p2p/" + peerID + "\",\n  \"/ip4/192.0.2.2/tcp/4001\",\n]\n", 4, "node.bootstrap", ErrValue, "/p2p/<peer id>"},
	{"bootstrap without transport", "[node]\nbootstrap = [\"/p2p/" + peerID + "\"]\n", 2, "node.bootstrap", ErrValue, "transport address"},
	{"bootstrap bad peer id", "[node]\nbootstrap = [\"/ip4/192.0.2.1/tcp/4001/p2p/QmNope\"]\n", 2, "node.bootstrap", ErrValue, ""},
	{"listen address without port", "[client]\nsocks_listen = \"127.0.0.1\"\n", 2, "client.socks_listen", ErrValue, "host:port"},
	{"listen address host name", "[client]\nhttp_listen = \"proxy.example:8118\"\n", 2, "client.http_listen", ErrValue, "IP address or localhost"},
	{"listen address bad port", "[client]\nstatus_listen = \"[::1]:65536\"\n", 2, "client.status_listen", ErrValue, "port"},
	{"bad announce", "[node]\nannounce = [\"/ip4/203.0.113.7/tcp/x\"]\n", 2, "node.announce", ErrValue, "not a multiaddr"},
	{"announce with p2p", "[node]\nannounce = [\"/ip4/203.0.113.7/tcp/1/p2p/" + peerID + "\"]\n", 2, "node.announce", ErrValue, "must not contain /p2p/"},
	{"control without path", "[client]\ncontrol_listen = \"unix:\"\n", 2, "client.control_listen", ErrValue, "unix:PATH"},
	{"control host name", "[client]\ncontrol_listen = \"control.example:7081\"\n", 2, "client.control_listen", ErrValue, "IP address or localhost"},
	{"control same as status", "[client]\nstatus_listen = \"127.0.0.1:7080\"\ncontrol_listen = \"127.0.0.1:7080\"\n", 3, "client.control_listen", ErrValue, "same address as client.status_listen"},
	{"listen address twice", "[client]\nsocks_listen = \"127.0.0.1:9000\"\nhttp_listen = \"127.0.0.1:9000\"\n", 3, "client.http_listen", ErrValue, "same address as client.socks_listen"},
	{"relative data dir", "[node]\ndata_dir = \"state\"\n", 2, "node.data_dir", ErrValue, "absolute"},
	{"bad exit rule element", "[relay]\nexit_policy = [\n  \"accept 127.0.0.1:*\",\n  \"accpt *:80\",\n]\n", 4, "relay.exit_policy", ErrValue, `rule 2 "accpt *:80"`},
	{"bad exit rule one line", "[relay]\nexit = true\nexit_policy = [\"reject *:25\", \"accept 10.0.0.1/8:*\"]\n", 3, "relay.exit_policy", ErrValue, "rule 2"},
	{"max circuits zero", "[relay]\nmax_circuits_per_peer = 0\n", 2, "relay.max_circuits_per_peer", ErrValue, "at least 1, got 0"},
	{"max streams zero", "[relay]\nmax_streams_per_circuit = 0\n", 2, "relay.max_streams_per_circuit", ErrValue, "at least 1"},
	{"handshakes zero", "[relay]\nhandshakes_per_second = 0\n", 2, "relay.handshakes_per_second", ErrValue, "at least 1"},
	{"negative rate", "[relay]\nbandwidth_rate = -1\n", 2, "relay.bandwidth_rate", ErrValue, "at least 0, got -1"},
	{"negative burst", "relay.bandwidth_burst = -5\n", 1, "relay.bandwidth_burst", ErrValue, "at least 0"},
	{"bad root key", "[tis]\nroot_key = \"abc\"\n", 2, "tis.root_key", ErrValue, "base64 of 32 bytes"},
	{"bad tis url", "[tis]\nurl = \"ftp://tis.example\"\n", 2, "tis.url", ErrValue, "http:// or https://"},
	{"tis url http to another host", "[tis]\nurl = \"http://tis.example:7070\"\n", 2, "tis.url", ErrValue, "loopback"},
	{"tis url http to a public address", "[tis]\nurl = \"http://192.0.2.7:7070\"\n", 2, "tis.url", ErrValue, "use https://"},
	{"zero revocation refresh", "[tis]\nrevocation_refresh = \"0s\"\n", 2, "tis.revocation_refresh", ErrValue, "more than 0"},
	{"zero trust refresh", "[trust]\nrefresh = \"0s\"\n", 2, "trust.refresh", ErrValue, "more than 0"},
	{"guard score over 100", "[trust]\nmin_guard_score = 101\n", 2, "trust.min_guard_score", ErrValue, "0..100"},
	{"negative exit score", "[trust]\nmin_exit_score = -1\n", 2, "trust.min_exit_score", ErrValue, "0..100"},
	{"bad attester key", "[trust]\nattesters = [\n  \"AAAA\",\n]\n", 3, "trust.attesters", ErrValue, "public key"},
}

func TestParseErrors(t *testing.T) {
	for _, tt := range errorTests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("f.toml", []byte(tt.file), nil)
			if err == nil {
				t.Fatalf("Parse accepted %q: %+v", tt.file, cfg)
			}
			t.Log(err)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not an *Error", err, err)
			}
			if e.File != "f.toml" || e.Line != tt.line || e.Key != tt.key {
				t.Errorf("error at %s:%d key %q, want f.toml:%d key %q (%v)", e.File, e.Line, e.Key, tt.line, tt.key, e)
			}
			if !errors.Is(err, tt.kind) {
				t.Errorf("error %v is not %v", err, tt.kind)
			}
			if !strings.Contains(e.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", e.Error(), tt.msg)
			}
			if want := "f.toml:"; !strings.HasPrefix(e.Error(), want) {
				t.Errorf("error %q does not start with %q", e.Error(), want)
			}
		})
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		check func(c *Config) bool
	}{
		{"empty file is the defaults", "", func(c *Config) bool { return len(Diff(Default(), c)) == 0 }},
		{"section", "[client]\nhops = 5\n", func(c *Config) bool { return c.Client.Hops == 5 }},
		{"dotted key", "client.hops = 5\n", func(c *Config) bool { return c.Client.Hops == 5 }},
		{"inline table", "client = { hops = 5 }\n", func(c *Config) bool { return c.Client.Hops == 5 && c.Client.Enabled }},
		{"duration", "[client]\ncircuit_dirtiness = \"1h30m\"\n", func(c *Config) bool { return c.Client.CircuitDirtiness.D() == 90*time.Minute }},
		{"empty listen disables", "[client]\nsocks_listen = \"\"\nhttp_listen = \"\"\n", func(c *Config) bool {
			return c.Client.SOCKSListen == "" && c.Client.HTTPListen == "" && c.Client.StatusListen == "127.0.0.1:7080"
		}},
		{"port 0 twice is fine", "[client]\nsocks_listen = \"127.0.0.1:0\"\nhttp_listen = \"127.0.0.1:0\"\n", func(c *Config) bool { return true }},
		{"localhost and ipv6", "[client]\nsocks_listen = \"localhost:1080\"\nhttp_listen = \"[::1]:8118\"\n", func(c *Config) bool { return true }},
		{"bootstrap", "[node]\nbootstrap = [\"/ip4/192.0.2.1/tcp/4001/p2p/" + peerID + "\"]\n", func(c *Config) bool { return len(c.Node.Bootstrap) == 1 }},
		{"exit policy", "[relay]\nenabled = true\nexit = true\nexit_policy = [\"accept 127.0.0.1:*\", \"reject *:25\"]\n", func(c *Config) bool {
			return c.Relay.Exit && len(c.Relay.ExitPolicy) == 2
		}},
		{"byte order mark", "\ufeff[client]\nhops = 5\n", func(c *Config) bool { return c.Client.Hops == 5 }},
		{"crlf", "[client]\r\nhops = 5\r\n", func(c *Config) bool { return c.Client.Hops == 5 }},
		{"tis", "[tis]\nroot_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"\nurl = \"127.0.0.1:7070\"\nrequire = false\nrevocation_refresh = \"1m\"\n", func(c *Config) bool {
			return c.TIS.RootKey != "" && c.TIS.URL == "127.0.0.1:7070" && !c.TIS.Require && c.TIS.RevocationRefresh.D() == time.Minute
		}},
		{"tis https url", "[tis]\nurl = \"https://tis.example:8443/pikcio\"\n", func(c *Config) bool { return c.TIS.URL != "" }},
		{"tis http url on loopback", "[tis]\nurl = \"http://[::1]:7070\"\n", func(c *Config) bool { return c.TIS.URL != "" }},
		{"tis http url on localhost", "[tis]\nurl = \"http://localhost:7070\"\n", func(c *Config) bool { return c.TIS.URL != "" }},
		{"rates", "[relay]\nbandwidth_rate = 1_000_000\nbandwidth_burst = 2000000\n", func(c *Config) bool {
			return c.Relay.BandwidthRate == 1000000 && c.Relay.BandwidthBurst == 2000000
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("f.toml", []byte(tt.file), nil)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !tt.check(c) {
				t.Errorf("unexpected config %+v", c)
			}
		})
	}
}

func TestParseReportsAllValueErrors(t *testing.T) {
	file := "[log]\nlevel = \"loud\"\n[client]\nhops = 9\n[relay]\nexit_policy = [\"bad\", \"accept *:*\", \"worse\"]\n"
	_, err := Parse("f.toml", []byte(file), nil)
	got := Problems(err)
	want := []struct {
		line int
		key  string
	}{{2, "log.level"}, {4, "client.hops"}, {6, "relay.exit_policy"}, {6, "relay.exit_policy"}}
	if len(got) != len(want) {
		t.Fatalf("got %d problems, want %d: %v", len(got), len(want), err)
	}
	for i, w := range want {
		if got[i].Line != w.line || got[i].Key != w.key {
			t.Errorf("problem %d at %d %s, want %d %s", i, got[i].Line, got[i].Key, w.line, w.key)
		}
	}
	// The exit rule errors keep exitnode's type, with the right position.
	var re *exitnode.RuleError
	if !errors.As(got[3], &re) || re.N != 3 || re.Rule != "worse" {
		t.Errorf("last problem %v: RuleError %+v, want rule 3", got[3], re)
	}
	if !strings.Contains(got[3].Error(), `rule 3 "worse"`) {
		t.Errorf("message %q does not name rule 3", got[3].Error())
	}
}

func TestOverride(t *testing.T) {
	tests := []struct {
		name     string
		file     string
		override Override
		wantHops int
		errKey   string // "" for success
		errFile  string
	}{
		{"flag wins over file", "[client]\nhops = 4\n", func(c *Config) { c.Client.Hops = 5 }, 5, "", ""},
		{"file kept where no flag", "[client]\nhops = 4\n", func(c *Config) { c.Log.Level = "debug" }, 4, "", ""},
		{"flag fixes bad file value", "[client]\nhops = 40\n", func(c *Config) { c.Client.Hops = 2 }, 2, "", ""},
		{"bad flag value is not blamed on the file", "[client]\nhops = 4\n", func(c *Config) { c.Client.Hops = 0 }, 0, "client.hops", ""},
		{"bad file value stays blamed on the file", "\n[client]\nhops = 40\n", func(c *Config) { c.Log.Level = "debug" }, 0, "client.hops", "f.toml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("f.toml", []byte(tt.file), tt.override)
			if tt.errKey == "" {
				if err != nil {
					t.Fatal(err)
				}
				if c.Client.Hops != tt.wantHops {
					t.Errorf("hops = %d, want %d", c.Client.Hops, tt.wantHops)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want an *Error", err)
			}
			if e.Key != tt.errKey || e.File != tt.errFile {
				t.Errorf("error %q: key %q file %q, want %q %q", e, e.Key, e.File, tt.errKey, tt.errFile)
			}
			if tt.errFile != "" && e.Line != 3 {
				t.Errorf("error %q: line %d, want 3", e, e.Line)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pikcio.toml")
	if err := os.WriteFile(path, []byte("[client]\nhops = 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, func(c *Config) { c.Log.Format = "json" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Client.Hops != 2 || c.Log.Format != "json" {
		t.Errorf("Load = %+v", c)
	}

	if err := os.WriteFile(path, []byte("[client]\nhops = 20\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path, nil)
	if want := path + ":2: client.hops: must be between 1 and 8, got 20"; err == nil || err.Error() != want {
		t.Errorf("Load error %q, want %q", err, want)
	}

	if _, err := Load(filepath.Join(dir, "missing.toml"), nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}

	big := make([]byte, MaxFileSize+1)
	for i := range big {
		big[i] = '\n'
	}
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path, nil); !errors.Is(err, ErrValue) {
		t.Errorf("Load(too big) = %v, want ErrValue", err)
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		e    *Error
		want string
	}{
		{&Error{File: "a.toml", Line: 3, Key: "client.hops", Err: errors.New("bad")}, "a.toml:3: client.hops: bad"},
		{&Error{File: "a.toml", Key: "node.listen", Err: errors.New("bad")}, "a.toml: node.listen: bad"},
		{&Error{Key: "client.hops", Err: errors.New("bad")}, "client.hops: bad"},
		{&Error{File: "a.toml", Line: 1, Err: errors.New("bad")}, "a.toml:1: bad"},
		{&Error{File: "a.toml", Line: 7, Key: "x.y", Err: &problem{kind: ErrUnknownKey, msg: "unknown key"}}, "a.toml:7: unknown key x.y"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.e.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}
