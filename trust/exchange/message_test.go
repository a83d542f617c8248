package exchange

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

var (
	seedOnce sync.Once
	seeds    struct {
		hellos, replies [][]byte
	}
)

// seedMessages returns valid encodings made with real certificates:
// hellos with and without a node, and replies.
func seedMessages(t testing.TB) (hellos, replies [][]byte) {
	t.Helper()
	seedOnce.Do(func() {
		tt := newTestTIS(t)
		u := tt.enroll(t, "seed")
		a, b := peer.ID("accepter"), peer.ID("inviter")
		for _, withNode := range []bool{true, false} {
			p := part{MCert: u.self.MatryoshkaCert}
			if withNode {
				p.NCert = u.self.NodeCert
			}
			tr, err := helloTranscript(a, b, [32]byte{1}, &p)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.sign(u.self, u.nodeKey, []byte("key"), tr); err != nil {
				t.Fatal(err)
			}
			h, err := (&hello{Tag: [32]byte{1}, part: p}).encode()
			if err != nil {
				t.Fatal(err)
			}
			r, err := (&reply{Code: codeOK, part: p}).encode()
			if err != nil {
				t.Fatal(err)
			}
			seeds.hellos = append(seeds.hellos, h)
			seeds.replies = append(seeds.replies, r)
		}
		for code := range codeErrors {
			r, err := (&reply{Code: code}).encode()
			if err != nil {
				t.Fatal(err)
			}
			seeds.replies = append(seeds.replies, r)
		}
	})
	if seeds.hellos == nil {
		t.Fatal("no seed messages")
	}
	return seeds.hellos, seeds.replies
}

func TestCodec(t *testing.T) {
	hellos, replies := seedMessages(t)
	withNode, noNode, okReply := hellos[0], hellos[1], replies[0]
	mutate := func(b []byte, f func([]byte) []byte) []byte { return f(slices.Clone(b)) }
	// offset of the node signature length in noNode: version, tag, mcert.
	mcertLen := int(binary.BigEndian.Uint16(noNode[33:]))
	nodeSigAt := 33 + 2 + mcertLen + 2

	for _, tc := range []struct {
		name  string
		hello bool
		in    []byte
		ok    bool
	}{
		{"hello with node", true, withNode, true},
		{"hello without node", true, noNode, true},
		{"empty hello", true, nil, false},
		{"hello of another version", true, mutate(withNode, func(b []byte) []byte { b[0] = version + 1; return b }), false},
		{"hello with a service card", true, mutate(noNode, func(b []byte) []byte {
			return slices.Concat(b[:nodeSigAt+2], []byte{0, 64}, bytes.Repeat([]byte{7}, 64), b[nodeSigAt+4:])
		}), true},
		{"service card of 10 bytes", true, mutate(noNode, func(b []byte) []byte {
			return slices.Concat(b[:nodeSigAt+2], []byte{0, 10}, make([]byte, 10), b[nodeSigAt+4:])
		}), false},
		{"hello truncated", true, withNode[:len(withNode)-1], false},
		{"hello with trailing byte", true, append(slices.Clone(withNode), 0), false},
		{"hello over the cap", true, make([]byte, MaxHelloSize+1), false},
		{"node signature without node certificate", true, mutate(noNode, func(b []byte) []byte {
			return slices.Concat(b[:nodeSigAt-2], []byte{0, 64}, make([]byte, 64), b[nodeSigAt:])
		}), false},
		{"damaged certificate", true, mutate(withNode, func(b []byte) []byte { b[33+2] = 9; return b }), false},
		{"reply OK", false, okReply, true},
		{"reply OK without node", false, replies[1], true},
		{"reply unknown", false, []byte{codeUnknown}, true},
		{"reply code with trailing bytes", false, []byte{codeUnknown, 0}, false},
		{"reply unknown code", false, []byte{200}, false},
		{"empty reply", false, nil, false},
		{"reply OK truncated", false, okReply[:len(okReply)-5], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			var back []byte
			if tc.hello {
				var m *hello
				if m, err = decodeHello(tc.in); err == nil {
					back, err = m.encode()
				}
			} else {
				var m *reply
				if m, err = decodeReply(tc.in); err == nil {
					back, err = m.encode()
				}
			}
			if tc.ok {
				if err != nil {
					t.Fatalf("decode: %v", err)
				}
				if !bytes.Equal(back, tc.in) {
					t.Fatal("re-encoding differs")
				}
				return
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode: %v, want ErrMalformed", err)
			}
		})
	}
}

func TestFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
		ok   bool
	}{
		{"empty body", []byte{0, 0}, []byte{}, true},
		{"body", []byte{0, 2, 7, 8, 9}, []byte{7, 8}, true},
		{"over the cap", []byte{0, 11}, nil, false},
		{"short body", []byte{0, 3, 1}, nil, false},
		{"short length", []byte{0}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readFrame(bytes.NewReader(tc.in), 10)
			if (err == nil) != tc.ok || !bytes.Equal(got, tc.want) {
				t.Fatalf("readFrame = %v, %v", got, err)
			}
		})
	}
	var buf bytes.Buffer
	if err := writeFrame(&buf, []byte("abc")); err != nil {
		t.Fatal(err)
	}
	if got, err := readFrame(&buf, 3); err != nil || string(got) != "abc" {
		t.Fatalf("round trip %q, %v", got, err)
	}
	if err := writeFrame(&buf, make([]byte, 1<<16)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversized frame: %v", err)
	}
}

// FuzzDecodeHello and FuzzDecodeReply check that the decoders never panic
// and accept only canonical encodings.
func FuzzDecodeHello(f *testing.F) {
	hellos, _ := seedMessages(f)
	for _, h := range hellos {
		f.Add(h)
	}
	f.Add([]byte{version})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeHello(b)
		if err != nil {
			return
		}
		back, err := m.encode()
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("decoded hello does not re-encode to its input: %v", err)
		}
	})
}

func FuzzDecodeReply(f *testing.F) {
	_, replies := seedMessages(f)
	for _, r := range replies {
		f.Add(r)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeReply(b)
		if err != nil {
			return
		}
		back, err := m.encode()
		if err != nil || !bytes.Equal(back, b) {
			t.Fatalf("decoded reply does not re-encode to its input: %v", err)
		}
	})
}
