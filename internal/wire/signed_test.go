package wire

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
)

var errTest = errors.New("malformed")

func TestSignVerify(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctxA, ctxB := []byte("kind-a-v1\x00"), []byte("kind-b-v1\x00")
	body := []byte("body")
	sig := Sign(priv, ctxA, body)
	other, _, _ := ed25519.GenerateKey(nil)
	tests := []struct {
		name string
		key  ed25519.PublicKey
		ctx  []byte
		body []byte
		sig  []byte
		want bool
	}{
		{"good", pub, ctxA, body, sig, true},
		{"other context", pub, ctxB, body, sig, false},
		{"other body", pub, ctxA, []byte("bodz"), sig, false},
		{"other key", other, ctxA, body, sig, false},
		{"short signature", pub, ctxA, body, sig[:10], false},
		{"short key", pub[:5], ctxA, body, sig, false},
		{"context moved into body", pub, []byte("kind-a-v1"), append([]byte{0}, body...), sig, true}, // same bytes signed: contexts end in NUL for this reason
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Verify(tt.key, tt.ctx, tt.body, tt.sig); got != tt.want {
				t.Fatalf("Verify = %v, want %v", got, tt.want)
			}
		})
	}
	// Signed never writes into the context's backing array.
	ctx := make([]byte, 3, 16)
	copy(ctx, "abc")
	m1 := Signed(ctx, []byte("1"))
	m2 := Signed(ctx, []byte("2"))
	if string(m1) != "abc1" || string(m2) != "abc2" {
		t.Fatalf("Signed aliased: %q %q", m1, m2)
	}
}

func TestAppendSignature(t *testing.T) {
	sig := bytes.Repeat([]byte{7}, ed25519.SignatureSize)
	b, err := AppendSignature([]byte("body"), sig, "test", errTest)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(b, errTest)
	r.Take(4, "body")
	if got := r.Bytes16("signature", ed25519.SignatureSize); !bytes.Equal(got, sig) {
		t.Fatalf("signature read back %x", got)
	}
	r.End("record")
	if r.Err() != nil {
		t.Fatal(r.Err())
	}
	if _, err := AppendSignature(nil, sig[:63], "test", errTest); !errors.Is(err, errTest) {
		t.Fatalf("short signature: %v", err)
	}
}
