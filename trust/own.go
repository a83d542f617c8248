package trust

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pikcio/pikcio/internal/privfile"
	"github.com/pikcio/pikcio/tis"
)

// OwnFile holds, in the node's data directory (0600), the records the
// user publishes: the vouches and withdrawals they signed and the
// attestations they were given. `pikcio trust vouch/withdraw` and
// `pikcio trust attestation add` edit it; the running node publishes it
// as its Bundle when it changes.
const OwnFile = "trust.json"

// AttestationPrefix starts the text form of an attestation that an
// attester hands to the subject.
const AttestationPrefix = "pikcio-attestation:"

// Defaults of the user's own records.
const (
	// DefaultVouchLifetime is the validity of a new vouch.
	DefaultVouchLifetime = 365 * 24 * time.Hour
	// WithdrawalKeep is how long a withdrawal stays published after the
	// vouch it withdrew would have expired.
	WithdrawalKeep = 30 * 24 * time.Hour
)

const ownVersion = 1

// Own is the user's own published records.
type Own struct {
	Vouches      []*Vouch
	Withdrawals  []*Withdrawal
	Attestations []*Attestation
}

type ownJSON struct {
	Version      int      `json:"version"`
	Vouches      [][]byte `json:"vouches"`
	Withdrawals  [][]byte `json:"withdrawals"`
	Attestations [][]byte `json:"attestations"`
}

// LoadOwn reads OwnFile from dir; a missing file is an empty Own.
func LoadOwn(dir string) (*Own, error) {
	path := filepath.Join(dir, OwnFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &Own{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read own trust records: %w", err)
	}
	var j ownJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if j.Version != ownVersion {
		return nil, fmt.Errorf("%s: version %d: %w", path, j.Version, ErrMalformed)
	}
	o := &Own{}
	for _, e := range j.Vouches {
		v, err := DecodeVouch(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		o.Vouches = append(o.Vouches, v)
	}
	for _, e := range j.Withdrawals {
		w, err := DecodeWithdrawal(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		o.Withdrawals = append(o.Withdrawals, w)
	}
	for _, e := range j.Attestations {
		a, err := DecodeAttestation(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		o.Attestations = append(o.Attestations, a)
	}
	return o, nil
}

// Save writes o to OwnFile in dir (0600, atomically).
func (o *Own) Save(dir string) error {
	j := ownJSON{Version: ownVersion, Vouches: [][]byte{}, Withdrawals: [][]byte{}, Attestations: [][]byte{}}
	for _, v := range o.Vouches {
		e, err := v.Encode()
		if err != nil {
			return err
		}
		j.Vouches = append(j.Vouches, e)
	}
	for _, w := range o.Withdrawals {
		e, err := w.Encode()
		if err != nil {
			return err
		}
		j.Withdrawals = append(j.Withdrawals, e)
	}
	for _, a := range o.Attestations {
		e, err := a.Encode()
		if err != nil {
			return err
		}
		j.Attestations = append(j.Attestations, e)
	}
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("encode own trust records: %w", err)
	}
	return privfile.Replace(filepath.Join(dir, OwnFile), b)
}

// Vouch signs a vouch by voucher for vouchee, replacing an earlier vouch
// or withdrawal for the same identity.
func (o *Own) Vouch(key ed25519.PrivateKey, voucher, vouchee tis.ID, weight int, lifetime time.Duration, now time.Time) (*Vouch, error) {
	if weight < MinWeight || weight > MaxWeight {
		return nil, fmt.Errorf("weight %d, want %d..%d: %w", weight, MinWeight, MaxWeight, ErrMalformed)
	}
	if lifetime <= 0 {
		lifetime = DefaultVouchLifetime
	}
	now = now.Truncate(time.Second)
	// A vouch counts only if issued strictly after a withdrawal.
	for _, w := range o.Withdrawals {
		if w.Vouchee == vouchee && !now.After(w.IssuedAt) {
			now = w.IssuedAt.Add(time.Second)
		}
	}
	v := &Vouch{Voucher: voucher, Vouchee: vouchee, Weight: uint8(weight), IssuedAt: now, Expires: now.Add(lifetime.Truncate(time.Second))}
	if err := v.Sign(key); err != nil {
		return nil, err
	}
	o.Vouches = slices.DeleteFunc(o.Vouches, func(x *Vouch) bool { return x.Vouchee == vouchee })
	o.Withdrawals = slices.DeleteFunc(o.Withdrawals, func(x *Withdrawal) bool { return x.Vouchee == vouchee })
	if len(o.Vouches) >= MaxBundleVouches {
		return nil, fmt.Errorf("already %d vouches, at most %d: %w", len(o.Vouches), MaxBundleVouches, ErrMalformed)
	}
	o.Vouches = append(o.Vouches, v)
	return v, nil
}

// Withdraw removes the vouch for vouchee and signs a withdrawal of it.
func (o *Own) Withdraw(key ed25519.PrivateKey, voucher, vouchee tis.ID, now time.Time) (*Withdrawal, error) {
	i := slices.IndexFunc(o.Vouches, func(x *Vouch) bool { return x.Vouchee == vouchee })
	if i < 0 {
		return nil, fmt.Errorf("no vouch for %s: %w", vouchee, ErrNotFound)
	}
	issued := now.Truncate(time.Second)
	if issued.Before(o.Vouches[i].IssuedAt) {
		issued = o.Vouches[i].IssuedAt
	}
	w := &Withdrawal{Voucher: voucher, Vouchee: vouchee, IssuedAt: issued}
	if err := w.Sign(key); err != nil {
		return nil, err
	}
	o.Vouches = slices.Delete(o.Vouches, i, i+1)
	o.Withdrawals = slices.DeleteFunc(o.Withdrawals, func(x *Withdrawal) bool { return x.Vouchee == vouchee })
	o.Withdrawals = append(o.Withdrawals, w)
	return w, nil
}

// AddAttestation adds an attestation about subject, replacing one of the
// same kind by the same issuer.
func (o *Own) AddAttestation(a *Attestation, subject tis.ID) error {
	if a.Subject != subject {
		return fmt.Errorf("attestation about %s, not about you: %w", a.Subject, ErrWrongIdentity)
	}
	o.Attestations = slices.DeleteFunc(o.Attestations, func(x *Attestation) bool { return x.Issuer == a.Issuer && x.Kind == a.Kind })
	if len(o.Attestations) >= MaxBundleAttestations {
		return fmt.Errorf("already %d attestations: %w", len(o.Attestations), ErrMalformed)
	}
	o.Attestations = append(o.Attestations, a)
	return nil
}

// Bundle signs the bundle to publish at now: expired vouches and
// attestations are left out, and withdrawals once no vouch they could
// cancel is still valid. The issue time is after prev, the issue time of
// the last bundle published.
func (o *Own) Bundle(cert *tis.Certificate, key ed25519.PrivateKey, now, prev time.Time) (*Bundle, []byte, error) {
	issued := now.Truncate(time.Second)
	if !issued.After(prev) {
		issued = prev.Truncate(time.Second).Add(time.Second)
	}
	b := &Bundle{Cert: cert, IssuedAt: issued}
	for _, v := range o.Vouches {
		if now.Before(v.Expires) {
			b.Vouches = append(b.Vouches, v)
		}
	}
	for _, w := range o.Withdrawals {
		if now.Before(w.IssuedAt.Add(DefaultVouchLifetime + WithdrawalKeep)) {
			b.Withdrawals = append(b.Withdrawals, w)
		}
	}
	for _, a := range o.Attestations {
		if now.Before(a.Expires) {
			b.Attestations = append(b.Attestations, a)
		}
	}
	if err := b.Sign(key); err != nil {
		return nil, nil, err
	}
	enc, err := b.Encode()
	if err != nil {
		return nil, nil, err
	}
	return b, enc, nil
}

// FormatAttestation returns the text form of a signed attestation.
func FormatAttestation(a *Attestation) (string, error) {
	b, err := a.Encode()
	if err != nil {
		return "", err
	}
	return AttestationPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// ParseAttestation parses the text form of an attestation (form only).
func ParseAttestation(s string) (*Attestation, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, AttestationPrefix)
	if !ok || len(rest) > base64.RawURLEncoding.EncodedLen(MaxAttestationSize) {
		return nil, fmt.Errorf("not an attestation code: %w", ErrMalformed)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("attestation code: %w: %w", ErrMalformed, err)
	}
	return DecodeAttestation(b)
}
