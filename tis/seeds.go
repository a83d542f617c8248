package tis

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pikcio/pikcio/internal/privfile"
	"github.com/pikcio/pikcio/internal/wire"
)

const (
	seedListVersion = 1
	seedListKind    = 0x53 // 'S'
)

func compareID(a, b ID) int { return bytes.Compare(a[:], b[:]) }

// SeedList is the TIS's signed list of seed identities: the pre-trusted
// set that all trust flows from (trust.Options.Seeds). Nodes fetch it from the
// TIS (PathSeeds) and spread it through the DHT (trust.SeedsKey), so every node uses the same seeds, which the
// consensus on scores requires. A later IssuedAt replaces the list.
type SeedList struct {
	Issuer    KeyID
	IssuedAt  time.Time
	Seeds     []ID // sorted, distinct
	Signature []byte
}

// MaxSeeds caps a seed list.
const MaxSeeds = 256

var seedListContext = []byte("pikcio-trust-seeds-v1\x00")

func (l *SeedList) body() ([]byte, error) {
	if !validTime(l.IssuedAt) || len(l.Seeds) > MaxSeeds {
		return nil, fmt.Errorf("seed list of %d: %w", len(l.Seeds), ErrMalformed)
	}
	if !slices.IsSortedFunc(l.Seeds, compareID) || len(slices.CompactFunc(slices.Clone(l.Seeds), func(a, b ID) bool { return a == b })) != len(l.Seeds) {
		return nil, fmt.Errorf("seed list not sorted and distinct: %w", ErrMalformed)
	}
	out := make([]byte, 0, 2+8+8+2+32*len(l.Seeds)+2+ed25519.SignatureSize)
	out = append(out, seedListVersion, seedListKind)
	out = append(out, l.Issuer[:]...)
	out = appendUnix(out, l.IssuedAt)
	out = binary.BigEndian.AppendUint16(out, uint16(len(l.Seeds)))
	for _, id := range l.Seeds {
		out = append(out, id[:]...)
	}
	return out, nil
}

// NewSeedList returns a seed list of ids (sorted and deduplicated here)
// signed with the TIS root key.
func NewSeedList(ids []ID, issued time.Time, root ed25519.PrivateKey) (*SeedList, error) {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, compareID)
	ids = slices.Compact(ids)
	l := &SeedList{Issuer: RootKeyID(root.Public().(ed25519.PublicKey)), IssuedAt: issued.Truncate(time.Second), Seeds: ids}
	b, err := l.body()
	if err != nil {
		return nil, err
	}
	l.Signature = wire.Sign(root, seedListContext, b)
	return l, nil
}

// Encode returns the canonical encoding of a signed seed list.
func (l *SeedList) Encode() ([]byte, error) {
	b, err := l.body()
	if err != nil {
		return nil, err
	}
	return wire.AppendSignature(b, l.Signature, "seed list", ErrMalformed)
}

// DecodeSeedList parses a canonical seed list (form only).
func DecodeSeedList(data []byte) (*SeedList, error) {
	if len(data) > 2+8+8+2+32*MaxSeeds+2+ed25519.SignatureSize {
		return nil, fmt.Errorf("seed list of %d bytes: %w", len(data), ErrMalformed)
	}
	r := wire.NewReader(data, ErrMalformed)
	if v := r.U8("seed list version"); r.Err() == nil && v != seedListVersion {
		r.Fail("seed list version %d", v)
	}
	if k := r.U8("seed list kind"); r.Err() == nil && k != seedListKind {
		r.Fail("seed list kind %d", k)
	}
	l := &SeedList{}
	copy(l.Issuer[:], r.Take(8, "issuer"))
	l.IssuedAt = r.Time("issue time")
	n := int(r.U16("seeds"))
	if n > MaxSeeds {
		r.Fail("%d seeds", n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		var id ID
		copy(id[:], r.Take(32, "seed"))
		l.Seeds = append(l.Seeds, id)
	}
	l.Signature = r.Bytes16("signature", ed25519.SignatureSize)
	r.End("seed list")
	if r.Err() != nil {
		return nil, r.Err()
	}
	if _, err := l.Encode(); err != nil {
		return nil, err
	}
	return l, nil
}

// Verify checks the list's signature by root and that it was not issued
// in the future.
func (l *SeedList) Verify(root ed25519.PublicKey, now time.Time) error {
	b, err := l.body()
	if err != nil {
		return err
	}
	if l.Issuer != RootKeyID(root) {
		return fmt.Errorf("seed list by %s: %w", l.Issuer, ErrUnknownIssuer)
	}
	if !wire.Verify(root, seedListContext, b, l.Signature) {
		return fmt.Errorf("seed list: %w", ErrSignature)
	}
	if l.IssuedAt.After(now.Add(DefaultMaxClockSkew)) {
		return fmt.Errorf("seed list issued at %s: %w", l.IssuedAt, ErrNotYetValid)
	}
	return nil
}

// SeedsFile in the TIS directory lists the seed identities, one hex
// Matryoshka ID per line ('#' starts a comment). `pikcio tis seed`
// edits it; the server reads it on every request of PathSeeds.
const SeedsFile = "seeds"

// PathSeeds answers a GET with the encoded seed list, signed now.
const PathSeeds = "/v1/seeds"

// MaxSeedListSize caps an encoded seed list.
const MaxSeedListSize = 2 + 8 + 8 + 2 + 32*MaxSeeds + 2 + ed25519.SignatureSize

// ReadSeeds reads the seed IDs of the TIS directory dir (none when the
// file does not exist). Errors name the line.
func ReadSeeds(dir string) ([]ID, error) {
	b, err := os.ReadFile(filepath.Join(dir, SeedsFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read seeds: %w", err)
	}
	var ids []ID
	for i, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		id, err := ParseID(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", filepath.Join(dir, SeedsFile), i+1, err)
		}
		ids = append(ids, id)
	}
	if len(ids) > MaxSeeds {
		return nil, fmt.Errorf("%d seeds, at most %d: %w", len(ids), MaxSeeds, ErrMalformed)
	}
	return ids, nil
}

// WriteSeeds replaces the seed file of dir with ids.
func WriteSeeds(dir string, ids []ID) error {
	ids = slices.Clone(ids)
	slices.SortFunc(ids, compareID)
	ids = slices.Compact(ids)
	var sb strings.Builder
	sb.WriteString("# Seed identities of this TIS: the pre-trusted Matryoshka IDs all trust flows from.\n")
	for _, id := range ids {
		sb.WriteString(id.String() + "\n")
	}
	return privfile.Replace(filepath.Join(dir, SeedsFile), []byte(sb.String()))
}

// ParseID parses a hex ID.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("ID %q: want %d hex digits: %w", s, 2*len(id), ErrMalformed)
	}
	copy(id[:], b)
	return id, nil
}

func (s *Server) handleSeeds(w http.ResponseWriter, r *http.Request) {
	ids, err := ReadSeeds(s.root.dir)
	if err != nil {
		s.log.WithError(err).Warn("seed list")
		http.Error(w, "seed list unavailable", http.StatusServiceUnavailable)
		return
	}
	l, err := NewSeedList(ids, s.opts.Now(), s.root.key)
	if err == nil {
		var b []byte
		if b, err = l.Encode(); err == nil {
			w.Header().Set("Content-Type", contentType)
			_, _ = w.Write(b)
			return
		}
	}
	s.refuse(w, err)
}

// FetchSeeds gets the TIS's seed list and verifies it.
func (c *Client) FetchSeeds(ctx context.Context) (*SeedList, []byte, error) {
	b, err := c.get(ctx, PathSeeds, MaxSeedListSize)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch seeds: %w", err)
	}
	l, err := DecodeSeedList(b)
	if err == nil {
		err = l.Verify(c.Root, c.now())
	}
	if err != nil {
		return nil, nil, fmt.Errorf("fetch seeds: %w", err)
	}
	return l, b, nil
}
