package trust

import (
	"bytes"
	"testing"
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
