package tis

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/pikcio/pikcio/internal/wire"

	ma "github.com/multiformats/go-multiaddr"
)

const (
	// enrollRequestVersion 2 added the mailed code.
	enrollRequestVersion = 2
	// maxCode caps the code field of a request.
	maxCode               = 16
	enrollResponseVersion = 1
	// MaxBootstraps caps the bootstrap list of an enrollment.
	MaxBootstraps = 64
	// maxBootstrapLen caps one bootstrap multiaddr string.
	maxBootstrapLen = 512
	// MaxEnrollmentSize caps an encoded enrollment response.
	MaxEnrollmentSize = 1 + 2*(2+MaxCertificateSize) + 2 + MaxBootstraps*(2+maxBootstrapLen)
)

// Proof-of-possession contexts: each key signs the request body under its
// own context, so neither signature can stand in for the other.
var (
	enrollNodeContext       = []byte("pikcio-tis-enroll-v1/node-key\x00")
	enrollMatryoshkaContext = []byte("pikcio-tis-enroll-v1/matryoshka-key\x00")
)

// EnrollRequest is what a node sends to enroll. It is signed by both
// private keys (proof of possession) and names the TIS it is for, so it
// cannot be replayed to another TIS; its timestamp bounds replays to the
// same TIS (which can only re-issue certificates to the same keys).
type EnrollRequest struct {
	Root          KeyID
	Time          time.Time // whole seconds
	NodeKey       ed25519.PublicKey
	MatryoshkaKey ed25519.PublicKey
	Name, Email   string // as typed; the TIS normalizes them
	// Code is the one-time code mailed to Email, "" to ask for one (or to
	// renew the enrolled keys).
	Code          string
	NodeSig       []byte // by the node (libp2p) key over the body
	MatryoshkaSig []byte // by the Matryoshka key over the body
}

func (q *EnrollRequest) body() ([]byte, error) {
	if len(q.NodeKey) != ed25519.PublicKeySize || len(q.MatryoshkaKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("enrollment keys must be Ed25519: %w", ErrMalformed)
	}
	if !validTime(q.Time) {
		return nil, fmt.Errorf("enrollment request time out of range: %w", ErrMalformed)
	}
	if len(q.Name) > maxRawProperty || len(q.Email) > maxRawProperty {
		return nil, fmt.Errorf("enrollment properties over %d bytes: %w", maxRawProperty, ErrMalformed)
	}
	if len(q.Code) > maxCode {
		return nil, fmt.Errorf("enrollment code over %d bytes: %w", maxCode, ErrMalformed)
	}
	b := make([]byte, 0, 256+len(q.Name)+len(q.Email)+len(q.Code))
	b = append(b, enrollRequestVersion)
	b = append(b, q.Root[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(q.Time.Unix()))
	b = append(b, keyEd25519)
	b = wire.AppendBytes16(b, q.NodeKey)
	b = append(b, keyEd25519)
	b = wire.AppendBytes16(b, q.MatryoshkaKey)
	b = wire.AppendBytes16(b, []byte(q.Name))
	b = wire.AppendBytes16(b, []byte(q.Email))
	b = wire.AppendBytes16(b, []byte(q.Code))
	return b, nil
}

// Encode returns the canonical encoding of a signed request.
func (q *EnrollRequest) Encode() ([]byte, error) {
	b, err := q.body()
	if err != nil {
		return nil, err
	}
	if len(q.NodeSig) != ed25519.SignatureSize || len(q.MatryoshkaSig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("enrollment signatures: %w", ErrMalformed)
	}
	b = wire.AppendBytes16(b, q.NodeSig)
	return wire.AppendBytes16(b, q.MatryoshkaSig), nil
}

// verifyProof checks both proofs of possession.
func (q *EnrollRequest) verifyProof() error {
	b, err := q.body()
	if err != nil {
		return err
	}
	if !wire.Verify(q.NodeKey, enrollNodeContext, b, q.NodeSig) {
		return fmt.Errorf("node key: %w", ErrProofOfPossession)
	}
	if !wire.Verify(q.MatryoshkaKey, enrollMatryoshkaContext, b, q.MatryoshkaSig) {
		return fmt.Errorf("matryoshka key: %w", ErrProofOfPossession)
	}
	return nil
}

// DecodeEnrollRequest parses a canonical request encoding. It does not
// check the signatures.
func DecodeEnrollRequest(b []byte) (*EnrollRequest, error) {
	if len(b) > MaxRequestBody {
		return nil, fmt.Errorf("enrollment request of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	if v := r.U8("request version"); r.Err() == nil && v != enrollRequestVersion {
		r.Fail("request version %d", v)
	}
	q := &EnrollRequest{}
	copy(q.Root[:], r.Take(len(q.Root), "root key ID"))
	q.Time = time.Unix(int64(r.U64("timestamp")), 0).UTC()
	if alg := r.U8("node key algorithm"); r.Err() == nil && alg != keyEd25519 {
		r.Fail("node key algorithm %d", alg)
	}
	q.NodeKey = ed25519.PublicKey(r.Bytes16("node key", maxSubjectKey))
	if alg := r.U8("matryoshka key algorithm"); r.Err() == nil && alg != keyEd25519 {
		r.Fail("matryoshka key algorithm %d", alg)
	}
	q.MatryoshkaKey = ed25519.PublicKey(r.Bytes16("matryoshka key", maxSubjectKey))
	q.Name = string(r.Bytes16("name", maxRawProperty))
	q.Email = string(r.Bytes16("e-mail", maxRawProperty))
	q.Code = string(r.Bytes16("code", maxCode))
	q.NodeSig = r.Bytes16("node signature", ed25519.SignatureSize)
	q.MatryoshkaSig = r.Bytes16("matryoshka signature", ed25519.SignatureSize)
	r.End("enrollment request")
	if r.Err() != nil {
		return nil, r.Err()
	}
	if _, err := q.Encode(); err != nil {
		return nil, err
	}
	return q, nil
}

// Enrollment is the TIS's answer: the two certificates and the bootstrap
// multiaddrs. It is also what SaveEnrollment stores.
type Enrollment struct {
	NodeCert       *Certificate
	MatryoshkaCert *Certificate
	Bootstraps     []string
}

// Encode returns the canonical encoding of e.
func (e *Enrollment) Encode() ([]byte, error) {
	if e.NodeCert == nil || e.MatryoshkaCert == nil {
		return nil, fmt.Errorf("enrollment without certificates: %w", ErrMalformed)
	}
	nc, err := e.NodeCert.Encode()
	if err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	mc, err := e.MatryoshkaCert.Encode()
	if err != nil {
		return nil, fmt.Errorf("matryoshka certificate: %w", err)
	}
	if len(e.Bootstraps) > MaxBootstraps {
		return nil, fmt.Errorf("%d bootstraps: %w", len(e.Bootstraps), ErrMalformed)
	}
	b := make([]byte, 0, 1+4+len(nc)+len(mc)+2+len(e.Bootstraps)*64)
	b = append(b, enrollResponseVersion)
	b = wire.AppendBytes16(b, nc)
	b = wire.AppendBytes16(b, mc)
	b = binary.BigEndian.AppendUint16(b, uint16(len(e.Bootstraps)))
	for _, s := range e.Bootstraps {
		if len(s) > maxBootstrapLen {
			return nil, fmt.Errorf("bootstrap of %d bytes: %w", len(s), ErrMalformed)
		}
		b = wire.AppendBytes16(b, []byte(s))
	}
	return b, nil
}

// DecodeEnrollment parses a canonical enrollment encoding. The certificates
// are not verified; bootstraps are checked to be multiaddrs.
func DecodeEnrollment(b []byte) (*Enrollment, error) {
	if len(b) > MaxEnrollmentSize {
		return nil, fmt.Errorf("enrollment of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	if v := r.U8("enrollment version"); r.Err() == nil && v != enrollResponseVersion {
		r.Fail("enrollment version %d", v)
	}
	nc := r.Bytes16("node certificate", MaxCertificateSize)
	mc := r.Bytes16("matryoshka certificate", MaxCertificateSize)
	n := int(r.U16("bootstrap count"))
	if r.Err() == nil && n > MaxBootstraps {
		r.Fail("%d bootstraps", n)
	}
	e := &Enrollment{}
	for i := 0; i < n && r.Err() == nil; i++ {
		e.Bootstraps = append(e.Bootstraps, string(r.Bytes16("bootstrap", maxBootstrapLen)))
	}
	r.End("enrollment")
	if r.Err() != nil {
		return nil, r.Err()
	}
	var err error
	if e.NodeCert, err = DecodeCertificate(nc); err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	if e.MatryoshkaCert, err = DecodeCertificate(mc); err != nil {
		return nil, fmt.Errorf("matryoshka certificate: %w", err)
	}
	if err := checkBootstraps(e.Bootstraps); err != nil {
		return nil, err
	}
	return e, nil
}

// checkBootstraps requires each bootstrap to be a multiaddr in canonical
// string form.
func checkBootstraps(bs []string) error {
	if len(bs) > MaxBootstraps {
		return fmt.Errorf("%d bootstraps: %w", len(bs), ErrMalformed)
	}
	for _, s := range bs {
		if len(s) > maxBootstrapLen {
			return fmt.Errorf("bootstrap of %d bytes: %w", len(s), ErrMalformed)
		}
		a, err := ma.NewMultiaddr(s)
		if err != nil || a.String() != s {
			return fmt.Errorf("bootstrap %q is not a canonical multiaddr: %w", s, ErrMalformed)
		}
	}
	return nil
}

// Verify checks an enrollment against the pinned root and the keys it was
// requested for: both certificates valid at now and of the right type and
// key, and sharing neither serial nor ID.
func (e *Enrollment) Verify(root ed25519.PublicKey, nodeKey, matryoshkaKey ed25519.PublicKey, now time.Time) error {
	if e.NodeCert == nil || e.MatryoshkaCert == nil {
		return fmt.Errorf("enrollment without certificates: %w", ErrMalformed)
	}
	if e.NodeCert.Type != TypeNode || e.MatryoshkaCert.Type != TypeMatryoshka {
		return fmt.Errorf("enrollment certificates: %w", ErrWrongType)
	}
	if err := e.NodeCert.Verify(root, now); err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	if err := e.MatryoshkaCert.Verify(root, now); err != nil {
		return fmt.Errorf("matryoshka certificate: %w", err)
	}
	if !nodeKey.Equal(e.NodeCert.SubjectKey) {
		return fmt.Errorf("node certificate: %w", ErrWrongKey)
	}
	if !matryoshkaKey.Equal(e.MatryoshkaCert.SubjectKey) {
		return fmt.Errorf("matryoshka certificate: %w", ErrWrongKey)
	}
	if e.NodeCert.ID == e.MatryoshkaCert.ID || e.NodeCert.Serial == e.MatryoshkaCert.Serial {
		return fmt.Errorf("node and matryoshka certificates share an identifier: %w", ErrMalformed)
	}
	return nil
}
