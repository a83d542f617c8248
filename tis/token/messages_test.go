package token

import (
	"bytes"
	"errors"
	"sync"
	"testing"

	"github.com/pikcio/pikcio/tis"
)

// samples are valid encodings of each message, made once on a real TIS.
type samples struct {
	token, keySet, request, response, wallet []byte
}

var (
	sampleOnce sync.Once
	sample     samples
)

func getSamples(t testing.TB) samples {
	sampleOnce.Do(func() {
		f := newFixture(t, IssuerOptions{})
		alice := f.tis.Enroll(t, "alice")
		toks, batch := issue(t, f.client(alice), 2)
		keys, err := f.issuer.Keys(ctx(t), f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		sample.token = toks[0]
		if sample.keySet, err = EncodeKeySet(keys); err != nil {
			t.Fatal(err)
		}
		q := &IssueRequest{Root: tis.RootKeyID(f.tis.Root), NodeCert: alice.Enrollment.NodeCert, Key: batch.Key.ID(), Time: f.clock.Now(), Blinded: [][]byte{bytes.Repeat([]byte{7}, 256), bytes.Repeat([]byte{9}, 256)}}
		msg, err := q.signed()
		if err != nil {
			t.Fatal(err)
		}
		if q.Signature, err = alice.NodeKey.Sign(msg); err != nil {
			t.Fatal(err)
		}
		if sample.request, err = q.Encode(); err != nil {
			t.Fatal(err)
		}
		p := &IssueResponse{Remaining: 5, Signatures: [][]byte{batch.Tokens[0].Signature, batch.Tokens[1].Signature}}
		if sample.response, err = p.Encode(); err != nil {
			t.Fatal(err)
		}
		sample.wallet = encodeWallet([]walletToken{{guard: testGuard, expires: batch.Key.End, enc: toks[0]}, {guard: otherGuard, expires: batch.Key.End, enc: toks[1]}})
	})
	if sample.token == nil {
		t.Fatal("no samples")
	}
	return sample
}

// decoders re-encode what they decode, so that a canonical encoding is
// the only one accepted.
var decoders = []struct {
	name   string
	pick   func(samples) []byte
	decode func([]byte) ([]byte, error)
}{
	{"token", func(s samples) []byte { return s.token }, func(b []byte) ([]byte, error) {
		t, err := DecodeToken(b)
		if err != nil {
			return nil, err
		}
		return t.Encode()
	}},
	{"key set", func(s samples) []byte { return s.keySet }, func(b []byte) ([]byte, error) {
		keys, err := DecodeKeySet(b)
		if err != nil {
			return nil, err
		}
		return EncodeKeySet(keys)
	}},
	{"issue request", func(s samples) []byte { return s.request }, func(b []byte) ([]byte, error) {
		q, err := DecodeIssueRequest(b)
		if err != nil {
			return nil, err
		}
		return q.Encode()
	}},
	{"issue response", func(s samples) []byte { return s.response }, func(b []byte) ([]byte, error) {
		p, err := DecodeIssueResponse(b)
		if err != nil {
			return nil, err
		}
		return p.Encode()
	}},
	{"wallet", func(s samples) []byte { return s.wallet }, func(b []byte) ([]byte, error) {
		ts, err := decodeWallet(b)
		if err != nil {
			return nil, err
		}
		return encodeWallet(ts), nil
	}},
}

func TestEncodings(t *testing.T) {
	s := getSamples(t)
	for _, d := range decoders {
		t.Run(d.name, func(t *testing.T) {
			b := d.pick(s)
			got, err := d.decode(b)
			if err != nil || !bytes.Equal(got, b) {
				t.Fatalf("round trip: %v, equal %v", err, bytes.Equal(got, b))
			}
			for n := range len(b) {
				if _, err := d.decode(b[:n]); !errors.Is(err, ErrMalformed) {
					t.Fatalf("truncated to %d of %d bytes: %v, want ErrMalformed", n, len(b), err)
				}
			}
			for _, bad := range [][]byte{append(bytes.Clone(b), 0), append([]byte{b[0] + 1}, b[1:]...)} {
				if _, err := d.decode(bad); !errors.Is(err, ErrMalformed) {
					t.Fatalf("trailing byte or other version: %v, want ErrMalformed", err)
				}
			}
		})
	}
}

func TestDecodeKeyRefusesWeakKeys(t *testing.T) {
	s := getSamples(t)
	keys, err := DecodeKeySet(s.keySet)
	if err != nil {
		t.Fatal(err)
	}
	weak := *keys[0].PublicKey
	weak.E = 3
	k := newKey(keys[0].Issuer, keys[0].Start, keys[0].End, &weak)
	k.Signature = keys[0].Signature
	b, err := k.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeKey(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("exponent 3: %v, want ErrMalformed", err)
	}
	rev := newKey(keys[0].Issuer, keys[0].End, keys[0].Start, keys[0].PublicKey)
	rev.Signature = keys[0].Signature
	if _, err := rev.Encode(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("end before start: %v, want ErrMalformed", err)
	}
}

// fuzzDecoder checks that decoding arbitrary bytes never panics and that
// whatever decodes re-encodes to the same bytes.
func fuzzDecoder(f *testing.F, name string) {
	s := getSamples(f)
	for _, d := range decoders {
		if d.name != name {
			continue
		}
		f.Add(d.pick(s))
		f.Add([]byte{})
		f.Fuzz(func(t *testing.T, b []byte) {
			got, err := d.decode(b)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("error not ErrMalformed: %v", err)
				}
				return
			}
			if !bytes.Equal(got, b) {
				t.Fatalf("decoded %x re-encodes to %x", b, got)
			}
		})
	}
}

func FuzzDecodeToken(f *testing.F)         { fuzzDecoder(f, "token") }
func FuzzDecodeKeySet(f *testing.F)        { fuzzDecoder(f, "key set") }
func FuzzDecodeIssueRequest(f *testing.F)  { fuzzDecoder(f, "issue request") }
func FuzzDecodeIssueResponse(f *testing.F) { fuzzDecoder(f, "issue response") }
func FuzzDecodeWallet(f *testing.F)        { fuzzDecoder(f, "wallet") }
