package trust

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/pikcio/pikcio/internal/wire"
	"github.com/pikcio/pikcio/tis"
)

// Limits of a bundle, in one place.
const (
	// MaxBundleVouches, MaxBundleWithdrawals and MaxBundleAttestations cap
	// what one identity publishes.
	MaxBundleVouches      = 128
	MaxBundleWithdrawals  = 128
	MaxBundleAttestations = 16
	// MaxBundleSize caps an encoded bundle.
	MaxBundleSize = 2 + 2 + tis.MaxCertificateSize + 8 +
		2 + MaxBundleVouches*VouchSize +
		2 + MaxBundleWithdrawals*WithdrawalSize +
		2 + MaxBundleAttestations*(2+MaxAttestationSize) +
		2 + ed25519.SignatureSize
)

var bundleContext = []byte("pikcio-trust-bundle-v1\x00")

// Bundle is what one identity publishes in the DHT under BundleKey of its
// Matryoshka ID: its Matryoshka certificate, the vouches and withdrawals
// it issued, and the attestations it was given, signed as a whole by its
// Matryoshka key. A newer bundle (later IssuedAt) replaces an older one,
// so a withdrawal takes effect when the bundle without the vouch (and
// with the withdrawal) spreads, and an old bundle replayed later loses.
type Bundle struct {
	Cert         *tis.Certificate // the owner's Matryoshka certificate
	IssuedAt     time.Time        // whole seconds; the version of the bundle
	Vouches      []*Vouch         // all by the owner
	Withdrawals  []*Withdrawal    // all by the owner
	Attestations []*Attestation   // all about the owner
	Signature    []byte
}

// Owner is the bundle owner's Matryoshka ID.
func (b *Bundle) Owner() tis.ID {
	if b.Cert == nil {
		return tis.ID{}
	}
	return b.Cert.ID
}

func (b *Bundle) body() ([]byte, error) {
	if b.Cert == nil || b.Cert.Type != tis.TypeMatryoshka {
		return nil, fmt.Errorf("bundle without a Matryoshka certificate: %w", ErrMalformed)
	}
	if !validTime(b.IssuedAt) {
		return nil, fmt.Errorf("bundle time: %w", ErrMalformed)
	}
	if len(b.Vouches) > MaxBundleVouches || len(b.Withdrawals) > MaxBundleWithdrawals || len(b.Attestations) > MaxBundleAttestations {
		return nil, fmt.Errorf("bundle of %d vouches, %d withdrawals, %d attestations: %w", len(b.Vouches), len(b.Withdrawals), len(b.Attestations), ErrMalformed)
	}
	cert, err := b.Cert.Encode()
	if err != nil {
		return nil, fmt.Errorf("bundle certificate: %w", err)
	}
	out := make([]byte, 0, 1024)
	out = append(out, recordVersion, kindBundle)
	out = wire.AppendBytes16(out, cert)
	out = appendTime(out, b.IssuedAt)
	out = binary.BigEndian.AppendUint16(out, uint16(len(b.Vouches)))
	for _, v := range b.Vouches {
		if v.Voucher != b.Cert.ID {
			return nil, fmt.Errorf("bundle of %s holds a vouch by %s: %w", b.Cert.ID, v.Voucher, ErrWrongIdentity)
		}
		e, err := v.Encode()
		if err != nil {
			return nil, err
		}
		out = append(out, e...)
	}
	out = binary.BigEndian.AppendUint16(out, uint16(len(b.Withdrawals)))
	for _, w := range b.Withdrawals {
		if w.Voucher != b.Cert.ID {
			return nil, fmt.Errorf("bundle of %s holds a withdrawal by %s: %w", b.Cert.ID, w.Voucher, ErrWrongIdentity)
		}
		e, err := w.Encode()
		if err != nil {
			return nil, err
		}
		out = append(out, e...)
	}
	out = binary.BigEndian.AppendUint16(out, uint16(len(b.Attestations)))
	for _, a := range b.Attestations {
		if a.Subject != b.Cert.ID {
			return nil, fmt.Errorf("bundle of %s holds an attestation about %s: %w", b.Cert.ID, a.Subject, ErrWrongIdentity)
		}
		e, err := a.Encode()
		if err != nil {
			return nil, err
		}
		out = wire.AppendBytes16(out, e)
	}
	return out, nil
}

// Sign sets the signature with the owner's Matryoshka private key.
func (b *Bundle) Sign(key ed25519.PrivateKey) error {
	body, err := b.body()
	if err != nil {
		return err
	}
	b.Signature = wire.Sign(key, bundleContext, body)
	return nil
}

// Encode returns the canonical encoding of a signed bundle.
func (b *Bundle) Encode() ([]byte, error) {
	body, err := b.body()
	if err != nil {
		return nil, err
	}
	return wire.AppendSignature(body, b.Signature, "bundle", ErrMalformed)
}

// DecodeBundle parses a canonical bundle (form only; call Verify).
func DecodeBundle(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("bundle of %d bytes: %w", len(data), ErrMalformed)
	}
	r := wire.NewReader(data, ErrMalformed)
	readHeader(r, kindBundle, "bundle")
	certBytes := r.Bytes16("certificate", tis.MaxCertificateSize)
	b := &Bundle{IssuedAt: r.Time("issue time")}
	if r.Err() != nil {
		return nil, r.Err()
	}
	cert, err := tis.DecodeCertificate(certBytes)
	if err != nil {
		return nil, fmt.Errorf("bundle certificate: %w: %w", ErrMalformed, err)
	}
	b.Cert = cert
	n := int(r.U16("vouches"))
	if n > MaxBundleVouches {
		r.Fail("%d vouches", n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		v, err := DecodeVouch(r.Take(VouchSize, "vouch"))
		if err != nil {
			if r.Err() == nil {
				return nil, err
			}
			break
		}
		b.Vouches = append(b.Vouches, v)
	}
	n = int(r.U16("withdrawals"))
	if n > MaxBundleWithdrawals {
		r.Fail("%d withdrawals", n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		w, err := DecodeWithdrawal(r.Take(WithdrawalSize, "withdrawal"))
		if err != nil {
			if r.Err() == nil {
				return nil, err
			}
			break
		}
		b.Withdrawals = append(b.Withdrawals, w)
	}
	n = int(r.U16("attestations"))
	if n > MaxBundleAttestations {
		r.Fail("%d attestations", n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		raw := r.Bytes16("attestation", MaxAttestationSize)
		if r.Err() != nil {
			break
		}
		a, err := DecodeAttestation(raw)
		if err != nil {
			return nil, err
		}
		b.Attestations = append(b.Attestations, a)
	}
	b.Signature = r.Bytes16("signature", ed25519.SignatureSize)
	r.End("bundle")
	if r.Err() != nil {
		return nil, r.Err()
	}
	enc, err := b.Encode()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(enc, data) {
		return nil, fmt.Errorf("bundle not canonical: %w", ErrMalformed)
	}
	return b, nil
}

// Verify checks the bundle at now: the certificate is a valid, unrevoked
// Matryoshka certificate from root, the owner signed the bundle, it was
// not issued in the future, and every vouch and withdrawal in it carries
// the owner's signature. Expired vouches do not make a bundle invalid
// (they are ignored by Records); attestations are checked by Records,
// against the attesters of the caller.
func (b *Bundle) Verify(root ed25519.PublicKey, now time.Time, revocations *tis.RevocationList) error {
	body, err := b.body()
	if err != nil {
		return err
	}
	if err := tis.VerifyMatryoshkaCert(b.Cert, root, b.Cert.SubjectKey, now, revocations); err != nil {
		return fmt.Errorf("bundle certificate: %w", err)
	}
	if err := checkSig("bundle", b.Cert.SubjectKey, bundleContext, body, b.Signature); err != nil {
		return err
	}
	if err := checkWindow("bundle", b.IssuedAt, time.Time{}, now); err != nil {
		return err
	}
	for _, v := range b.Vouches {
		if err := v.Verify(b.Cert, root, now, revocations); err != nil && !errors.Is(err, ErrExpired) && !errors.Is(err, ErrNotYetValid) {
			return fmt.Errorf("bundle of %s: %w", b.Cert.ID, err)
		}
	}
	for _, w := range b.Withdrawals {
		if err := w.Verify(b.Cert, root, now, revocations); err != nil && !errors.Is(err, ErrNotYetValid) {
			return fmt.Errorf("bundle of %s: %w", b.Cert.ID, err)
		}
	}
	return nil
}

// Records returns the records of a verified bundle that count at now:
// vouches within their window, withdrawals not issued in the future, and
// attestations that one of attesters signed and that are within their
// window. Records dropped are the expired, the early and the forged.
func (b *Bundle) Records(root ed25519.PublicKey, attesters []ed25519.PublicKey, now time.Time, revocations *tis.RevocationList) Records {
	var r Records
	for _, v := range b.Vouches {
		if v.Verify(b.Cert, root, now, revocations) == nil {
			r.Vouches = append(r.Vouches, v)
		}
	}
	for _, w := range b.Withdrawals {
		if w.Verify(b.Cert, root, now, revocations) == nil {
			r.Withdrawals = append(r.Withdrawals, w)
		}
	}
	for _, a := range b.Attestations {
		if a.Verify(attesters, now) == nil {
			r.Attestations = append(r.Attestations, a)
		}
	}
	return r
}

// newer reports whether a should replace b: a later issue time, or the
// same time and larger bytes, so that every node picks the same one.
func newer(a, b *Bundle, ea, eb []byte) bool {
	if c := a.IssuedAt.Compare(b.IssuedAt); c != 0 {
		return c > 0
	}
	return bytes.Compare(ea, eb) > 0
}
