package circuit

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

func relayBody(cmd byte, stream uint16, data []byte) []byte {
	b := make([]byte, bodyLen)
	encodeRelay(b, cmd, stream, data)
	return b
}

func FuzzDecodeRelay(f *testing.F) {
	f.Add(relayBody(relayData, 1, []byte("hello")))
	f.Add(relayBody(relayBegin, 7, []byte{0, 80, 9, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't'}))
	f.Add(relayBody(relaySendme, 0, nil))
	f.Add(relayBody(relayExtend, 0, []byte{1, 2, 3}))
	f.Add(relayBody(relayEnd, 3, []byte{2}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) < bodyLen {
			body = append(body, make([]byte, bodyLen-len(body))...)
		}
		body = body[:bodyLen]
		m, err := decodeRelay(body)
		if err != nil {
			return
		}
		if len(m.data) > MaxCellData || m.cmd == 0 || m.cmd > relayMaxCmd {
			t.Fatalf("accepted %+v", m)
		}
		again := relayBody(m.cmd, m.stream, m.data)
		if !bytes.Equal(again[offCmd:relayHdrLen+len(m.data)], body[offCmd:relayHdrLen+len(m.data)]) {
			t.Fatal("re-encoding differs")
		}
	})
}

func FuzzDecodeBegin(f *testing.F) {
	for _, b := range []beginMsg{{"localhost", 80}, {"127.0.0.1", 443}, {"[::1]", 8080}, {"only-at-exit.test", 1}} {
		p, _ := b.encode()
		f.Add(p)
	}
	f.Add([]byte{0, 80, 9, 'x'})
	f.Add([]byte{0, 0, 1, 'x'})
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := decodeBegin(p)
		if err != nil {
			return
		}
		enc, err := b.encode()
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", b, err)
		}
		if !bytes.Equal(enc, p) {
			t.Fatalf("round trip %x -> %x", p, enc)
		}
	})
}

func fuzzPeer(f *testing.F) peer.ID {
	id, err := peer.Decode("12D3KooWFemxKNnqxawx8Qs5rnxbNdqe32vkRUsXKax3ThKsS7xD")
	if err != nil {
		f.Fatal(err)
	}
	return id
}

func FuzzDecodeExtend(f *testing.F) {
	id := fuzzPeer(f)
	a1 := ma.StringCast("/ip4/127.0.0.1/tcp/4001")
	a2 := ma.StringCast("/ip4/127.0.0.1/udp/4001/quic-v1")
	for _, e := range []extendMsg{
		{peer: id, addrs: []ma.Multiaddr{a1, a2}, handshake: make([]byte, createLen)},
		{peer: id, handshake: []byte{1}},
	} {
		p, err := e.encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, p []byte) {
		e, err := decodeExtend(p)
		if err != nil {
			return
		}
		enc, err := e.encode()
		if err != nil {
			t.Fatalf("decoded extend does not encode: %v", err)
		}
		e2, err := decodeExtend(enc)
		if err != nil || e2.peer != e.peer || len(e2.addrs) != len(e.addrs) || !bytes.Equal(e2.handshake, e.handshake) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

// FuzzServerHandshake feeds CREATE payloads to the relay's side.
func FuzzServerHandshake(f *testing.F) {
	id := fuzzPeer(f)
	key, _ := ecdh.X25519().GenerateKey(rand.Reader)
	var pub [32]byte
	copy(pub[:], key.PublicKey().Bytes())
	now := time.Unix(1_800_000_000, 0)
	hs, _ := newClientHandshake(id, pub, now)
	f.Add(hs.msg)
	f.Add(make([]byte, createLen))
	f.Add([]byte{0, 1})
	f.Fuzz(func(t *testing.T, msg []byte) {
		lookup := func(b []byte) *ecdhKey {
			if bytes.Equal(b, pub[:]) {
				return key
			}
			return nil
		}
		reply, _, err := serverHandshake(id, msg, lookup, newReplayCache(time.Hour, 16), now)
		if err == nil && len(reply) != createdLen {
			t.Fatalf("reply of %d bytes", len(reply))
		}
	})
}

// FuzzClientFinish feeds CREATED payloads to the client's side.
func FuzzClientFinish(f *testing.F) {
	id := fuzzPeer(f)
	key, _ := ecdh.X25519().GenerateKey(rand.Reader)
	var pub [32]byte
	copy(pub[:], key.PublicKey().Bytes())
	hs, _ := newClientHandshake(id, pub, time.Now())
	reply, _, err := serverHandshake(id, hs.msg, func([]byte) *ecdhKey { return key }, newReplayCache(time.Hour, 16), time.Now())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(reply)
	f.Add(make([]byte, createdLen))
	f.Fuzz(func(t *testing.T, p []byte) {
		_, err := hs.finish(p)
		if err == nil && !bytes.Equal(p, reply) {
			t.Fatal("a reply other than the relay's was accepted")
		}
	})
}

// FuzzReadBatch checks the link framing: whatever arrives, a batch is whole
// cells or an error.
func FuzzReadBatch(f *testing.F) {
	f.Add(make([]byte, CellSize), 7)
	f.Add(make([]byte, 3*CellSize+5), 100)
	f.Add([]byte{1}, 1)
	f.Fuzz(func(t *testing.T, data []byte, chunk int) {
		if chunk <= 0 {
			chunk = 1
		}
		r := &chunkReader{data: data, chunk: chunk}
		total := 0
		for {
			bp, n, err := readBatch(r)
			if err != nil {
				break
			}
			if n == 0 || n%CellSize != 0 || n > batchCells*CellSize {
				t.Fatalf("batch of %d bytes", n)
			}
			if !bytes.Equal((*bp)[:n], data[total:total+n]) {
				t.Fatal("batch bytes differ from input")
			}
			total += n
			putBatch(bp)
		}
		// With a clean end every cell arrives; a link that ends inside a
		// cell is broken, and the batch around the fragment may be lost.
		want := len(data) / CellSize * CellSize
		if total > want || (len(data)%CellSize == 0 && total != want) {
			t.Fatalf("read %d bytes of cells of %d", total, len(data))
		}
	})
}

type chunkReader struct {
	data  []byte
	off   int
	chunk int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.chunk)], r.data[r.off:])
	r.off += n
	return n, nil
}
