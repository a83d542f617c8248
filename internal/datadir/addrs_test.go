package datadir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestAddrs(t *testing.T) {
	a1 := ma.StringCast("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWGzBcvMfNDGBhVs1tPiWpuEHqxsGdxGqDCNJbtWD2ac2P")
	a2 := ma.StringCast("/ip6/::1/tcp/4001/p2p/12D3KooWGzBcvMfNDGBhVs1tPiWpuEHqxsGdxGqDCNJbtWD2ac2P")
	dir := t.TempDir()
	if _, err := ReadAddrs(dir, 8); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("no file: %v, want not running", err)
	}
	if err := WriteAddrs(dir, []ma.Multiaddr{a1, a2}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, AddrsFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("addrs file: %v %v", fi, err)
	}
	got, err := ReadAddrs(dir, 8)
	if err != nil || len(got) != 2 || !got[0].Equal(a1) || !got[1].Equal(a2) {
		t.Fatalf("read %v, %v", got, err)
	}
	if got, err := ReadAddrs(dir, 1); err != nil || len(got) != 1 {
		t.Fatalf("at most one: %v, %v", got, err)
	}
	RemoveAddrs(dir)
	if _, err := os.Stat(filepath.Join(dir, AddrsFile)); !os.IsNotExist(err) {
		t.Fatalf("after RemoveAddrs: %v", err)
	}

	for name, body := range map[string]string{
		"empty":   "\n  \n",
		"garbage": a1.String() + "\nnot an address\n",
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, AddrsFile), []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			if got, err := ReadAddrs(dir, 8); err == nil {
				t.Fatalf("read %v from %q", got, body)
			}
		})
	}
}
