package trust

import (
	"bytes"
	"testing"
	"time"
)

// fuzzDecoder checks that a decoder never panics and that whatever it
// accepts re-encodes to the same bytes.
func fuzzDecoder[T encoder](f *testing.F, seed string, decode func([]byte) (T, error)) {
	samples := encodeSamples(f)
	for _, b := range samples {
		f.Add(b)
	}
	f.Add(samples[seed][:len(samples[seed])/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decode(b)
		if err != nil {
			return
		}
		got, err := r.Encode()
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", got, b)
		}
	})
}

func FuzzDecodeVouch(f *testing.F)       { fuzzDecoder(f, "vouch", DecodeVouch) }
func FuzzDecodeWithdrawal(f *testing.F)  { fuzzDecoder(f, "withdrawal", DecodeWithdrawal) }
func FuzzDecodeAttestation(f *testing.F) { fuzzDecoder(f, "attestation", DecodeAttestation) }
func FuzzDecodeRelayScore(f *testing.F)  { fuzzDecoder(f, "relayscore", DecodeRelayScore) }

func FuzzDecodeBundle(f *testing.F) {
	tt := newTestTIS(f)
	a, b := tt.enroll(f, "alice"), tt.enroll(f, "bob")
	now := time.Now()
	att := attest(a.cert.ID, "email-verified")
	if err := att.Sign(tt.rootPriv); err != nil {
		f.Fatal(err)
	}
	good := signedBundle(f, a, now, []*Vouch{nowVouch(b.cert.ID, 9)}, []*Withdrawal{{Vouchee: b.cert.ID, IssuedAt: t0}}, []*Attestation{att})
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(signedBundle(f, b, now, nil, nil, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		bu, err := DecodeBundle(data)
		if err != nil {
			return
		}
		got, err := bu.Encode()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("re-encoding differs (%v)", err)
		}
		_ = bu.Verify(tt.root, now, nil)
	})
}
