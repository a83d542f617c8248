package service_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pikcio/pikcio/service"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"blog", true},
		{"my-blog-2", true},
		{"a", true},
		{strings.Repeat("a", service.MaxNameLen), true},
		{strings.Repeat("a", service.MaxNameLen+1), false},
		{"", false},
		{"Blog", false},
		{"-blog", false},
		{"blog-", false},
		{"my blog", false},
		{"../x", false},
		{"a.b", false},
		{"client", false}, // the client key's file
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := service.CheckName(tt.name)
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, service.ErrBadName)) {
				t.Fatalf("CheckName(%q) = %v", tt.name, err)
			}
		})
	}
}

// TestKeyDir: a service's key and the client key are made once and kept
// (mode 0600); List names the services, not the client key; Card is the
// card a running node presents.
func TestKeyDir(t *testing.T) {
	dir := service.KeyDirOf(t.TempDir())
	a, err := dir.Identity("web")
	if err != nil {
		t.Fatal(err)
	}
	again, err := service.KeyDir(string(dir)).Identity("web")
	if err != nil || again.Address() != a.Address() {
		t.Fatalf("second load: %v %v", again, err)
	}
	if _, err := dir.Identity("../web"); !errors.Is(err, service.ErrBadName) {
		t.Fatalf("a bad name: %v", err)
	}
	k, err := dir.ClientKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"web.key", service.ClientKeyFile} {
		st, err := os.Stat(filepath.Join(string(dir), f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st, err)
		}
	}
	list, err := dir.List()
	if err != nil || len(list) != 1 || list[0].Name != "web" || list[0].Address != a.Address() {
		t.Fatalf("List = %+v %v", list, err)
	}
	c, err := dir.Card("web")
	if err != nil || c.Address != a.Address() || string(c.ClientKey[:]) != string(k.PublicKey().Bytes()) {
		t.Fatalf("Card = %+v %v", c, err)
	}
	if c, err := dir.Card(""); err != nil || c.Address != (service.Address{}) || c.ClientKey == ([32]byte{}) {
		t.Fatalf("Card without a service = %+v %v", c, err)
	}
	var none service.KeyDir
	x, _ := none.Identity("web")
	y, _ := none.Identity("web")
	if x.Address() == y.Address() {
		t.Fatal("keys without a directory are not fresh")
	}
	if l, err := none.List(); l != nil || err != nil {
		t.Fatalf("List without a directory: %v %v", l, err)
	}
}
