package discovery

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// FormatVersion is the first byte of every encoded descriptor. A decoder
// refuses any other value with ErrVersion.
const FormatVersion = 1

// Limits of the descriptor encoding. MaxDescriptorSize is checked before
// anything is parsed.
const (
	MaxDescriptorSize = 8 << 10
	maxPeerIDLen      = 128
	maxAddrs          = 16
	maxAddrLen        = 256
	maxPortRanges     = 1024
	maxExtensions     = 64
	maxSigLen         = 1024
	// MaxLifetime bounds Expires-Published, so a stolen identity key
	// cannot mint a descriptor that stays valid for ever.
	MaxLifetime = 24 * time.Hour
	// maxUnix keeps encoded times far inside time.Time's range.
	maxUnix = 1 << 40
)

// sigContext separates descriptor signatures from every other use of a
// relay's identity key.
const sigContext = "pikcio-relay-descriptor-v1\x00"

// Errors of descriptor decoding and verification; each is distinct so a
// caller (and a test) can tell why a descriptor was refused.
var (
	ErrTooLarge        = errors.New("descriptor too large")
	ErrVersion         = errors.New("unsupported descriptor format version")
	ErrMalformed       = errors.New("malformed descriptor")
	ErrSignature       = errors.New("bad descriptor signature")
	ErrNoPublicKey     = errors.New("peer ID does not embed a public key")
	ErrExpired         = errors.New("descriptor expired")
	ErrNotYetValid     = errors.New("descriptor published in the future")
	ErrOnionKeyExpired = errors.New("onion key expired")
	ErrLifetime        = errors.New("descriptor lifetime out of bounds")
	ErrKeyMismatch     = errors.New("descriptor does not belong to its key")
)

// Flags are a relay's role flags. Unknown bits are kept and signed as they
// are, for later versions.
type Flags uint8

// Role flags.
const (
	FlagRelay Flags = 1 << iota // forwards cells: may be a middle hop
	FlagExit                    // opens streams to destinations
	FlagGuard                   // stable enough to be a client's entry guard
)

// Has reports whether all bits of g are set in f.
func (f Flags) Has(g Flags) bool { return f&g == g }

// OnionKey is a relay's public X25519 onion key and the time after which
// clients must no longer use it.
type OnionKey struct {
	Key     [32]byte
	Expires time.Time
}

// PortRange is an inclusive range of destination ports.
type PortRange struct {
	Lo, Hi uint16
}

// Extension is an optional, typed field of a descriptor (the TIS
// certificate and trust data of later versions). Extensions are covered by
// the signature; a decoder keeps the ones it does not know.
type Extension struct {
	Type uint16
	Data []byte
}

// Descriptor is a relay's signed self-description, published in the DHT.
// Times have one-second precision and are in UTC once normalized.
type Descriptor struct {
	// Protocol is the version of the circuit protocol the relay speaks.
	Protocol     uint16
	Flags        Flags
	PeerID       peer.ID
	Published    time.Time
	Expires      time.Time
	OnionKey     OnionKey
	PrevOnionKey *OnionKey // the rotated-out key, during its grace period
	Addrs        []ma.Multiaddr
	// ExitPorts summarizes the exit policy: the destination ports the
	// relay accepts for public addresses, as sorted, disjoint, non-adjacent
	// ranges. Empty for a relay that is not an exit.
	ExitPorts  []PortRange
	Extensions []Extension
	Signature  []byte
}

// IsExit reports whether d is flagged as an exit.
func (d *Descriptor) IsExit() bool { return d.Flags.Has(FlagExit) }

// AcceptsPort reports whether d is an exit whose policy accepts port.
func (d *Descriptor) AcceptsPort(port uint16) bool {
	if !d.IsExit() {
		return false
	}
	_, found := slices.BinarySearchFunc(d.ExitPorts, port, func(r PortRange, p uint16) int {
		switch {
		case r.Hi < p:
			return -1
		case r.Lo > p:
			return 1
		}
		return 0
	})
	return found
}

// AddrInfo returns the relay's peer ID and addresses.
func (d *Descriptor) AddrInfo() peer.AddrInfo {
	return peer.AddrInfo{ID: d.PeerID, Addrs: slices.Clone(d.Addrs)}
}

// Extension returns the data of the extension of type typ.
func (d *Descriptor) Extension(typ uint16) ([]byte, bool) {
	for _, e := range d.Extensions {
		if e.Type == typ {
			return e.Data, true
		}
	}
	return nil, false
}

// PortSummary turns a port predicate (an exit policy's AcceptsPort) into the
// compact range list carried in descriptors. It asks about every port, so a
// relay computes it once per policy, not at every publication.
func PortSummary(accepts func(port uint16) bool) []PortRange {
	var out []PortRange
	for p := 1; p <= 65535; p++ {
		if !accepts(uint16(p)) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Hi == uint16(p-1) {
			out[n-1].Hi = uint16(p)
			continue
		}
		out = append(out, PortRange{Lo: uint16(p), Hi: uint16(p)})
	}
	return out
}

// NormalizePorts returns rs sorted and merged into the canonical form
// descriptors carry. Ranges with Lo > Hi are dropped.
func NormalizePorts(rs []PortRange) []PortRange {
	in := make([]PortRange, 0, len(rs))
	for _, r := range rs {
		if r.Lo <= r.Hi {
			in = append(in, r)
		}
	}
	slices.SortFunc(in, func(a, b PortRange) int { return cmp.Compare(a.Lo, b.Lo) })
	var out []PortRange
	for _, r := range in {
		if n := len(out); n > 0 && uint32(r.Lo) <= uint32(out[n-1].Hi)+1 {
			out[n-1].Hi = max(out[n-1].Hi, r.Hi)
			continue
		}
		out = append(out, r)
	}
	return out
}

func unixTime(t time.Time) time.Time { return time.Unix(t.Unix(), 0).UTC() }

// normalize puts d into the canonical form that Encode accepts.
func (d *Descriptor) normalize() error {
	d.Published = unixTime(d.Published)
	d.Expires = unixTime(d.Expires)
	d.OnionKey.Expires = unixTime(d.OnionKey.Expires)
	if d.PrevOnionKey != nil {
		k := *d.PrevOnionKey
		k.Expires = unixTime(k.Expires)
		d.PrevOnionKey = &k
	}
	d.ExitPorts = NormalizePorts(d.ExitPorts)
	exts := slices.Clone(d.Extensions)
	for i := range exts {
		if len(exts[i].Data) == 0 {
			exts[i].Data = nil
		}
	}
	slices.SortStableFunc(exts, func(a, b Extension) int { return cmp.Compare(a.Type, b.Type) })
	for i := 1; i < len(exts); i++ {
		if exts[i].Type == exts[i-1].Type {
			return fmt.Errorf("extension %d twice: %w", exts[i].Type, ErrMalformed)
		}
	}
	if len(exts) == 0 {
		exts = nil
	}
	d.Extensions = exts
	if len(d.Addrs) == 0 {
		d.Addrs = nil
	}
	return nil
}

// Sign normalizes d, sets its peer ID from priv (or checks it) and signs
// it. It returns the encoded descriptor.
func (d *Descriptor) Sign(priv crypto.PrivKey) ([]byte, error) {
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("peer ID of signing key: %w", err)
	}
	if d.PeerID == "" {
		d.PeerID = id
	} else if d.PeerID != id {
		return nil, fmt.Errorf("sign descriptor of %s with key of %s: %w", d.PeerID, id, ErrKeyMismatch)
	}
	if err := d.normalize(); err != nil {
		return nil, err
	}
	return d.signWith(priv)
}

// signWith signs the body of d with priv, without any check.
func (d *Descriptor) signWith(priv crypto.PrivKey) ([]byte, error) {
	body, err := d.appendBody(nil)
	if err != nil {
		return nil, err
	}
	sig, err := priv.Sign(append([]byte(sigContext), body...))
	if err != nil {
		return nil, fmt.Errorf("sign descriptor: %w", err)
	}
	d.Signature = sig
	return d.Encode()
}

// Encode returns the canonical encoding of d. It fails on a descriptor that
// is not in canonical form (see Sign), so that decoding gives d back.
func (d *Descriptor) Encode() ([]byte, error) {
	b, err := d.appendBody(make([]byte, 0, 512))
	if err != nil {
		return nil, err
	}
	if len(d.Signature) > maxSigLen {
		return nil, fmt.Errorf("signature of %d bytes: %w", len(d.Signature), ErrMalformed)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.Signature)))
	b = append(b, d.Signature...)
	if len(b) > MaxDescriptorSize {
		return nil, fmt.Errorf("%d bytes: %w", len(b), ErrTooLarge)
	}
	return b, nil
}

func appendTime(b []byte, t time.Time) ([]byte, error) {
	s := t.Unix()
	if s <= 0 || s >= maxUnix || t.Nanosecond() != 0 {
		return nil, fmt.Errorf("time %v: %w", t, ErrMalformed)
	}
	return binary.BigEndian.AppendUint64(b, uint64(s)), nil
}

// appendBody appends the signed part of the encoding:
//
//	u8 format version, u16 protocol, u8 flags,
//	u16 len + peer ID,
//	u64 published, u64 expires (Unix seconds),
//	[32] onion key, u64 its expiry,
//	u8 0|1 previous key present [, [32] key, u64 expiry],
//	u8 count, then per address u16 len + multiaddr bytes,
//	u16 count, then per exit port range u16 lo, u16 hi,
//	u16 count, then per extension u16 type, u16 len, data.
//
// All integers are big-endian. Port ranges are sorted, disjoint and
// non-adjacent, extension types strictly increasing: each descriptor has
// exactly one encoding.
func (d *Descriptor) appendBody(b []byte) ([]byte, error) {
	var err error
	b = append(b, FormatVersion)
	b = binary.BigEndian.AppendUint16(b, d.Protocol)
	b = append(b, byte(d.Flags))
	if len(d.PeerID) == 0 || len(d.PeerID) > maxPeerIDLen {
		return nil, fmt.Errorf("peer ID of %d bytes: %w", len(d.PeerID), ErrMalformed)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.PeerID)))
	b = append(b, d.PeerID...)
	for _, t := range []time.Time{d.Published, d.Expires} {
		if b, err = appendTime(b, t); err != nil {
			return nil, err
		}
	}
	b = append(b, d.OnionKey.Key[:]...)
	if b, err = appendTime(b, d.OnionKey.Expires); err != nil {
		return nil, err
	}
	if d.PrevOnionKey == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = append(b, d.PrevOnionKey.Key[:]...)
		if b, err = appendTime(b, d.PrevOnionKey.Expires); err != nil {
			return nil, err
		}
	}
	if len(d.Addrs) > maxAddrs {
		return nil, fmt.Errorf("%d addresses: %w", len(d.Addrs), ErrMalformed)
	}
	b = append(b, byte(len(d.Addrs)))
	for _, a := range d.Addrs {
		ab := a.Bytes()
		if len(ab) == 0 || len(ab) > maxAddrLen {
			return nil, fmt.Errorf("address of %d bytes: %w", len(ab), ErrMalformed)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(ab)))
		b = append(b, ab...)
	}
	if len(d.ExitPorts) > maxPortRanges {
		return nil, fmt.Errorf("%d port ranges: %w", len(d.ExitPorts), ErrMalformed)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.ExitPorts)))
	for i, r := range d.ExitPorts {
		if r.Lo > r.Hi || (i > 0 && uint32(r.Lo) <= uint32(d.ExitPorts[i-1].Hi)+1) {
			return nil, fmt.Errorf("port ranges not canonical: %w", ErrMalformed)
		}
		b = binary.BigEndian.AppendUint16(b, r.Lo)
		b = binary.BigEndian.AppendUint16(b, r.Hi)
	}
	if len(d.Extensions) > maxExtensions {
		return nil, fmt.Errorf("%d extensions: %w", len(d.Extensions), ErrMalformed)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(d.Extensions)))
	for i, e := range d.Extensions {
		if i > 0 && e.Type <= d.Extensions[i-1].Type {
			return nil, fmt.Errorf("extensions not sorted: %w", ErrMalformed)
		}
		if len(e.Data) > MaxDescriptorSize {
			return nil, fmt.Errorf("extension %d of %d bytes: %w", e.Type, len(e.Data), ErrTooLarge)
		}
		b = binary.BigEndian.AppendUint16(b, e.Type)
		b = binary.BigEndian.AppendUint16(b, uint16(len(e.Data)))
		b = append(b, e.Data...)
	}
	if len(b) > MaxDescriptorSize {
		return nil, fmt.Errorf("%d bytes: %w", len(b), ErrTooLarge)
	}
	return b, nil
}

// reader reads the encoding; the first short read sets err and every later
// read returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = fmt.Errorf("truncated: %w", ErrMalformed)
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() uint8 {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *reader) time() time.Time {
	v := r.take(8)
	if v == nil {
		return time.Time{}
	}
	s := binary.BigEndian.Uint64(v)
	if s == 0 || s >= maxUnix {
		r.fail("time out of range")
		return time.Time{}
	}
	return time.Unix(int64(s), 0).UTC()
}

func (r *reader) key() (k [32]byte) {
	copy(k[:], r.take(32))
	return k
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %w", what, ErrMalformed)
	}
}

// DecodeDescriptor parses an encoded descriptor. It checks the structure
// only, not the signature or the times: see Verify and VerifyDescriptor.
func DecodeDescriptor(b []byte) (*Descriptor, error) {
	if len(b) > MaxDescriptorSize {
		return nil, fmt.Errorf("%d bytes: %w", len(b), ErrTooLarge)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("empty: %w", ErrMalformed)
	}
	if b[0] != FormatVersion {
		return nil, fmt.Errorf("version %d: %w", b[0], ErrVersion)
	}
	r := &reader{b: b[1:]}
	d := &Descriptor{}
	d.Protocol = r.u16()
	d.Flags = Flags(r.u8())
	idLen := int(r.u16())
	if idLen == 0 || idLen > maxPeerIDLen {
		r.fail("peer ID length")
	}
	if idb := r.take(idLen); r.err == nil {
		id, err := peer.IDFromBytes(idb)
		if err != nil {
			r.fail("peer ID")
		}
		d.PeerID = id
	}
	d.Published = r.time()
	d.Expires = r.time()
	d.OnionKey.Key = r.key()
	d.OnionKey.Expires = r.time()
	switch r.u8() {
	case 0:
	case 1:
		k := OnionKey{Key: r.key(), Expires: r.time()}
		d.PrevOnionKey = &k
	default:
		r.fail("previous key marker")
	}
	n := int(r.u8())
	if n > maxAddrs {
		r.fail("address count")
	}
	for i := 0; i < n && r.err == nil; i++ {
		l := int(r.u16())
		if l == 0 || l > maxAddrLen {
			r.fail("address length")
		}
		ab := r.take(l)
		if r.err != nil {
			break
		}
		a, err := ma.NewMultiaddrBytes(ab)
		if err != nil || len(a) == 0 || !bytes.Equal(a.Bytes(), ab) {
			r.fail("address")
			break
		}
		d.Addrs = append(d.Addrs, a)
	}
	n = int(r.u16())
	if n > maxPortRanges {
		r.fail("port range count")
	}
	for i := 0; i < n && r.err == nil; i++ {
		pr := PortRange{Lo: r.u16(), Hi: r.u16()}
		if pr.Lo > pr.Hi || (i > 0 && uint32(pr.Lo) <= uint32(d.ExitPorts[i-1].Hi)+1) {
			r.fail("port ranges not canonical")
		}
		d.ExitPorts = append(d.ExitPorts, pr)
	}
	n = int(r.u16())
	if n > maxExtensions {
		r.fail("extension count")
	}
	for i := 0; i < n && r.err == nil; i++ {
		e := Extension{Type: r.u16()}
		if data := r.take(int(r.u16())); len(data) > 0 {
			e.Data = bytes.Clone(data)
		}
		if i > 0 && e.Type <= d.Extensions[i-1].Type {
			r.fail("extensions not sorted")
		}
		d.Extensions = append(d.Extensions, e)
	}
	sl := int(r.u16())
	if sl == 0 || sl > maxSigLen {
		r.fail("signature length")
	}
	d.Signature = bytes.Clone(r.take(sl))
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return d, nil
}

// VerifyOptions are the tolerances of Verify.
type VerifyOptions struct {
	// Now is the time to check against.
	Now time.Time
	// MaxSkew is how far in the future Published may be.
	MaxSkew time.Duration
}

// Verify checks d's signature with the public key embedded in its peer ID,
// then its times: not expired, not published in the future beyond the
// skew, a lifetime within MaxLifetime, and an onion key still valid.
func (d *Descriptor) Verify(o VerifyOptions) error {
	pub, err := d.PeerID.ExtractPublicKey()
	if err != nil || pub == nil {
		return fmt.Errorf("descriptor of %s: %w", d.PeerID, ErrNoPublicKey)
	}
	body, err := d.appendBody(nil)
	if err != nil {
		return err
	}
	ok, err := pub.Verify(append([]byte(sigContext), body...), d.Signature)
	if err != nil || !ok {
		return fmt.Errorf("descriptor of %s: %w", d.PeerID, ErrSignature)
	}
	switch {
	case !d.Expires.After(d.Published) || d.Expires.Sub(d.Published) > MaxLifetime:
		return fmt.Errorf("descriptor of %s valid %v: %w", d.PeerID, d.Expires.Sub(d.Published), ErrLifetime)
	case d.Published.After(o.Now.Add(o.MaxSkew)):
		return fmt.Errorf("descriptor of %s published %v: %w", d.PeerID, d.Published, ErrNotYetValid)
	case !o.Now.Before(d.Expires):
		return fmt.Errorf("descriptor of %s expired %v: %w", d.PeerID, d.Expires, ErrExpired)
	case !o.Now.Before(d.OnionKey.Expires):
		return fmt.Errorf("descriptor of %s key expired %v: %w", d.PeerID, d.OnionKey.Expires, ErrOnionKeyExpired)
	}
	return nil
}

// VerifyDescriptor decodes b and verifies the result.
func VerifyDescriptor(b []byte, o VerifyOptions) (*Descriptor, error) {
	d, err := DecodeDescriptor(b)
	if err != nil {
		return nil, err
	}
	if err := d.Verify(o); err != nil {
		return nil, err
	}
	return d, nil
}

// newer reports whether a should replace b: a later publication, then a
// later expiry, then the smaller signature so the choice is stable.
func newer(a, b *Descriptor) bool {
	if c := a.Published.Compare(b.Published); c != 0 {
		return c > 0
	}
	if c := a.Expires.Compare(b.Expires); c != 0 {
		return c > 0
	}
	return bytes.Compare(a.Signature, b.Signature) < 0
}
