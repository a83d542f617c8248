package tis

import (
	"github.com/pikcio/pikcio/internal/wire"

	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// seedCert is a fixed, signed certificate for codec tests and fuzz seeds.
func seedCert(t testing.TB, typ CertType) *Certificate {
	t.Helper()
	root := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	sub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(typ)}, 32)).Public().(ed25519.PublicKey)
	c := &Certificate{Type: typ, Serial: Serial{1, 2, 3}, ID: ID{4, 5, 6}, SubjectKey: sub,
		IssuedAt: time.Unix(1_700_000_000, 0).UTC(), Expires: time.Unix(1_800_000_000, 0).UTC()}
	if err := c.sign(root); err != nil {
		t.Fatal(err)
	}
	return c
}

func seedEnrollment(t testing.TB) *Enrollment {
	return &Enrollment{NodeCert: seedCert(t, TypeNode), MatryoshkaCert: seedCert(t, TypeMatryoshka),
		Bootstraps: []string{"/ip4/127.0.0.1/tcp/4001", "/ip6/::1/udp/4001/quic-v1"}}
}

func seedRequest(t testing.TB) *EnrollRequest {
	t.Helper()
	n := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	m := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	q := &EnrollRequest{Root: KeyID{9}, Time: time.Unix(1_700_000_000, 0).UTC(), NodeKey: n.Public().(ed25519.PublicKey),
		MatryoshkaKey: m.Public().(ed25519.PublicKey), Name: "Zoë", Email: "zoe@example.org"}
	body, err := q.body()
	if err != nil {
		t.Fatal(err)
	}
	q.NodeSig = ed25519.Sign(n, wire.Signed(enrollNodeContext, body))
	q.MatryoshkaSig = ed25519.Sign(m, wire.Signed(enrollMatryoshkaContext, body))
	return q
}

func seedRevocations(t testing.TB) *RevocationList {
	t.Helper()
	l := &RevocationList{Sequence: 42, IssuedAt: time.Unix(1_700_000_000, 0).UTC(), NextUpdate: time.Unix(1_700_086_400, 0).UTC(),
		Serials: []Serial{{1}, {2}, {0xff}}}
	if err := l.sign(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))); err != nil {
		t.Fatal(err)
	}
	return l
}

func mustEncode(t testing.TB, enc func() ([]byte, error)) []byte {
	t.Helper()
	b, err := enc()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCodecRoundTrip(t *testing.T) {
	c := seedCert(t, TypeNode)
	e := seedEnrollment(t)
	q := seedRequest(t)
	l := seedRevocations(t)
	empty := &RevocationList{Sequence: 1, IssuedAt: l.IssuedAt, NextUpdate: l.NextUpdate, Signature: l.Signature}
	tests := []struct {
		name   string
		value  any
		enc    func() ([]byte, error)
		decode func([]byte) (any, error)
	}{
		{"certificate", c, c.Encode, func(b []byte) (any, error) { return DecodeCertificate(b) }},
		{"enrollment", e, e.Encode, func(b []byte) (any, error) { return DecodeEnrollment(b) }},
		{"request", q, q.Encode, func(b []byte) (any, error) { return DecodeEnrollRequest(b) }},
		{"revocation list", l, l.Encode, func(b []byte) (any, error) { return DecodeRevocationList(b) }},
		{"empty revocation list", empty, empty.Encode, func(b []byte) (any, error) { return DecodeRevocationList(b) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustEncode(t, tc.enc)
			got, err := tc.decode(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.value) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tc.value)
			}
			// Every strict prefix and any trailing byte is refused.
			for i := 0; i < len(b); i++ {
				if _, err := tc.decode(b[:i]); !errors.Is(err, ErrMalformed) {
					t.Fatalf("prefix of %d bytes: %v", i, err)
				}
			}
			if _, err := tc.decode(append(bytes.Clone(b), 0)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("trailing byte: %v", err)
			}
		})
	}
}

func TestDecodeMalformed(t *testing.T) {
	cert := mustEncode(t, seedCert(t, TypeNode).Encode)
	set := func(b []byte, i int, v byte) []byte { b = bytes.Clone(b); b[i] = v; return b }
	// Offsets in a certificate: version 0, type 1, ..., issued 58, expires 66, key algorithm 74, key length 75.
	swapped := bytes.Clone(cert)
	binary.BigEndian.PutUint64(swapped[66:], binary.BigEndian.Uint64(cert[58:]))
	farFuture := bytes.Clone(cert)
	binary.BigEndian.PutUint64(farFuture[66:], wire.MaxUnix)
	negative := bytes.Clone(cert)
	binary.BigEndian.PutUint64(negative[58:], 1<<63)
	list := mustEncode(t, seedRevocations(t).Encode)
	unsorted := bytes.Clone(list)
	s3 := Serial{3}
	copy(unsorted[37:], s3[:]) // first serial now above the second
	huge := bytes.Clone(list)
	binary.BigEndian.PutUint32(huge[33:], MaxRevoked+1)
	enr := mustEncode(t, seedEnrollment(t).Encode)
	badBoot := (&Enrollment{NodeCert: seedCert(t, TypeNode), MatryoshkaCert: seedCert(t, TypeMatryoshka), Bootstraps: []string{"/ip4/1.2.3.4/tcp/x"}})
	badBootBytes := mustEncode(t, badBoot.Encode)
	req := mustEncode(t, seedRequest(t).Encode)

	tests := []struct {
		name   string
		data   []byte
		decode func([]byte) error
	}{
		{"cert version", set(cert, 0, 2), decCert},
		{"cert type", set(cert, 1, 3), decCert},
		{"cert key algorithm", set(cert, 74, 2), decCert},
		{"cert key length", set(cert, 76, 31), decCert},
		{"cert expires at issue", swapped, decCert},
		{"cert expiry out of range", farFuture, decCert},
		{"cert issue time negative", negative, decCert},
		{"cert oversized", make([]byte, MaxCertificateSize+1), decCert},
		{"list version", set(list, 0, 0), decList},
		{"list unsorted", unsorted, decList},
		{"list count over cap", huge, decList},
		{"enrollment version", set(enr, 0, 9), decEnr},
		{"enrollment bad bootstrap", badBootBytes, decEnr},
		{"enrollment cert swapped for garbage", append([]byte{1, 0, 1, 0}, enr[3:]...), decEnr},
		{"request version", set(req, 0, 0), decReq},
		{"request key algorithm", set(req, 17, 5), decReq},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.decode(tc.data); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}

func decCert(b []byte) error { _, err := DecodeCertificate(b); return err }
func decList(b []byte) error { _, err := DecodeRevocationList(b); return err }
func decEnr(b []byte) error  { _, err := DecodeEnrollment(b); return err }
func decReq(b []byte) error  { _, err := DecodeEnrollRequest(b); return err }

// fuzzStable checks that what decodes re-encodes to the same bytes (the
// encodings are canonical) and decodes again to an equal value.
func fuzzStable[T any](t *testing.T, data []byte, decode func([]byte) (T, error), encode func(T) ([]byte, error)) {
	v, err := decode(data)
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("decode error without ErrMalformed: %v", err)
		}
		return
	}
	b, err := encode(v)
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	if !bytes.Equal(b, data) {
		t.Fatalf("not canonical:\n in %x\nout %x", data, b)
	}
	v2, err := decode(b)
	if err != nil || !reflect.DeepEqual(v, v2) {
		t.Fatalf("decode -> encode -> decode: %v", err)
	}
}

func FuzzDecodeCertificate(f *testing.F) {
	f.Add(mustEncode(f, seedCert(f, TypeNode).Encode))
	f.Add(mustEncode(f, seedCert(f, TypeMatryoshka).Encode))
	f.Add([]byte{1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzStable(t, data, DecodeCertificate, (*Certificate).Encode)
	})
}

func FuzzDecodeRevocationList(f *testing.F) {
	f.Add(mustEncode(f, seedRevocations(f).Encode))
	f.Add([]byte{1})
	// A page of a list of several (version 2).
	paged := seedRevocations(f)
	paged.Page, paged.Pages = 1, 2
	if err := paged.sign(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))); err != nil {
		f.Fatal(err)
	}
	f.Add(mustEncode(f, paged.Encode))
	// A delta (version 3).
	delta := seedRevocations(f)
	delta.Base = 40
	if err := delta.sign(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))); err != nil {
		f.Fatal(err)
	}
	f.Add(mustEncode(f, delta.Encode))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzStable(t, data, DecodeRevocationList, (*RevocationList).Encode)
	})
}

func FuzzDecodeEnrollRequest(f *testing.F) {
	f.Add(mustEncode(f, seedRequest(f).Encode))
	withCode := seedRequest(f)
	withCode.Code = "12345678"
	f.Add(mustEncode(f, withCode.Encode))
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzStable(t, data, DecodeEnrollRequest, (*EnrollRequest).Encode)
		if q, err := DecodeEnrollRequest(data); err == nil {
			q.verifyProof() // must not panic
		}
	})
}

func FuzzDecodeEnrollment(f *testing.F) {
	f.Add(mustEncode(f, seedEnrollment(f).Encode))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzStable(t, data, DecodeEnrollment, (*Enrollment).Encode)
	})
}

func FuzzDecodeRelayScoreRequest(f *testing.F) {
	nk, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	_, mk, _ := ed25519.GenerateKey(rand.Reader)
	q, err := NewRelayScoreRequest(nk, seedCert(f, TypeNode), mk, seedCert(f, TypeMatryoshka), time.Now())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mustEncode(f, q.Encode))
	f.Add([]byte{0, 1, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzStable(t, data, DecodeRelayScoreRequest, (*RelayScoreRequest).Encode)
	})
}

func FuzzDecodeSeedList(f *testing.F) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	l, err := NewSeedList([]ID{{2}, {1}}, time.Unix(1_800_000_000, 0), key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mustEncode(f, l.Encode))
	f.Add([]byte{1, 0x53})
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzStable(t, data, DecodeSeedList, (*SeedList).Encode)
	})
}
