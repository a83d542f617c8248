package trust

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/pikcio/pikcio/internal/wire"

	"github.com/pikcio/pikcio/tis"
)

// Limits and defaults of the records, in one place.
const (
	// MinWeight and MaxWeight bound a vouch's weight.
	MinWeight = 1
	MaxWeight = 100
	// MaxKindLen caps an attestation kind, in bytes.
	MaxKindLen = 64
	// MaxRelayScoreLifetime caps the validity of a relay score statement:
	// statements are short-lived so that a relay's standing follows its
	// owner's current score.
	MaxRelayScoreLifetime = 24 * time.Hour
	// MaxClockSkew is how far in the future a record's issue time may be.
	MaxClockSkew = tis.DefaultMaxClockSkew
	// BandWidth is the width of a relay score band: band b covers scores
	// [b*BandWidth, (b+1)*BandWidth), the last band includes 100.
	BandWidth = 20
	// MaxBand is the highest band.
	MaxBand = 100/BandWidth - 1

	// Encoded sizes (fixed apart from the attestation kind).
	VouchSize             = 2 + 32 + 32 + 1 + 8 + 8 + 2 + ed25519.SignatureSize
	WithdrawalSize        = 2 + 32 + 32 + 8 + 2 + ed25519.SignatureSize
	MaxAttestationSize    = 2 + 8 + 32 + 2 + MaxKindLen + 8 + 8 + 2 + ed25519.SignatureSize
	RelayScoreSize        = 2 + 8 + 32 + 1 + 8 + 8 + 2 + ed25519.SignatureSize
	relaySignatureContext = "pikcio-trust-relay-score-v1\x00"
)

// Domain separation of the signatures.
var (
	vouchContext       = []byte("pikcio-trust-vouch-v1\x00")
	withdrawalContext  = []byte("pikcio-trust-withdrawal-v1\x00")
	attestationContext = []byte("pikcio-trust-attestation-v1\x00")
	relayScoreContext  = []byte(relaySignatureContext)
)

func checkSig(what string, key ed25519.PublicKey, ctx, body, sig []byte) error {
	if !wire.Verify(key, ctx, body, sig) {
		return fmt.Errorf("%s: %w", what, ErrSignature)
	}
	return nil
}

func checkWindow(what string, issued, expires, now time.Time) error {
	if now.Add(MaxClockSkew).Before(issued) {
		return fmt.Errorf("%s issued at %s: %w", what, issued, ErrNotYetValid)
	}
	if !expires.IsZero() && !now.Before(expires) {
		return fmt.Errorf("%s expired at %s: %w", what, expires, ErrExpired)
	}
	return nil
}

// matryoshkaKey checks that cert is a valid Matryoshka certificate for id
// and returns its key.
func matryoshkaKey(what string, id tis.ID, cert *tis.Certificate, root ed25519.PublicKey, now time.Time, revocations *tis.RevocationList) (ed25519.PublicKey, error) {
	if cert == nil {
		return nil, fmt.Errorf("%s: no certificate: %w", what, ErrWrongIdentity)
	}
	if cert.ID != id {
		return nil, fmt.Errorf("%s by %s checked with the certificate of %s: %w", what, id, cert.ID, ErrWrongIdentity)
	}
	if err := tis.VerifyMatryoshkaCert(cert, root, cert.SubjectKey, now, revocations); err != nil {
		return nil, fmt.Errorf("%s: voucher certificate: %w", what, err)
	}
	return cert.SubjectKey, nil
}

// Vouch is a statement by the voucher that the vouchee is who they claim,
// with a weight, signed by the voucher's Matryoshka key.
type Vouch struct {
	Voucher   tis.ID
	Vouchee   tis.ID
	Weight    uint8     // MinWeight..MaxWeight
	IssuedAt  time.Time // whole seconds
	Expires   time.Time // whole seconds, after IssuedAt
	Signature []byte
}

func (v *Vouch) body() ([]byte, error) {
	if v.Voucher == v.Vouchee {
		return nil, fmt.Errorf("vouch for oneself: %w", ErrMalformed)
	}
	if v.Weight < MinWeight || v.Weight > MaxWeight {
		return nil, fmt.Errorf("vouch weight %d: %w", v.Weight, ErrMalformed)
	}
	if !validTime(v.IssuedAt) || !validTime(v.Expires) || !v.Expires.After(v.IssuedAt) {
		return nil, fmt.Errorf("vouch times: %w", ErrMalformed)
	}
	b := make([]byte, 0, VouchSize)
	b = append(b, recordVersion, kindVouch)
	b = append(b, v.Voucher[:]...)
	b = append(b, v.Vouchee[:]...)
	b = append(b, v.Weight)
	b = appendTime(b, v.IssuedAt)
	return appendTime(b, v.Expires), nil
}

// Sign sets the signature with the voucher's Matryoshka private key.
func (v *Vouch) Sign(key ed25519.PrivateKey) error {
	b, err := v.body()
	if err != nil {
		return err
	}
	v.Signature = wire.Sign(key, vouchContext, b)
	return nil
}

// Encode returns the canonical encoding of a signed vouch.
func (v *Vouch) Encode() ([]byte, error) {
	b, err := v.body()
	if err != nil {
		return nil, err
	}
	return wire.AppendSignature(b, v.Signature, "vouch", ErrMalformed)
}

// DecodeVouch parses a canonical vouch. It checks the form only; call
// Verify to trust it.
func DecodeVouch(b []byte) (*Vouch, error) {
	if len(b) != VouchSize {
		return nil, fmt.Errorf("vouch of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	readHeader(r, kindVouch, "vouch")
	v := &Vouch{}
	copy(v.Voucher[:], r.Take(32, "voucher"))
	copy(v.Vouchee[:], r.Take(32, "vouchee"))
	v.Weight = r.U8("weight")
	v.IssuedAt = r.Time("issue time")
	v.Expires = r.Time("expiry")
	v.Signature = r.Bytes16("signature", ed25519.SignatureSize)
	r.End("vouch")
	if r.Err() != nil {
		return nil, r.Err()
	}
	if _, err := v.Encode(); err != nil {
		return nil, err
	}
	return v, nil
}

// Verify checks v at now against the voucher's Matryoshka certificate,
// which must be for v.Voucher, signed by root, valid and not revoked
// (revocations may be nil).
func (v *Vouch) Verify(cert *tis.Certificate, root ed25519.PublicKey, now time.Time, revocations *tis.RevocationList) error {
	b, err := v.body()
	if err != nil {
		return err
	}
	key, err := matryoshkaKey("vouch", v.Voucher, cert, root, now, revocations)
	if err != nil {
		return err
	}
	if err := checkSig("vouch", key, vouchContext, b, v.Signature); err != nil {
		return err
	}
	return checkWindow("vouch", v.IssuedAt, v.Expires, now)
}

// Withdrawal withdraws the voucher's vouches for the vouchee issued before
// it (a vouch issued later counts again). Signed by the voucher's
// Matryoshka key; it has no expiry.
type Withdrawal struct {
	Voucher   tis.ID
	Vouchee   tis.ID
	IssuedAt  time.Time // whole seconds
	Signature []byte
}

func (w *Withdrawal) body() ([]byte, error) {
	if w.Voucher == w.Vouchee {
		return nil, fmt.Errorf("withdrawal for oneself: %w", ErrMalformed)
	}
	if !validTime(w.IssuedAt) {
		return nil, fmt.Errorf("withdrawal time: %w", ErrMalformed)
	}
	b := make([]byte, 0, WithdrawalSize)
	b = append(b, recordVersion, kindWithdrawal)
	b = append(b, w.Voucher[:]...)
	b = append(b, w.Vouchee[:]...)
	return appendTime(b, w.IssuedAt), nil
}

// Sign sets the signature with the voucher's Matryoshka private key.
func (w *Withdrawal) Sign(key ed25519.PrivateKey) error {
	b, err := w.body()
	if err != nil {
		return err
	}
	w.Signature = wire.Sign(key, withdrawalContext, b)
	return nil
}

// Encode returns the canonical encoding of a signed withdrawal.
func (w *Withdrawal) Encode() ([]byte, error) {
	b, err := w.body()
	if err != nil {
		return nil, err
	}
	return wire.AppendSignature(b, w.Signature, "withdrawal", ErrMalformed)
}

// DecodeWithdrawal parses a canonical withdrawal (form only).
func DecodeWithdrawal(b []byte) (*Withdrawal, error) {
	if len(b) != WithdrawalSize {
		return nil, fmt.Errorf("withdrawal of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	readHeader(r, kindWithdrawal, "withdrawal")
	w := &Withdrawal{}
	copy(w.Voucher[:], r.Take(32, "voucher"))
	copy(w.Vouchee[:], r.Take(32, "vouchee"))
	w.IssuedAt = r.Time("issue time")
	w.Signature = r.Bytes16("signature", ed25519.SignatureSize)
	r.End("withdrawal")
	if r.Err() != nil {
		return nil, r.Err()
	}
	if _, err := w.Encode(); err != nil {
		return nil, err
	}
	return w, nil
}

// Verify checks w at now against the voucher's Matryoshka certificate, as
// Vouch.Verify does.
func (w *Withdrawal) Verify(cert *tis.Certificate, root ed25519.PublicKey, now time.Time, revocations *tis.RevocationList) error {
	b, err := w.body()
	if err != nil {
		return err
	}
	key, err := matryoshkaKey("withdrawal", w.Voucher, cert, root, now, revocations)
	if err != nil {
		return err
	}
	if err := checkSig("withdrawal", key, withdrawalContext, b, w.Signature); err != nil {
		return err
	}
	return checkWindow("withdrawal", w.IssuedAt, time.Time{}, now)
}

// Attestation is a statement by the TIS, or by an attester key named in
// the configuration, that the subject passed a check of some kind, such as
// "email-verified" or "account-linked:<service>".
type Attestation struct {
	Issuer    tis.KeyID // tis.RootKeyID of the signing key
	Subject   tis.ID
	Kind      string // 1..MaxKindLen bytes of [a-z0-9.:_-]
	IssuedAt  time.Time
	Expires   time.Time
	Signature []byte
}

func validKind(k string) bool {
	if len(k) == 0 || len(k) > MaxKindLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == ':' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (a *Attestation) body() ([]byte, error) {
	if !validKind(a.Kind) {
		return nil, fmt.Errorf("attestation kind %q: %w", a.Kind, ErrMalformed)
	}
	if !validTime(a.IssuedAt) || !validTime(a.Expires) || !a.Expires.After(a.IssuedAt) {
		return nil, fmt.Errorf("attestation times: %w", ErrMalformed)
	}
	b := make([]byte, 0, MaxAttestationSize)
	b = append(b, recordVersion, kindAttestation)
	b = append(b, a.Issuer[:]...)
	b = append(b, a.Subject[:]...)
	b = wire.AppendBytes16(b, []byte(a.Kind))
	b = appendTime(b, a.IssuedAt)
	return appendTime(b, a.Expires), nil
}

// Sign sets Issuer and Signature with an attester (or TIS root) key.
func (a *Attestation) Sign(key ed25519.PrivateKey) error {
	a.Issuer = tis.RootKeyID(key.Public().(ed25519.PublicKey))
	b, err := a.body()
	if err != nil {
		return err
	}
	a.Signature = wire.Sign(key, attestationContext, b)
	return nil
}

// Encode returns the canonical encoding of a signed attestation.
func (a *Attestation) Encode() ([]byte, error) {
	b, err := a.body()
	if err != nil {
		return nil, err
	}
	return wire.AppendSignature(b, a.Signature, "attestation", ErrMalformed)
}

// DecodeAttestation parses a canonical attestation (form only).
func DecodeAttestation(b []byte) (*Attestation, error) {
	if len(b) > MaxAttestationSize {
		return nil, fmt.Errorf("attestation of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	readHeader(r, kindAttestation, "attestation")
	a := &Attestation{}
	copy(a.Issuer[:], r.Take(8, "issuer"))
	copy(a.Subject[:], r.Take(32, "subject"))
	a.Kind = string(r.Bytes16("kind", MaxKindLen))
	a.IssuedAt = r.Time("issue time")
	a.Expires = r.Time("expiry")
	a.Signature = r.Bytes16("signature", ed25519.SignatureSize)
	r.End("attestation")
	if r.Err() != nil {
		return nil, r.Err()
	}
	if _, err := a.Encode(); err != nil {
		return nil, err
	}
	return a, nil
}

// findKey returns the key of keys whose key ID is id.
func findKey(id tis.KeyID, keys []ed25519.PublicKey) ed25519.PublicKey {
	for _, k := range keys {
		if len(k) == ed25519.PublicKeySize && tis.RootKeyID(k) == id {
			return k
		}
	}
	return nil
}

// Verify checks a at now: it must be signed by one of attesters (the TIS
// root key and the attester keys named in the configuration).
func (a *Attestation) Verify(attesters []ed25519.PublicKey, now time.Time) error {
	b, err := a.body()
	if err != nil {
		return err
	}
	key := findKey(a.Issuer, attesters)
	if key == nil {
		return fmt.Errorf("attestation by %s: %w", a.Issuer, ErrUnknownAttester)
	}
	if err := checkSig("attestation", key, attestationContext, b, a.Signature); err != nil {
		return err
	}
	return checkWindow("attestation", a.IssuedAt, a.Expires, now)
}

// RelayScore is the TIS's short-lived statement of a relay's trust band,
// keyed by the relay's node ID.
//
// Trade-off: the TCI is computed over Matryoshka IDs, but relays are known
// by node IDs, and only the TIS can link the two. Publishing the link would
// let anyone tie a relay's IP address to a person's social graph, so the
// TIS states the band of the relay owner's score under the node ID alone.
// Clients must therefore trust the TIS for relay scores (it could lie,
// and it learns nothing new: it already knows the link). A band (20 points
// wide) rather than the exact score, and a short expiry, limit what an
// observer learns by matching statements against published TCI values:
// many identities share a band, and old statements do not linger.
type RelayScore struct {
	Issuer    tis.KeyID
	Node      tis.ID
	Band      uint8 // 0..MaxBand
	IssuedAt  time.Time
	Expires   time.Time // at most MaxRelayScoreLifetime after IssuedAt
	Signature []byte
}

// BandOf returns the band of a score 0..100.
func BandOf(score int) uint8 {
	switch {
	case score <= 0:
		return 0
	case score >= 100:
		return MaxBand
	}
	return uint8(min(score/BandWidth, MaxBand))
}

// BandRange returns the lowest and highest score of band b.
func BandRange(b uint8) (lo, hi int) {
	lo = int(b) * BandWidth
	hi = lo + BandWidth - 1
	if b >= MaxBand {
		hi = 100
	}
	return lo, hi
}

func (s *RelayScore) body() ([]byte, error) {
	if s.Band > MaxBand {
		return nil, fmt.Errorf("relay score band %d: %w", s.Band, ErrMalformed)
	}
	if !validTime(s.IssuedAt) || !validTime(s.Expires) || !s.Expires.After(s.IssuedAt) {
		return nil, fmt.Errorf("relay score times: %w", ErrMalformed)
	}
	b := make([]byte, 0, RelayScoreSize)
	b = append(b, recordVersion, kindRelayScore)
	b = append(b, s.Issuer[:]...)
	b = append(b, s.Node[:]...)
	b = append(b, s.Band)
	b = appendTime(b, s.IssuedAt)
	return appendTime(b, s.Expires), nil
}

// Sign sets Issuer and Signature with the TIS root key.
func (s *RelayScore) Sign(root ed25519.PrivateKey) error {
	s.Issuer = tis.RootKeyID(root.Public().(ed25519.PublicKey))
	b, err := s.body()
	if err != nil {
		return err
	}
	s.Signature = wire.Sign(root, relayScoreContext, b)
	return nil
}

// Encode returns the canonical encoding of a signed relay score.
func (s *RelayScore) Encode() ([]byte, error) {
	b, err := s.body()
	if err != nil {
		return nil, err
	}
	return wire.AppendSignature(b, s.Signature, "relay score", ErrMalformed)
}

// DecodeRelayScore parses a canonical relay score statement (form only).
func DecodeRelayScore(b []byte) (*RelayScore, error) {
	if len(b) != RelayScoreSize {
		return nil, fmt.Errorf("relay score of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	readHeader(r, kindRelayScore, "relay score")
	s := &RelayScore{}
	copy(s.Issuer[:], r.Take(8, "issuer"))
	copy(s.Node[:], r.Take(32, "node"))
	s.Band = r.U8("band")
	s.IssuedAt = r.Time("issue time")
	s.Expires = r.Time("expiry")
	s.Signature = r.Bytes16("signature", ed25519.SignatureSize)
	r.End("relay score")
	if r.Err() != nil {
		return nil, r.Err()
	}
	if _, err := s.Encode(); err != nil {
		return nil, err
	}
	return s, nil
}

// Verify checks s at now against the TIS root key, including its lifetime
// cap.
func (s *RelayScore) Verify(root ed25519.PublicKey, now time.Time) error {
	b, err := s.body()
	if err != nil {
		return err
	}
	if s.Expires.Sub(s.IssuedAt) > MaxRelayScoreLifetime {
		return fmt.Errorf("relay score valid for %s: %w", s.Expires.Sub(s.IssuedAt), ErrLifetime)
	}
	if findKey(s.Issuer, []ed25519.PublicKey{root}) == nil {
		return fmt.Errorf("relay score by %s: %w", s.Issuer, ErrUnknownAttester)
	}
	if err := checkSig("relay score", root, relayScoreContext, b, s.Signature); err != nil {
		return err
	}
	return checkWindow("relay score", s.IssuedAt, s.Expires, now)
}
