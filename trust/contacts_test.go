package trust

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

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
	if want := []string{"Add", "AddExchanged", "AddWithNode", "ByNode", "Find", "Get", "List", "Path", "Reload", "ReloadIfChanged", "Remove"}; !slices.Equal(names, want) {
		t.Fatalf("Contacts methods %v, want exactly %v (names never leave the device)", names, want)
	}
}

// enrollWithNode enrolls name at tt and returns both certificates.
func (tt *testTIS) enrollWithNode(t *testing.T, name string) *tis.Enrollment {
	t.Helper()
	return tt.s.Enroll(t, name).Enrollment
}

func TestContactsNode(t *testing.T) {
	tt := newTestTIS(t)
	carol, dave := tt.enrollWithNode(t, "carol"), tt.enrollWithNode(t, "dave")
	dir := t.TempDir()
	now := time.Now()
	c, err := OpenContacts(dir, tt.root)
	if err != nil {
		t.Fatal(err)
	}
	carolNode, err := carol.NodeCert.PeerID()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddWithNode("Carol", carol.MatryoshkaCert, carol.NodeCert, now); err != nil {
		t.Fatalf("AddWithNode: %v", err)
	}
	if err := c.Add("Carol C.", carol.MatryoshkaCert, now); err != nil { // rename keeps the node
		t.Fatalf("Add: %v", err)
	}
	for _, tc := range []struct {
		name      string
		cert, nc  *tis.Certificate
		wantError error
	}{
		{"Matryoshka certificate as node certificate", dave.MatryoshkaCert, dave.MatryoshkaCert, tis.ErrWrongType},
		{"node certificate as Matryoshka certificate", dave.NodeCert, nil, tis.ErrWrongType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.AddWithNode("x", tc.cert, tc.nc, now); !errors.Is(err, tc.wantError) {
				t.Fatalf("AddWithNode: %v, want %v", err, tc.wantError)
			}
		})
	}

	re, err := OpenContacts(dir, tt.root)
	if err != nil {
		t.Fatal(err)
	}
	ct, ok := re.ByNode(carolNode)
	if !ok || ct.ID != carol.MatryoshkaCert.ID || ct.Name != "Carol C." || ct.NodeCert == nil || ct.NodeCert.Serial != carol.NodeCert.Serial {
		t.Fatalf("ByNode after reopen = %+v, %v", ct, ok)
	}
	if _, ok := re.ByNode(peer.ID("nobody")); ok {
		t.Fatal("ByNode found an unknown node")
	}

	// A version 1 file without node fields (written before they existed)
	// still loads.
	enc, err := dave.MatryoshkaCert.Encode()
	if err != nil {
		t.Fatal(err)
	}
	old := fmt.Sprintf(`{"version":1,"contacts":[{"id":%q,"name":"Dave","cert":%q,"added_at":"2026-01-02T03:04:05Z"}]}`,
		dave.MatryoshkaCert.ID, encodeStd(enc))
	oldDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(oldDir, ContactsFile), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	oc, err := OpenContacts(oldDir, tt.root)
	if err != nil {
		t.Fatalf("old file: %v", err)
	}
	if l := oc.List(); len(l) != 1 || l[0].Name != "Dave" || l[0].Node != "" || l[0].NodeCert != nil {
		t.Fatalf("old file: %+v", l)
	}

	// A node certificate that does not match the node field is refused.
	data, err := os.ReadFile(filepath.Join(dir, ContactsFile))
	if err != nil {
		t.Fatal(err)
	}
	davePeer, err := dave.NodeCert.PeerID()
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(data), carolNode.String(), davePeer.String(), 1)
	if err := os.WriteFile(filepath.Join(dir, ContactsFile), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := re.Reload(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("mismatched node: %v", err)
	}
}

func encodeStd(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestContactsTwoProcesses runs two stores on the same directory, as the
// node and a `pikcio contacts` command are: changes made through one are
// seen by the other after ReloadIfChanged, and concurrent changes through
// both lose nothing.
func TestContactsTwoProcesses(t *testing.T) {
	tt := newTestTIS(t)
	const n = 6
	var ids []identity
	for i := range n {
		ids = append(ids, tt.enroll(t, fmt.Sprintf("user%d", i)))
	}
	dir := t.TempDir()
	now := time.Now()
	nodeSide, err := OpenContacts(dir, tt.root)
	if err != nil {
		t.Fatal(err)
	}
	cli, err := OpenContacts(dir, tt.root)
	if err != nil {
		t.Fatal(err)
	}
	// The first half exists before; the command removes them while the
	// node adds the second half.
	for _, id := range ids[:n/2] {
		if err := nodeSide.Add("old", id.cert, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := cli.ReloadIfChanged(); err != nil {
		t.Fatal(err)
	}
	if len(cli.List()) != n/2 {
		t.Fatalf("cli sees %d contacts after ReloadIfChanged, want %d", len(cli.List()), n/2)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n / 2 {
		wg.Go(func() { errs <- cli.Remove(ids[i].cert.ID) })
		wg.Go(func() { errs <- nodeSide.Add("new", ids[n/2+i].cert, now) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	check := func(c *Contacts) {
		t.Helper()
		var got []tis.ID
		for _, ct := range c.List() {
			got = append(got, ct.ID)
		}
		var want []tis.ID
		for _, id := range ids[n/2:] {
			want = append(want, id.cert.ID)
		}
		slices.SortFunc(want, func(a, b tis.ID) int { return strings.Compare(a.String(), b.String()) })
		if !slices.Equal(got, want) {
			t.Fatalf("contacts %v, want %v", got, want)
		}
	}
	for _, c := range []*Contacts{nodeSide, cli} {
		if err := c.ReloadIfChanged(); err != nil {
			t.Fatal(err)
		}
		check(c)
	}
	fresh, err := OpenContacts(dir, tt.root)
	if err != nil {
		t.Fatal(err)
	}
	check(fresh)
	// Removing what the other store removed is ErrNotFound, whatever this
	// store had in memory.
	if err := nodeSide.Remove(ids[0].cert.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Remove of a removed contact: %v", err)
	}
}

// TestContactsFind: a contact is found by its hex ID or its name, in any
// case and spacing; an unknown query and a shared name are errors.
func TestContactsFind(t *testing.T) {
	tt := newTestTIS(t)
	alice, bob, carol := tt.enroll(t, "alice"), tt.enroll(t, "bob"), tt.enroll(t, "carol")
	c, err := OpenContacts(t.TempDir()+"/node", tt.root)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, a := range []struct {
		name string
		cert *tis.Certificate
	}{{"Alice  from work", alice.cert}, {"Sam", bob.cert}, {"sam", carol.cert}} {
		if err := c.Add(a.name, a.cert, now); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		q    string
		want tis.ID
		err  error
	}{
		{"alice from work", alice.cert.ID, nil},
		{" ALICE   FROM WORK ", alice.cert.ID, nil},
		{strings.ToUpper(bob.cert.ID.String()), bob.cert.ID, nil},
		{"Sam", tis.ID{}, ErrAmbiguousContact},
		{"dave", tis.ID{}, ErrNotFound},
		{strings.Repeat("0", len(alice.cert.ID.String())), tis.ID{}, ErrNotFound},
	} {
		ct, err := c.Find(tc.q)
		if !errors.Is(err, tc.err) || (tc.err == nil && ct.ID != tc.want) {
			t.Errorf("Find(%q) = %v, %v; want %v, %v", tc.q, ct.ID, err, tc.want, tc.err)
		}
	}
}

func FuzzDecodeServiceCard(f *testing.F) {
	card := &ServiceCard{Address: [32]byte{1}, ClientKey: [32]byte{2}}
	for _, s := range [][]byte{nil, card.Encode(), make([]byte, 63), make([]byte, 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeServiceCard(b)
		switch {
		case err != nil:
			if len(b) == 0 || len(b) == ServiceCardLen {
				t.Fatalf("%d bytes refused: %v", len(b), err)
			}
		case c == nil:
			if len(b) != 0 {
				t.Fatalf("%d bytes gave no card", len(b))
			}
		case !bytes.Equal(c.Encode(), b):
			t.Fatal("card does not encode back to its bytes")
		}
	})
}
