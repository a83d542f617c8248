package service

import (
	"crypto/ed25519"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"filippo.io/edwards25519"
)

// Key blinding follows rend-spec-v3 appendix A.2: for a time period N the
// blinded public key is A' = h·A with
//
//	h = clamp(SHA3-256(BLIND_STRING | A | B | N))
//	BLIND_STRING = "Derive temporary signing key" | 0x00
//	B = the Ed25519 base point, as Tor writes it
//	N = "key-blind" | u64 period number | u64 period length (minutes)
//
// and the blinded private key a' = h·a mod ℓ, with nonce prefix
// SHA3-256("Derive temporary signing key hash input" | prefix | h). (Tor
// leaves h out; with it the signing nonces of two periods are independent
// even for one message, so two signatures can never combine to give a
// away.) Anyone
// with the address computes A'; only the service can sign under it; and
// without the address A' for one period cannot be linked to A or to A'
// of another period.
const (
	blindString  = "Derive temporary signing key\x00"
	blindPrefix  = "Derive temporary signing key hash input"
	basePointStr = "(15112221349535400772501151409588531511454012693041857206046113283949847762202, 46316835694926478169428394003475163141307993866256225615783033603165251855960)"
)

// Period is one time period of key blinding: descriptors are published
// and fetched under the blinded key of the current period.
type Period struct {
	// Number counts periods since the Unix epoch, shifted by half a
	// period as Tor does, so that periods turn over at 12:00 UTC.
	Number uint64
	// Length is the period's length, a whole number of minutes.
	Length time.Duration
}

// PeriodAt returns the period of length that holds t (length <= 0:
// DefaultPeriodLength).
func PeriodAt(t time.Time, length time.Duration) Period {
	if length <= 0 {
		length = DefaultPeriodLength
	}
	mins := uint64(length / time.Minute)
	if mins == 0 {
		mins = 1
	}
	since := t.Unix()/60 - int64(mins/2)
	if since < 0 {
		since = 0
	}
	return Period{Number: uint64(since) / mins, Length: time.Duration(mins) * time.Minute}
}

func (p Period) minutes() uint64 { return uint64(p.Length / time.Minute) }

// Start is when p begins.
func (p Period) Start() time.Time {
	m := p.minutes()
	return time.Unix(int64(p.Number*m+m/2)*60, 0).UTC()
}

// Next is the period after p.
func (p Period) Next() Period { return Period{Number: p.Number + 1, Length: p.Length} }

func (p Period) String() string { return fmt.Sprintf("period %d of %s", p.Number, p.Length) }

func (p Period) nonce() []byte {
	n := make([]byte, 0, 9+16)
	n = append(n, "key-blind"...)
	n = binary.BigEndian.AppendUint64(n, p.Number)
	return binary.BigEndian.AppendUint64(n, p.minutes())
}

func blindFactor(pub []byte, p Period) *edwards25519.Scalar {
	h := sha3.New256()
	h.Write([]byte(blindString))
	h.Write(pub)
	h.Write([]byte(basePointStr))
	h.Write(p.nonce())
	s, err := new(edwards25519.Scalar).SetBytesWithClamping(h.Sum(nil))
	if err != nil {
		panic("service: clamping a 32-byte hash failed: " + err.Error())
	}
	return s
}

// BlindedKey is a blinded public key: what the DHT and the introduction
// points see of a service in one period.
type BlindedKey [32]byte

// Blind returns the service's blinded public key for period p; clients
// derive it from the address alone. An Address that did not come from
// ParseAddress or AddressOf and is not a usable key blinds to the zero
// key, which nothing verifies under.
func (a Address) Blind(p Period) BlindedKey {
	var b BlindedKey
	pt, err := a.point()
	if err != nil {
		return b
	}
	copy(b[:], new(edwards25519.Point).ScalarMult(blindFactor(a[:], p), pt).Bytes())
	return b
}

// usable reports whether b is a point of large order: a small-order key
// would let anyone forge signatures under it.
func (b BlindedKey) usable() bool {
	_, err := Address(b).point()
	return err == nil
}

// Verify reports whether sig is b's signature of msg (plain Ed25519). It
// refuses every signature under a key that is not usable.
func (b BlindedKey) Verify(msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && b.usable() && ed25519.Verify(b[:], msg, sig)
}

// Identity is a service's long-term key. Its public half is the address.
type Identity struct {
	priv ed25519.PrivateKey
	addr Address
}

// NewIdentity makes a fresh service key from rand.
func NewIdentity(rand io.Reader) (*Identity, error) {
	_, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("service key: %w", err)
	}
	return IdentityFromKey(priv)
}

// IdentityFromKey wraps an existing Ed25519 private key.
func IdentityFromKey(priv ed25519.PrivateKey) (*Identity, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("service key of %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	a, err := AddressOf(priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	return &Identity{priv: priv, addr: a}, nil
}

// IdentityFromSeed is the identity of a 32-byte Ed25519 seed (Seed).
func IdentityFromSeed(seed []byte) (*Identity, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("service key seed of %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return IdentityFromKey(ed25519.NewKeyFromSeed(seed))
}

// Seed returns the 32 bytes to store the identity by (IdentityFromSeed).
// They are the service: whoever holds them can publish as it.
func (id *Identity) Seed() []byte { return id.priv.Seed() }

// Address is the service's address.
func (id *Identity) Address() Address { return id.addr }

// blindedSigner signs under a blinded key.
type blindedSigner struct {
	pub    BlindedKey
	s      *edwards25519.Scalar
	prefix [32]byte
}

// blind returns the signer of the service's blinded key for p.
func (id *Identity) blind(p Period) *blindedSigner {
	h := sha512.Sum512(id.priv.Seed())
	a, err := new(edwards25519.Scalar).SetBytesWithClamping(h[:32])
	if err != nil {
		panic("service: clamping failed: " + err.Error())
	}
	f := blindFactor(id.addr[:], p)
	bs := &blindedSigner{s: new(edwards25519.Scalar).Multiply(f, a)}
	copy(bs.pub[:], new(edwards25519.Point).ScalarBaseMult(bs.s).Bytes())
	ph := sha3.New256()
	ph.Write([]byte(blindPrefix))
	ph.Write(h[32:])
	ph.Write(f.Bytes())
	copy(bs.prefix[:], ph.Sum(nil))
	clear(h[:])
	return bs
}

// sign makes an Ed25519 signature (RFC 8032 5.1.6) with the expanded
// blinded key; ed25519.Verify checks it against the blinded public key.
func (bs *blindedSigner) sign(msg []byte) []byte {
	rh := sha512.New()
	rh.Write(bs.prefix[:])
	rh.Write(msg)
	r, err := new(edwards25519.Scalar).SetUniformBytes(rh.Sum(nil))
	if err != nil {
		panic("service: nonce reduction failed: " + err.Error())
	}
	R := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
	kh := sha512.New()
	kh.Write(R)
	kh.Write(bs.pub[:])
	kh.Write(msg)
	k, err := new(edwards25519.Scalar).SetUniformBytes(kh.Sum(nil))
	if err != nil {
		panic("service: challenge reduction failed: " + err.Error())
	}
	S := new(edwards25519.Scalar).MultiplyAdd(k, bs.s, r)
	return append(R, S.Bytes()...)
}

// Revision returns the revision for a descriptor of period p published at
// now: seconds since the start of the period before p (so that a
// descriptor published ahead for the next period has one too), plus an
// offset derived from the blinded private key of p. Within a period it
// grows with time, so the newest descriptor wins; between periods the
// unknown offsets keep a DHT server from matching a service's records by
// their revisions (the role of Tor's order-preserving encryption of its
// revision counter).
func (id *Identity) Revision(p Period, now time.Time) uint64 {
	bs := id.blind(p)
	h := sha3.New256()
	h.Write([]byte("pikcio-svc revision offset"))
	h.Write(bs.s.Bytes())
	off := binary.BigEndian.Uint64(h.Sum(nil)) % (1 << 24)
	since := now.Unix() - (p.Start().Unix() - int64(p.Length/time.Second))
	if since < 0 {
		since = 0
	}
	return uint64(since) + off
}
