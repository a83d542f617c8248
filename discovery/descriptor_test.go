package discovery

import (
	"bytes"
	"crypto/rand"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	ma "github.com/multiformats/go-multiaddr"
)

var descriptorErrors = []error{
	ErrTooLarge, ErrVersion, ErrMalformed, ErrSignature, ErrNoPublicKey,
	ErrExpired, ErrNotYetValid, ErrOnionKeyExpired, ErrLifetime, ErrKeyMismatch,
}

// fullDescriptor uses every field of the format.
func fullDescriptor(t testing.TB, priv crypto.PrivKey, now time.Time) (*Descriptor, []byte) {
	return signedDescriptor(t, priv, now, func(d *Descriptor) {
		d.Protocol = 7
		d.Flags = FlagRelay | FlagExit | FlagGuard | 0x80 // an unknown bit is kept
		d.PrevOnionKey = &OnionKey{Key: randKey(), Expires: now.Add(10 * time.Minute)}
		d.Addrs = []ma.Multiaddr{
			mustAddr(t, "/ip4/198.51.100.7/tcp/4001"),
			mustAddr(t, "/ip6/2001:db8::1/udp/4001/quic-v1"),
			mustAddr(t, "/dns4/relay.example/tcp/443"),
		}
		d.ExitPorts = []PortRange{{443, 443}, {80, 81}, {8000, 8080}, {82, 82}}
		d.Extensions = []Extension{{Type: 9, Data: []byte("trust data")}, {Type: 1, Data: []byte{1, 2, 3}}, {Type: 4}}
	})
}

func TestDescriptorRoundTrip(t *testing.T) {
	now := time.Now()
	priv := newKey(t)
	for name, mk := range map[string]func() (*Descriptor, []byte){
		"minimal": func() (*Descriptor, []byte) {
			return signedDescriptor(t, priv, now, func(d *Descriptor) { d.Addrs, d.ExitPorts, d.Flags = nil, nil, FlagRelay })
		},
		"full": func() (*Descriptor, []byte) { return fullDescriptor(t, priv, now) },
	} {
		t.Run(name, func(t *testing.T) {
			d, b := mk()
			got, err := DecodeDescriptor(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, d) {
				t.Fatalf("decode(encode(d)) differs:\n got %+v\nwant %+v", got, d)
			}
			again, err := got.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, b) {
				t.Fatal("encode(decode(b)) != b")
			}
			if err := got.Verify(VerifyOptions{Now: now}); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
}

func TestDescriptorFields(t *testing.T) {
	now := time.Now()
	d, _ := fullDescriptor(t, newKey(t), now)
	want := []PortRange{{80, 82}, {443, 443}, {8000, 8080}}
	if !reflect.DeepEqual(d.ExitPorts, want) {
		t.Fatalf("normalized ports %v, want %v", d.ExitPorts, want)
	}
	for _, c := range []struct {
		port uint16
		want bool
	}{{79, false}, {80, true}, {82, true}, {83, false}, {443, true}, {8080, true}, {8081, false}, {0, false}} {
		if got := d.AcceptsPort(c.port); got != c.want {
			t.Errorf("AcceptsPort(%d) = %v, want %v", c.port, got, c.want)
		}
	}
	d.Flags &^= FlagExit
	if d.AcceptsPort(443) {
		t.Error("a relay without the exit flag accepts a port")
	}
	if data, ok := d.Extension(9); !ok || string(data) != "trust data" {
		t.Errorf("extension 9 = %q, %v", data, ok)
	}
	if _, ok := d.Extension(2); ok {
		t.Error("absent extension found")
	}
	if d.Published.Nanosecond() != 0 || d.Published.Location() != time.UTC {
		t.Errorf("published %v not normalized", d.Published)
	}
}

func TestPortSummary(t *testing.T) {
	accepts := func(p uint16) bool { return p == 22 || (p >= 80 && p <= 443) || p == 65535 }
	got := PortSummary(accepts)
	want := []PortRange{{22, 22}, {80, 443}, {65535, 65535}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PortSummary = %v, want %v", got, want)
	}
	if got := PortSummary(func(uint16) bool { return true }); !reflect.DeepEqual(got, []PortRange{{1, 65535}}) {
		t.Fatalf("accept all = %v", got)
	}
	if got := NormalizePorts([]PortRange{{10, 20}, {5, 9}, {30, 25}, {21, 21}, {15, 40}}); !reflect.DeepEqual(got, []PortRange{{5, 40}}) {
		t.Fatalf("NormalizePorts = %v", got)
	}
}

// descriptorCases are the refusal cases; the fuzz target is seeded from them.
func descriptorCases(t testing.TB) []struct {
	name string
	b    []byte
	want error
} {
	now := time.Now()
	priv, other := newKey(t), newKey(t)
	_, valid := fullDescriptor(t, priv, now)

	forged, _ := signedDescriptor(t, priv, now, nil)
	forgedBytes, err := forged.signWith(other) // priv's peer ID, other's signature
	if err != nil {
		t.Fatal(err)
	}
	_, expired := signedDescriptor(t, priv, now.Add(-2*time.Hour), nil)
	_, future := signedDescriptor(t, priv, now.Add(time.Hour), nil)
	_, keyExpired := signedDescriptor(t, priv, now.Add(-30*time.Minute), func(d *Descriptor) {
		d.OnionKey.Expires = now.Add(-time.Minute)
	})
	_, eternal := signedDescriptor(t, priv, now, func(d *Descriptor) {
		d.Expires = now.Add(MaxLifetime + time.Hour)
		d.OnionKey.Expires = d.Expires
	})
	rsa, _, err := crypto.GenerateRSAKeyPair(2048, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, hashedID := signedDescriptor(t, rsa, now, nil)

	oversize := make([]byte, MaxDescriptorSize+1)
	copy(oversize, valid)
	wrongVersion := bytes.Clone(valid)
	wrongVersion[0] = FormatVersion + 1
	trailing := append(bytes.Clone(valid), 0)
	badPrevMarker := bytes.Clone(valid)
	// The marker follows version, protocol, flags, the peer ID and 3 times
	// and the onion key.
	badPrevMarker[1+2+1+2+len(forged.PeerID)+8+8+32+8] = 2

	return []struct {
		name string
		b    []byte
		want error
	}{
		{"valid", valid, nil},
		{"forged", forgedBytes, ErrSignature},
		{"expired", expired, ErrExpired},
		{"future", future, ErrNotYetValid},
		{"onion key expired", keyExpired, ErrOnionKeyExpired},
		{"lifetime too long", eternal, ErrLifetime},
		{"hashed peer ID", hashedID, ErrNoPublicKey},
		{"oversize", oversize, ErrTooLarge},
		{"wrong version", wrongVersion, ErrVersion},
		{"empty", nil, ErrMalformed},
		{"truncated", valid[:len(valid)-1], ErrMalformed},
		{"trailing byte", trailing, ErrMalformed},
		{"previous key marker", badPrevMarker, ErrMalformed},
	}
}

func TestVerifyDescriptor(t *testing.T) {
	now := time.Now()
	for _, c := range descriptorCases(t) {
		t.Run(c.name, func(t *testing.T) {
			_, err := VerifyDescriptor(c.b, VerifyOptions{Now: now, MaxSkew: DefaultMaxSkew})
			if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			for _, other := range descriptorErrors {
				if other != c.want && errors.Is(err, other) {
					t.Fatalf("error %v also matches %v", err, other)
				}
			}
		})
	}
}

// TestDescriptorTampered flips each byte of a valid descriptor in turn:
// every change is refused.
func TestDescriptorTampered(t *testing.T) {
	now := time.Now()
	_, b := fullDescriptor(t, newKey(t), now)
	for i := range b {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			c := bytes.Clone(b)
			c[i] ^= mask
			_, err := VerifyDescriptor(c, VerifyOptions{Now: now, MaxSkew: DefaultMaxSkew})
			if err == nil {
				t.Fatalf("byte %d ^ %#x accepted", i, mask)
			}
			known := false
			for _, e := range descriptorErrors {
				known = known || errors.Is(err, e)
			}
			if !known {
				t.Fatalf("byte %d ^ %#x: error without sentinel: %v", i, mask, err)
			}
		}
	}
}

func TestDescriptorNotCanonical(t *testing.T) {
	now := time.Now()
	priv := newKey(t)
	cases := map[string]func(*Descriptor){
		"overlapping ports":      func(d *Descriptor) { d.ExitPorts = []PortRange{{1, 10}, {5, 20}} },
		"adjacent ports":         func(d *Descriptor) { d.ExitPorts = []PortRange{{1, 10}, {11, 20}} },
		"unsorted ports":         func(d *Descriptor) { d.ExitPorts = []PortRange{{30, 40}, {1, 10}} },
		"unsorted extensions":    func(d *Descriptor) { d.Extensions = []Extension{{Type: 2}, {Type: 1}} },
		"duplicate extension":    func(d *Descriptor) { d.Extensions = []Extension{{Type: 2}, {Type: 2}} },
		"sub-second time":        func(d *Descriptor) { d.Published = d.Published.Add(time.Millisecond) },
		"too many addresses":     func(d *Descriptor) { d.Addrs = make([]ma.Multiaddr, maxAddrs+1) },
		"extension over the cap": func(d *Descriptor) { d.Extensions = []Extension{{Type: 1, Data: make([]byte, MaxDescriptorSize)}} },
	}
	for name, mod := range cases {
		t.Run(name, func(t *testing.T) {
			d, _ := signedDescriptor(t, priv, now, nil)
			mod(d)
			if _, err := d.Encode(); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Encode of a non-canonical descriptor: %v", err)
			}
		})
	}
	t.Run("sign normalizes", func(t *testing.T) {
		d, _ := signedDescriptor(t, priv, now, func(d *Descriptor) {
			d.ExitPorts = []PortRange{{30, 40}, {1, 10}, {11, 12}}
			d.Extensions = []Extension{{Type: 2}, {Type: 1, Data: []byte{}}}
		})
		if !reflect.DeepEqual(d.ExitPorts, []PortRange{{1, 12}, {30, 40}}) || d.Extensions[0].Type != 1 || d.Extensions[0].Data != nil {
			t.Fatalf("not normalized: %v %v", d.ExitPorts, d.Extensions)
		}
	})
	t.Run("sign with another key", func(t *testing.T) {
		d, _ := signedDescriptor(t, priv, now, nil)
		if _, err := d.Sign(newKey(t)); !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("got %v", err)
		}
	})
}

func TestValidator(t *testing.T) {
	now := time.Now()
	priv, other := newKey(t), newKey(t)
	v := validator{now: func() time.Time { return now }, maxSkew: DefaultMaxSkew}
	d1, old := signedDescriptor(t, priv, now.Add(-10*time.Minute), nil)
	_, cur := signedDescriptor(t, priv, now.Add(-time.Minute), nil)
	_, expired := signedDescriptor(t, priv, now.Add(-2*time.Hour), nil)
	_, othersDesc := signedDescriptor(t, other, now, nil)
	key := DescriptorKey(d1.PeerID)

	if err := v.Validate(key, cur); err != nil {
		t.Fatalf("valid descriptor: %v", err)
	}
	if err := v.Validate(key, othersDesc); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("descriptor under another peer's key: %v", err)
	}
	if err := v.Validate("/pk/"+string(d1.PeerID), cur); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("wrong namespace: %v", err)
	}
	if err := v.Validate("/"+Namespace+"/notapeer", cur); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("bad peer ID in key: %v", err)
	}
	if err := v.Validate(key, expired); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
	for _, c := range []struct {
		vals [][]byte
		want int
	}{
		{[][]byte{old, cur}, 1},
		{[][]byte{cur, old}, 0},
		{[][]byte{expired, old}, 1},
		{[][]byte{othersDesc, old, expired}, 1},
	} {
		if got, err := v.Select(key, c.vals); err != nil || got != c.want {
			t.Errorf("Select = %d, %v; want %d", got, err, c.want)
		}
	}
	if _, err := v.Select(key, [][]byte{expired, othersDesc}); err == nil {
		t.Error("Select among invalid descriptors succeeded")
	}
}

func FuzzDecodeDescriptor(f *testing.F) {
	for _, c := range descriptorCases(f) {
		f.Add(c.b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDescriptor(b)
		if err != nil {
			return
		}
		_ = d.Verify(VerifyOptions{Now: time.Now()})
		enc, err := d.Encode()
		if err != nil {
			t.Fatalf("decoded descriptor does not encode: %v", err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("encoding not unique:\n in %x\nout %x", b, enc)
		}
		d2, err := DecodeDescriptor(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(d, d2) {
			t.Fatal("decode(encode(decode(b))) != decode(b)")
		}
	})
}
