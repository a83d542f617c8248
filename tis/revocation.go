package tis

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pikcio/pikcio/internal/wire"
)

const (
	// revocationVersion encodes a list of one page; revocationVersionPaged
	// one page of several (with its page number and the page count).
	revocationVersion      = 1
	revocationVersionPaged = 2
	// revocationVersionDelta encodes a delta: the serials revoked since
	// the base list it names.
	revocationVersionDelta = 3
	// MaxRevoked caps the serials in one page of a revocation list (512
	// KiB of serials), keeping a page a reasonable DHT record and HTTP
	// answer. A longer list is split into pages.
	MaxRevoked = 1 << 15
	// MaxRevocationPages caps the pages of one list: at most
	// MaxRevocationPages*MaxRevoked serials (2M; 32 MiB), what a client
	// fetches at most. Revoked certificates leave the list when they
	// expire (a year by default).
	MaxRevocationPages = 64
	// MaxRevocationListSize caps an encoded page.
	MaxRevocationListSize = 1 + 8 + 8 + 8 + 8 + 8 + 4 + 4 + 4 + MaxRevoked*len(Serial{}) + 2 + ed25519.SignatureSize
	// RevocationNamespace is the DHT record namespace of revocation lists.
	RevocationNamespace = "pikcio-tis-revocations"
)

// RevocationList is the TIS-signed list of revoked serials. A list with a
// higher Sequence replaces one with a lower.
//
// A list of more than MaxRevoked serials comes in Pages pages, each
// signed on its own (with the same Sequence, times and page count, and
// its Page number), the serials ascending across them; HTTP serves page i
// at PathRevocations?page=i, the DHT under RevocationPageKey. A list of
// one page encodes as before pages existed. AssembleRevocationList joins
// the pages into one list, which keeps them (EncodePages).
type RevocationList struct {
	Issuer     KeyID
	Sequence   uint64
	IssuedAt   time.Time // whole seconds
	NextUpdate time.Time // whole seconds; a newer list is due by then
	// Page is this page's number and Pages the list's page count (0 or 1:
	// a list of one page).
	Page, Pages uint32
	// Base, in a delta, is the sequence of the list of pages it adds to
	// (0: not a delta). A delta carries the serials revoked since that
	// base, and its Sequence and times stand for the whole list.
	Base      uint64
	Serials   []Serial // strictly ascending
	Signature []byte

	// pages are the signed pages of an assembled list of several.
	pages []*RevocationList
}

func (l *RevocationList) body() ([]byte, error) {
	if len(l.Serials) > MaxRevoked {
		return nil, fmt.Errorf("revocation list of %d serials: %w", len(l.Serials), ErrMalformed)
	}
	if !validTime(l.IssuedAt) || !validTime(l.NextUpdate) || !l.NextUpdate.After(l.IssuedAt) {
		return nil, fmt.Errorf("revocation list times out of range or next update before issue: %w", ErrMalformed)
	}
	paged := l.Pages > 1
	if l.Pages > MaxRevocationPages || (paged && l.Page >= l.Pages) || (!paged && l.Page != 0) {
		return nil, fmt.Errorf("revocation list page %d of %d: %w", l.Page, l.Pages, ErrMalformed)
	}
	delta := l.Base != 0
	if delta && (paged || l.Base > l.Sequence) {
		return nil, fmt.Errorf("revocation delta %d on list %d of %d pages: %w", l.Sequence, l.Base, l.Pages, ErrMalformed)
	}
	b := make([]byte, 0, 1+8+8+8+8+8+4+4+4+len(l.Serials)*len(Serial{})+2+ed25519.SignatureSize)
	switch {
	case delta:
		b = append(b, revocationVersionDelta)
	case paged:
		b = append(b, revocationVersionPaged)
	default:
		b = append(b, revocationVersion)
	}
	b = append(b, l.Issuer[:]...)
	b = binary.BigEndian.AppendUint64(b, l.Sequence)
	if delta {
		b = binary.BigEndian.AppendUint64(b, l.Base)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(l.IssuedAt.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(l.NextUpdate.Unix()))
	if paged {
		b = binary.BigEndian.AppendUint32(b, l.Page)
		b = binary.BigEndian.AppendUint32(b, l.Pages)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(l.Serials)))
	for i, s := range l.Serials {
		if i > 0 && bytes.Compare(l.Serials[i-1][:], s[:]) >= 0 {
			return nil, fmt.Errorf("revocation list serials not strictly ascending: %w", ErrMalformed)
		}
		b = append(b, s[:]...)
	}
	return b, nil
}

// Encode returns the canonical encoding of a signed list (of one page):
// the blob served over HTTP and suitable as a DHT record value. An
// assembled list of several pages has EncodePages instead.
func (l *RevocationList) Encode() ([]byte, error) {
	if l.pages != nil {
		return nil, fmt.Errorf("revocation list of %d pages: encode each: %w", len(l.pages), ErrMalformed)
	}
	b, err := l.body()
	if err != nil {
		return nil, err
	}
	return wire.AppendSignature(b, l.Signature, "revocation list", ErrMalformed)
}

func (l *RevocationList) sign(root ed25519.PrivateKey) error {
	l.Issuer = RootKeyID(root.Public().(ed25519.PublicKey))
	b, err := l.body()
	if err != nil {
		return err
	}
	l.Signature = wire.Sign(root, revocationContext, b)
	return nil
}

// DecodeRevocationList parses a canonical revocation list encoding. It
// checks the form only; call Verify to trust it.
func DecodeRevocationList(b []byte) (*RevocationList, error) {
	if len(b) > MaxRevocationListSize {
		return nil, fmt.Errorf("revocation list of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	v := r.U8("revocation list version")
	if r.Err() == nil && v != revocationVersion && v != revocationVersionPaged && v != revocationVersionDelta {
		r.Fail("revocation list version %d", v)
	}
	l := &RevocationList{}
	copy(l.Issuer[:], r.Take(len(l.Issuer), "issuer"))
	l.Sequence = r.U64("sequence")
	if v == revocationVersionDelta {
		l.Base = r.U64("base")
		if r.Err() == nil && (l.Base == 0 || l.Base > l.Sequence) {
			r.Fail("delta %d on list %d", l.Sequence, l.Base)
		}
	}
	l.IssuedAt = time.Unix(int64(r.U64("issue time")), 0).UTC()
	l.NextUpdate = time.Unix(int64(r.U64("next update")), 0).UTC()
	if v == revocationVersionPaged {
		l.Page = r.U32("page")
		l.Pages = r.U32("pages")
		if r.Err() == nil && (l.Pages < 2 || l.Pages > MaxRevocationPages || l.Page >= l.Pages) {
			r.Fail("page %d of %d", l.Page, l.Pages)
		}
	}
	n := r.U32("serial count")
	if r.Err() == nil && n > MaxRevoked {
		r.Fail("%d serials", n)
	}
	if r.Err() == nil {
		raw := r.Take(int(n)*len(Serial{}), "serials")
		if r.Err() == nil && n > 0 {
			l.Serials = make([]Serial, n)
			for i := range l.Serials {
				copy(l.Serials[i][:], raw[i*len(Serial{}):])
			}
		}
	}
	l.Signature = r.Bytes16("signature", ed25519.SignatureSize)
	r.End("revocation list")
	if r.Err() != nil {
		return nil, r.Err()
	}
	if _, err := l.Encode(); err != nil {
		return nil, err
	}
	return l, nil
}

// Verify checks that root signed l (each page of an assembled list).
// Freshness is separate (Stale): an old list still says which serials
// were revoked.
func (l *RevocationList) Verify(root ed25519.PublicKey) error {
	if l == nil {
		return fmt.Errorf("nil revocation list: %w", ErrMalformed)
	}
	if l.pages != nil {
		for _, p := range l.pages {
			if err := p.Verify(root); err != nil {
				return err
			}
		}
		return nil
	}
	if len(root) != ed25519.PublicKeySize {
		return fmt.Errorf("root key of %d bytes: %w", len(root), ErrMalformed)
	}
	if l.Issuer != RootKeyID(root) {
		return fmt.Errorf("revocation list from issuer %s: %w", l.Issuer, ErrUnknownIssuer)
	}
	b, err := l.body()
	if err != nil {
		return err
	}
	if !wire.Verify(root, revocationContext, b, l.Signature) {
		return fmt.Errorf("revocation list %d: %w", l.Sequence, ErrSignature)
	}
	return nil
}

// Stale reports whether a newer list was due by now.
func (l *RevocationList) Stale(now time.Time) bool {
	return l == nil || !now.Before(l.NextUpdate)
}

// Revoked reports whether s is on the list. A nil list revokes nothing.
func (l *RevocationList) Revoked(s Serial) bool {
	if l == nil {
		return false
	}
	_, found := slices.BinarySearchFunc(l.Serials, s, func(a, b Serial) int { return bytes.Compare(a[:], b[:]) })
	return found
}

// ParseRevocationList decodes and verifies an encoded list.
func ParseRevocationList(b []byte, root ed25519.PublicKey) (*RevocationList, error) {
	l, err := DecodeRevocationList(b)
	if err != nil {
		return nil, err
	}
	if err := l.Verify(root); err != nil {
		return nil, err
	}
	return l, nil
}

// PageCount is the number of pages of l (1 for a list of one), not
// counting a delta.
func (l *RevocationList) PageCount() int { return max(1, int(l.Pages)) }

// Delta returns the delta of an assembled list, nil if it has none.
func (l *RevocationList) Delta() *RevocationList {
	if l == nil || len(l.pages) == 0 || l.pages[len(l.pages)-1].Base == 0 {
		return nil
	}
	return l.pages[len(l.pages)-1]
}

// BaseSequence is the sequence of the pages of l: its delta's Base, or
// its Sequence without a delta.
func (l *RevocationList) BaseSequence() uint64 {
	if d := l.Delta(); d != nil {
		return d.Base
	}
	return l.Sequence
}

// WithDelta joins a new delta, which the caller verified, to the pages
// l holds (its own delta dropped): the list of the delta, with no page
// fetched again. The delta must be on l's pages (BaseSequence).
func (l *RevocationList) WithDelta(d *RevocationList) (*RevocationList, error) {
	if d == nil || d.Base == 0 || d.Base != l.BaseSequence() {
		return nil, fmt.Errorf("revocation delta not on list %d: %w", l.BaseSequence(), ErrMalformed)
	}
	base := l.pages
	if base == nil {
		base = []*RevocationList{l}
	}
	if l.Delta() != nil {
		base = base[:len(base)-1]
	}
	return assemblePages(append(slices.Clone(base), d))
}

// EncodePages returns the encoded pages of l: one for a list of one page.
func (l *RevocationList) EncodePages() ([][]byte, error) {
	if l.pages == nil {
		b, err := l.Encode()
		if err != nil {
			return nil, err
		}
		return [][]byte{b}, nil
	}
	out := make([][]byte, len(l.pages))
	for i, p := range l.pages {
		b, err := p.Encode()
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// splitRevocations makes the pages of a list of serials (ascending): one
// list when they fit in one page.
func splitRevocations(l RevocationList) ([]*RevocationList, error) {
	n := (len(l.Serials) + MaxRevoked - 1) / MaxRevoked
	if n <= 1 {
		l.Page, l.Pages = 0, 0
		return []*RevocationList{&l}, nil
	}
	if n > MaxRevocationPages {
		return nil, fmt.Errorf("revocation list of %d serials: over %d pages of %d", len(l.Serials), MaxRevocationPages, MaxRevoked)
	}
	pages := make([]*RevocationList, n)
	for i := range pages {
		p := l
		p.Page, p.Pages = uint32(i), uint32(n)
		p.Serials = l.Serials[i*MaxRevoked : min(len(l.Serials), (i+1)*MaxRevoked)]
		pages[i] = &p
	}
	return pages, nil
}

// AssembleRevocationList decodes and verifies the encoded pages of one
// list, in order, and joins them; the last may be a delta on the others.
func AssembleRevocationList(pages [][]byte, root ed25519.PublicKey) (*RevocationList, error) {
	if len(pages) == 0 || len(pages) > MaxRevocationPages+1 {
		return nil, fmt.Errorf("revocation list of %d pages: %w", len(pages), ErrMalformed)
	}
	ls := make([]*RevocationList, len(pages))
	for i, b := range pages {
		l, err := ParseRevocationList(b, root)
		if err != nil {
			return nil, fmt.Errorf("revocation list page %d: %w", i, err)
		}
		ls[i] = l
	}
	return assemblePages(ls)
}

// assemblePages joins the pages of one list: the same sequence, times
// and page count, numbered in order, the serials ascending across them;
// then a delta, if the last is one, on that list: the list of the
// delta's sequence and times, with the serials of both.
func assemblePages(ls []*RevocationList) (*RevocationList, error) {
	if len(ls) == 0 {
		return nil, fmt.Errorf("revocation list of no page: %w", ErrMalformed)
	}
	d := ls[len(ls)-1]
	if d.Base == 0 {
		return assembleBase(ls)
	}
	if len(ls) < 2 {
		return nil, fmt.Errorf("revocation delta %d without its list %d: %w", d.Sequence, d.Base, ErrMalformed)
	}
	base, err := assembleBase(ls[:len(ls)-1])
	if err != nil {
		return nil, err
	}
	if d.Issuer != base.Issuer || d.Base != base.Sequence {
		return nil, fmt.Errorf("revocation delta %d on list %d, not on list %d: %w", d.Sequence, d.Base, base.Sequence, ErrMalformed)
	}
	out := *base
	out.Sequence, out.IssuedAt, out.NextUpdate, out.Signature = d.Sequence, d.IssuedAt, d.NextUpdate, nil
	out.Serials = mergeSerials(base.Serials, d.Serials)
	out.pages = slices.Clone(ls)
	return &out, nil
}

// mergeSerials merges two ascending lists into a new one, each serial once.
func mergeSerials(a, b []Serial) []Serial {
	out := make([]Serial, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		var c int
		switch {
		case len(a) == 0:
			c = 1
		case len(b) == 0:
			c = -1
		default:
			c = bytes.Compare(a[0][:], b[0][:])
		}
		switch {
		case c < 0:
			out, a = append(out, a[0]), a[1:]
		case c > 0:
			out, b = append(out, b[0]), b[1:]
		default:
			out, a, b = append(out, a[0]), a[1:], b[1:]
		}
	}
	return out
}

// assembleBase joins the pages of a list without a delta.
func assembleBase(ls []*RevocationList) (*RevocationList, error) {
	first := ls[0]
	if first.PageCount() != len(ls) {
		return nil, fmt.Errorf("revocation list of %d pages, %d given: %w", first.PageCount(), len(ls), ErrMalformed)
	}
	if len(ls) == 1 {
		return first, nil
	}
	n := 0
	for i, l := range ls {
		if l.Base != 0 {
			return nil, fmt.Errorf("revocation delta %d as page %d: %w", l.Sequence, i, ErrMalformed)
		}
		if l.Issuer != first.Issuer || l.Sequence != first.Sequence || !l.IssuedAt.Equal(first.IssuedAt) ||
			!l.NextUpdate.Equal(first.NextUpdate) || l.Pages != first.Pages || l.Page != uint32(i) {
			return nil, fmt.Errorf("revocation list %d page %d: not page %d of list %d: %w", l.Sequence, l.Page, i, first.Sequence, ErrMalformed)
		}
		if i > 0 && len(l.Serials) > 0 && n > 0 {
			prev := ls[i-1].Serials
			if len(prev) > 0 && bytes.Compare(prev[len(prev)-1][:], l.Serials[0][:]) >= 0 {
				return nil, fmt.Errorf("revocation list %d: page %d does not follow page %d: %w", l.Sequence, i, i-1, ErrMalformed)
			}
		}
		// Only the last page may be short: no empty page in between.
		if i < len(ls)-1 && len(l.Serials) != MaxRevoked {
			return nil, fmt.Errorf("revocation list %d: page %d of %d serials: %w", l.Sequence, i, len(l.Serials), ErrMalformed)
		}
		n += len(l.Serials)
	}
	all := make([]Serial, 0, n)
	for _, l := range ls {
		all = append(all, l.Serials...)
	}
	out := *first
	out.Page, out.Serials, out.Signature, out.pages = 0, all, nil, ls
	return &out, nil
}

// RevocationKey is the DHT record key of the revocation list of root (of
// its first page).
func RevocationKey(root ed25519.PublicKey) string {
	return "/" + RevocationNamespace + "/" + RootKeyID(root).String()
}

// RevocationPageKey is the DHT record key of page i of the list of root:
// RevocationKey for the first, RevocationKey/i after it.
func RevocationPageKey(root ed25519.PublicKey, i int) string {
	if i == 0 {
		return RevocationKey(root)
	}
	return RevocationKey(root) + "/" + strconv.Itoa(i)
}

// RevocationDeltaKey is the DHT record key of the delta of the list of
// root, on the pages under RevocationPageKey.
func RevocationDeltaKey(root ed25519.PublicKey) string {
	return RevocationKey(root) + "/delta"
}

// RevocationValidator validates revocation list records the way a
// go-libp2p-record Validator does, for the namespace RevocationNamespace.
type RevocationValidator struct {
	Root ed25519.PublicKey
}

// Validate checks that value is a list (page) signed by the root, under
// its key (RevocationPageKey of its page).
func (v RevocationValidator) Validate(key string, value []byte) error {
	if !strings.HasPrefix(key, RevocationKey(v.Root)) {
		return fmt.Errorf("revocation record key %q: %w", key, ErrUnknownIssuer)
	}
	l, err := ParseRevocationList(value, v.Root)
	if err != nil {
		return err
	}
	want := RevocationPageKey(v.Root, int(l.Page))
	if l.Base != 0 {
		want = RevocationDeltaKey(v.Root)
	}
	if key != want {
		return fmt.Errorf("revocation list page %d (delta on %d) under key %q: %w", l.Page, l.Base, key, ErrMalformed)
	}
	return nil
}

// Select returns the index of the valid list with the highest sequence
// number (the first of equals).
func (v RevocationValidator) Select(key string, values [][]byte) (int, error) {
	best, bestSeq := -1, uint64(0)
	var firstErr error
	for i, val := range values {
		if err := v.Validate(key, val); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		l, _ := DecodeRevocationList(val)
		if best < 0 || l.Sequence > bestSeq {
			best, bestSeq = i, l.Sequence
		}
	}
	if best < 0 {
		if firstErr == nil {
			firstErr = fmt.Errorf("no revocation list: %w", ErrMalformed)
		}
		return 0, fmt.Errorf("select among %d revocation lists: %w", len(values), firstErr)
	}
	return best, nil
}

// RevocationCache holds the newest valid revocation list a client has seen.
// It is safe for concurrent use.
type RevocationCache struct {
	root ed25519.PublicKey
	mu   sync.RWMutex
	list *RevocationList
}

// NewRevocationCache returns an empty cache for lists signed by root.
func NewRevocationCache(root ed25519.PublicKey) *RevocationCache {
	return &RevocationCache{root: root}
}

// Update verifies an encoded list (all its pages, in order) and keeps it
// if its sequence number is higher than the held list's. It reports
// whether the list replaced it.
func (c *RevocationCache) Update(pages ...[]byte) (bool, error) {
	l, err := AssembleRevocationList(pages, c.root)
	if err != nil {
		return false, fmt.Errorf("revocation list update: %w", err)
	}
	return c.Offer(l), nil
}

// Offer keeps l, which the caller verified, if it is newer than the held
// list, and reports whether it did.
func (c *RevocationCache) Offer(l *RevocationList) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.list != nil && l.Sequence <= c.list.Sequence {
		return false
	}
	c.list = l
	return true
}

// List returns the held list, or nil. It must not be modified.
func (c *RevocationCache) List() *RevocationList {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.list
}

// String is for logs.
func (l *RevocationList) String() string {
	if l == nil {
		return "revocation list <nil>"
	}
	return fmt.Sprintf("revocation list %d (%d serials in %d pages, next update %s)", l.Sequence, len(l.Serials), l.PageCount(), l.NextUpdate.Format(time.RFC3339))
}
