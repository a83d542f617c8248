package trust

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/pikcio/pikcio/tis"
)

func TestContacts(t *testing.T) {
	tt := newTestTIS(t)
	alice, bob := tt.enroll(t, "alice"), tt.enroll(t, "bob")
	dir := t.TempDir() + "/node"
	now := time.Now()

	c, err := OpenContacts(dir, tt.root)
	if err != nil {
		t.Fatalf("OpenContacts on a fresh directory: %v", err)
	}
	if len(c.List()) != 0 {
		t.Fatal("fresh store not empty")
	}
	if err := c.Add("  Alice   from work ", alice.cert, now); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := c.Add("Bob", bob.cert, now); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := c.Add("Bobby", bob.cert, now); err != nil { // rename
		t.Fatalf("Add again: %v", err)
	}
	fi, err := os.Stat(c.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("contacts file mode %v, want 0600", fi.Mode().Perm())
	}

	// Refusals.
	for _, tc := range []struct {
		name string
		nm   string
		cert *tis.Certificate
		now  time.Time
		want error
	}{
		{"empty name", " ", alice.cert, now, tis.ErrBadProperties},
		{"no certificate", "x", nil, now, ErrMalformed},
		{"expired certificate", "x", alice.cert, alice.cert.Expires, tis.ErrExpired},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.Add(tc.nm, tc.cert, tc.now); !errors.Is(err, tc.want) {
				t.Fatalf("Add: %v, want %v", err, tc.want)
			}
		})
	}
	other, err := OpenContacts(t.TempDir(), ed25519Key(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Add("alice", alice.cert, now); !errors.Is(err, tis.ErrUnknownIssuer) {
		t.Fatalf("certificate of another TIS: %v", err)
	}

	// Round trip through the file.
	re, err := OpenContacts(dir, tt.root)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	want := c.List()
	got := re.List()
	if len(got) != 2 || !slices.EqualFunc(got, want, func(a, b Contact) bool {
		ea, _ := a.Cert.Encode()
		eb, _ := b.Cert.Encode()
		return a.ID == b.ID && a.Name == b.Name && a.AddedAt.Equal(b.AddedAt) && string(ea) == string(eb)
	}) {
		t.Fatalf("reopened %+v, want %+v", got, want)
	}
	if ct, ok := re.Get(alice.cert.ID); !ok || ct.Name != "Alice from work" {
		t.Fatalf("Get(alice) = %+v, %v", ct, ok)
	}
	if ct, _ := re.Get(bob.cert.ID); ct.Name != "Bobby" {
		t.Fatalf("renamed contact is %q", ct.Name)
	}
	if err := re.Remove(alice.cert.ID); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := re.Remove(alice.cert.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove twice: %v", err)
	}
	re2, err := OpenContacts(dir, tt.root)
	if err != nil {
		t.Fatal(err)
	}
	if l := re2.List(); len(l) != 1 || l[0].ID != bob.cert.ID {
		t.Fatalf("after Remove: %+v", l)
	}

	// A damaged file is an error, not an empty store.
	if err := os.WriteFile(c.Path(), []byte(`{"version":1,"contacts":[{"id":"00","cert":"AAAA"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenContacts(dir, tt.root); !errors.Is(err, tis.ErrMalformed) {
		t.Fatalf("damaged file: %v", err)
	}
}

// TestContactsNoNetworkMethod pins the method set of Contacts: nothing
// that could send a name anywhere.
func TestContactsNoNetworkMethod(t *testing.T) {
	var names []string
	typ := reflect.TypeFor[*Contacts]()
	for i := range typ.NumMethod() {
		names = append(names, typ.Method(i).Name)
	}
	if want := []string{"Add", "Get", "List", "Path", "Remove"}; !slices.Equal(names, want) {
		t.Fatalf("Contacts methods %v, want exactly %v (names never leave the device)", names, want)
	}
}
