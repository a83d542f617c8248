package circuit

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

// FuzzWideLayer: whatever body arrives from the network, removing a layer
// and checking its tag never panics, and wrapping what was opened gives
// the body back (both ends stay in step through the chain) until a body
// changes.
func FuzzWideLayer(f *testing.F) {
	f.Add(make([]byte, bodyLen), []byte{1})
	f.Add(relayBody(relayData, 1, []byte("hello")), []byte{0, 7, 200})
	f.Fuzz(func(t *testing.T, seed, keys []byte) {
		body := make([]byte, bodyLen)
		copy(body, seed)
		var k hopKeys
		k.f.load(append(keys, make([]byte, dirKeyLen)...)[:dirKeyLen])
		relay, err := newLayer(k)
		if err != nil {
			t.Fatal(err)
		}
		client, _ := newLayer(k)
		for i := 0; i < 3; i++ {
			orig := append([]byte(nil), body...)
			relay.fwd.open(body)
			relay.fwd.recognize(body)
			_, _ = decodeRelay(body)
			client.fwd.wrap(body)
			if !bytes.Equal(body, orig) {
				t.Fatalf("cell %d: wrap(open(x)) != x", i)
			}
			body[i] ^= 0x80
		}
	})
}

// FuzzDialableAddr: an address from an EXTEND or a descriptor, however
// made, is judged without a panic, and never allowed on a public relay
// when it is not an IP address with TCP or QUIC.
func FuzzDialableAddr(f *testing.F) {
	for _, s := range []string{"/ip4/8.8.8.8/tcp/1", "/ip4/127.0.0.1/tcp/1/ws", "/dns4/localhost/tcp/80", "/ip6/::1/udp/1/quic-v1", "/ip4/1.1.1.1/udp/1/quic-v1/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"} {
		f.Add(ma.StringCast(s).Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := ma.NewMultiaddrBytes(b)
		if err != nil {
			return
		}
		pub := DialableAddr(a, false)
		priv := DialableAddr(a, true)
		if pub && !priv {
			t.Fatalf("%s allowed publicly but not privately", a)
		}
		if pub {
			for _, c := range a {
				switch c.Code() {
				case ma.P_IP4, ma.P_IP6, ma.P_TCP, ma.P_UDP, ma.P_QUIC_V1, ma.P_P2P:
				default:
					t.Fatalf("%s allowed with /%s", a, c.Protocol().Name)
				}
			}
		}
	})
}

// openCTR is open as protocol /2 defines it, with cipher.NewCTR for the
// keystream: the reference that open's GCM-keystream shortcut must match
// byte for byte, so that peers of either build interoperate.
func openCTR(w *wideLayer, body []byte) {
	n := len(body) - tagLen
	c, tag := body[:n], body[n:]
	var h, j [aes.BlockSize]byte
	w.gcm.Seal(h[:0], zeroNonce[:], nil, c)
	w.tw.Encrypt(j[:], w.chain[:])
	xor16(h[:], h[:], w.fix[:])
	xor16(h[:], h[:], j[:])
	xor16(tag, tag, h[:])
	w.tbc.Decrypt(tag, tag)
	xor16(tag, tag, h[:])
	var iv [aes.BlockSize]byte
	copy(iv[:], tag[:gcmNonceLen])
	iv[aes.BlockSize-1] = 2
	cipher.NewCTR(w.enc, iv[:]).XORKeyStream(c, c)
	copy(w.chain[:], tag)
}

// TestOpenMatchesCTR: open gives the same bodies and chain as the
// reference over a run of cells, sealed ones and then arbitrary ones.
func TestOpenMatchesCTR(t *testing.T) {
	var k hopKeys
	seed := make([]byte, dirKeyLen)
	for i := range seed {
		seed[i] = byte(i * 7)
	}
	k.f.load(seed)
	sender, _ := newLayer(k)
	got, _ := newLayer(k)
	want, _ := newLayer(k)
	for i := range 20 {
		body := relayBody(relayData, uint16(i), bytes.Repeat([]byte{byte(i)}, i*100))
		arbitrary := i >= 15 // after these the chains differ from the sender's
		if arbitrary {
			for j := range body {
				body[j] = byte(i*31 + j*17)
			}
		} else {
			sender.fwd.seal(body)
		}
		b2 := append([]byte(nil), body...)
		got.fwd.open(body)
		openCTR(want.fwd, b2)
		if !bytes.Equal(body, b2) || got.fwd.chain != want.fwd.chain {
			t.Fatalf("cell %d: open differs from the CTR reference", i)
		}
		if !arbitrary && !got.fwd.recognize(body) {
			t.Fatalf("cell %d: a sealed cell not recognized", i)
		}
	}
}
