package tis

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"
)

// manySerials returns n ascending serials.
func manySerials(n int) []Serial {
	out := make([]Serial, n)
	for i := range out {
		binary.BigEndian.PutUint64(out[i][8:], uint64(i+1)*3)
	}
	return out
}

// signedPages signs the pages of a list of serials with root.
func signedPages(t testing.TB, root ed25519.PrivateKey, seq uint64, serials []Serial) ([]*RevocationList, [][]byte) {
	t.Helper()
	now := time.Unix(1_800_000_000, 0).UTC()
	ls, err := splitRevocations(RevocationList{Sequence: seq, IssuedAt: now, NextUpdate: now.Add(time.Hour), Serials: serials})
	if err != nil {
		t.Fatal(err)
	}
	var blobs [][]byte
	for _, l := range ls {
		if err := l.sign(root); err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, mustEncode(t, l.Encode))
	}
	return ls, blobs
}

// TestRevocationPages: a list longer than a page comes in pages that
// assemble into one list; pages of another list, out of order, missing,
// overlapping or short in the middle are refused.
func TestRevocationPages(t *testing.T) {
	root := newRootKey(t)
	pub := root.Public().(ed25519.PublicKey)
	serials := manySerials(2*MaxRevoked + 5)
	ls, pages := signedPages(t, root, 9, serials)
	if len(pages) != 3 || ls[2].Pages != 3 || len(ls[2].Serials) != 5 {
		t.Fatalf("%d pages", len(pages))
	}
	_, other := signedPages(t, root, 10, serials)
	_, foreign := signedPages(t, newRootKey(t), 9, serials)
	// A list whose middle page is short: pages signed by the root, split
	// otherwise than the TIS does.
	short := func() [][]byte {
		now := ls[0].IssuedAt
		var out [][]byte
		for i, part := range [][]Serial{serials[:10], serials[10 : 10+MaxRevoked], serials[10+MaxRevoked : 20+MaxRevoked]} {
			l := &RevocationList{Sequence: 9, IssuedAt: now, NextUpdate: now.Add(time.Hour), Page: uint32(i), Pages: 3, Serials: part}
			if err := l.sign(root); err != nil {
				t.Fatal(err)
			}
			out = append(out, mustEncode(t, l.Encode))
		}
		return out
	}()
	// Overlap: page 1 repeats page 0's last serial.
	overlap := func() [][]byte {
		now := ls[0].IssuedAt
		var out [][]byte
		for i, part := range [][]Serial{serials[:MaxRevoked], serials[MaxRevoked-1 : MaxRevoked+3]} {
			l := &RevocationList{Sequence: 9, IssuedAt: now, NextUpdate: now.Add(time.Hour), Page: uint32(i), Pages: 2, Serials: part}
			if err := l.sign(root); err != nil {
				t.Fatal(err)
			}
			out = append(out, mustEncode(t, l.Encode))
		}
		return out
	}()
	tests := []struct {
		name  string
		pages [][]byte
		want  error
	}{
		{"all pages", pages, nil},
		{"a page missing", pages[:2], ErrMalformed},
		{"out of order", [][]byte{pages[0], pages[2], pages[1]}, ErrMalformed},
		{"a page of the next list", [][]byte{pages[0], other[1], pages[2]}, ErrMalformed},
		{"a foreign page", [][]byte{pages[0], foreign[1], pages[2]}, ErrUnknownIssuer},
		{"a short page in the middle", short, ErrMalformed},
		{"overlapping pages", overlap, ErrMalformed},
		{"no page", nil, ErrMalformed},
		{"too many pages", slices.Repeat(pages[:1], MaxRevocationPages+1), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := AssembleRevocationList(tc.pages, pub)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			if len(l.Serials) != len(serials) || !l.Revoked(serials[0]) || !l.Revoked(serials[MaxRevoked+1]) || !l.Revoked(serials[len(serials)-1]) || l.Revoked(Serial{0xff}) {
				t.Fatalf("assembled: %v", l)
			}
			if err := l.Verify(pub); err != nil {
				t.Fatal(err)
			}
			again, err := l.EncodePages()
			if err != nil || !slices.EqualFunc(again, pages, bytes.Equal) {
				t.Fatalf("EncodePages: %v", err)
			}
			if _, err := l.Encode(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Encode of a list of pages: %v", err)
			}
		})
	}
	// A list of one page encodes as before pages (version 1).
	_, one := signedPages(t, root, 1, serials[:3])
	if len(one) != 1 || one[0][0] != revocationVersion {
		t.Fatalf("one page: version %d", one[0][0])
	}
	if _, err := splitRevocations(RevocationList{Serials: manySerials(MaxRevocationPages*MaxRevoked + 1)}); err == nil {
		t.Fatal("split a list over the page limit")
	}
}

// TestServerRevocationPages: a TIS with more revoked serials than a page
// holds (a revocation used to fail there) signs and serves the list in
// pages; a client fetches all of them, and a serial of the last page is
// revoked for it. The DHT validator takes each page under its key only.
func TestServerRevocationPages(t *testing.T) {
	for name, db := range backends(t) {
		t.Run(name, func(t *testing.T) { testServerRevocationPages(t, db(t)) })
	}
}

func testServerRevocationPages(t *testing.T, db string) {
	tt := newTestTIS(t, ServerOptions{DB: db})
	ctx := testCtx(t)
	n := newTestNode(t)
	e, err := tt.client().Enroll(ctx, n.key, n.mkey, "Erin", "erin@example.org")
	if err != nil {
		t.Fatal(err)
	}
	// Revoked serials of made-up people, in bulk.
	fillRevoked(t, ctx, tt.srv, MaxRevoked+100, time.Now().Add(time.Hour))
	if err := tt.srv.Revoke(e.NodeCert.Serial); err != nil {
		t.Fatalf("revoke past one page: %v", err)
	}
	l, err := tt.client().FetchRevocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.PageCount() != 2 || len(l.Serials) != MaxRevoked+101 || !l.Revoked(e.NodeCert.Serial) {
		t.Fatalf("fetched %v", l)
	}
	cache := NewRevocationCache(tt.root)
	pages, err := l.EncodePages()
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := cache.Update(pages...); !ok || err != nil {
		t.Fatalf("cache update: %v", err)
	}
	if _, err := cache.Update(pages[0]); err == nil {
		t.Fatal("cache took the first page alone")
	}
	if err := VerifyNodeCert(e.NodeCert, tt.root, n.id, time.Now(), cache.List()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked certificate: %v", err)
	}
	v := RevocationValidator{Root: tt.root}
	if err := v.Validate(RevocationPageKey(tt.root, 1), pages[1]); err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(RevocationKey(tt.root), pages[1]); err == nil {
		t.Fatal("page 1 validated under the key of page 0")
	}
	// Pages past the end and bad page numbers.
	for _, q := range []string{"?page=2", "?page=-1", "?page=x", "?page=99999999999999999999"} {
		if _, err := tt.client().get(ctx, PathRevocations+q, int64(MaxRevocationListSize)); err == nil {
			t.Fatalf("%s answered", q)
		}
	}
}

// FuzzAssembleRevocationPages: any two pages assemble or are refused
// without a panic; an assembled list holds every serial of its pages,
// strictly ascending.
func FuzzAssembleRevocationPages(f *testing.F) {
	root := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	_, pages := signedPages(f, root, 3, manySerials(MaxRevoked+2))
	f.Add(pages[0], pages[1])
	f.Add(pages[1], pages[0])
	f.Add(mustEncode(f, seedRevocations(f).Encode), []byte{2})
	// A list of one page and a delta on it.
	_, one := signedPages(f, root, 3, manySerials(4))
	f.Add(one[0], signedDelta(f, root, 5, 3, []Serial{{0xee}}))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		var ls []*RevocationList
		for _, p := range [][]byte{a, b} {
			l, err := DecodeRevocationList(p)
			if err != nil {
				return
			}
			ls = append(ls, l)
		}
		for _, in := range [][]*RevocationList{ls[:1], ls} {
			l, err := assemblePages(in)
			if err != nil {
				continue
			}
			for i := 1; i < len(l.Serials); i++ {
				if bytes.Compare(l.Serials[i-1][:], l.Serials[i][:]) >= 0 {
					t.Fatal("assembled serials not ascending")
				}
			}
			for _, p := range in {
				for _, s := range p.Serials {
					if !l.Revoked(s) {
						t.Fatalf("serial %s of a page not revoked", s)
					}
				}
			}
		}
		_, _ = AssembleRevocationList([][]byte{a, b}, root.Public().(ed25519.PublicKey))
	})
}

// pageStore is a RecordGetter over a map.
type pageStore map[string][]byte

func (s pageStore) GetRecord(_ context.Context, key string) ([]byte, error) {
	if b, ok := s[key]; ok {
		return b, nil
	}
	return nil, errors.New("not found")
}

// TestGetRevocationPages: every page of a long list is read from the DHT
// (the crawler read only the first, and kept its old list for good once
// the list outgrew a page); a missing page is an error, not a short list.
func TestGetRevocationPages(t *testing.T) {
	pub, root, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, blobs := signedPages(t, root, 7, manySerials(MaxRevoked+100))
	if len(blobs) != 2 {
		t.Fatalf("%d pages, want 2", len(blobs))
	}
	store := pageStore{}
	for i, b := range blobs {
		store[RevocationPageKey(pub, i)] = b
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pages, err := GetRevocationPages(ctx, store, pub)
	if err != nil {
		t.Fatal(err)
	}
	c := NewRevocationCache(pub)
	if _, err := c.Update(pages...); err != nil {
		t.Fatal(err)
	}
	if got := len(c.List().Serials); got != MaxRevoked+100 {
		t.Fatalf("%d serials, want %d", got, MaxRevoked+100)
	}
	delete(store, RevocationPageKey(pub, 1))
	if _, err := GetRevocationPages(ctx, store, pub); err == nil {
		t.Fatal("a list with a missing page was read")
	}
}
