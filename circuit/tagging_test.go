package circuit

import (
	"bytes"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// TestTaggingGarbledAtNextHop is the tagging attack of issue 14: a guard
// XORs a pattern into the tag (where the exit's authenticator will be) of
// one forward cell, and a colluding exit, which knows the authenticator it
// expects, looks for the pattern once its layer is off and XORs it back.
// With counter-mode layers the exit saw the pattern and the stream went on
// intact, confirming that both ends were on the same circuit. With the
// wide-block layers the middle hop garbles the whole cell: the exit never
// sees the pattern and destroys the circuit for integrity.
func TestTaggingGarbledAtNextHop(t *testing.T) {
	pattern := [2]byte{0xa5, 0x5a}
	n := newTestNet(t, netOpts{})
	echo, _ := echoServer(t)
	var armed, tagged, seen atomic.Bool
	n.relays[0].tap = func(fwd bool, cell []byte) {
		if fwd && armed.CompareAndSwap(true, false) {
			cell[1+offTag] ^= pattern[0]
			cell[1+offTag+1] ^= pattern[1]
			tagged.Store(true)
		}
	}
	n.relays[2].peek = func(body, want []byte) {
		if body[offTag]^want[0] == pattern[0] && body[offTag+1]^want[1] == pattern[1] {
			body[offTag] ^= pattern[0]
			body[offTag+1] ^= pattern[1]
			seen.Store(true)
		}
	}
	failed := make(chan error, 1)
	n.client.opts.OnFailure = func(_ []Hop, err error) { failed <- err }
	c := n.build(t, 0, 1, 2)
	s := openStream(t, c, "127.0.0.1", echo)
	armed.Store(true)
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	go func() {
		_, _ = s.Write(randBytes(t, 64<<10))
		_ = s.(interface{ CloseWrite() error }).CloseWrite()
	}()
	_, _ = io.ReadAll(s)
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("circuit still open after tagging")
	}
	if !tagged.Load() {
		t.Fatal("the guard tagged no cell")
	}
	if seen.Load() {
		t.Error("the colluding exit saw the guard's pattern")
	}
	var de *DestroyedError
	if !errors.As(c.Err(), &de) || de.Reason != DestroyIntegrity {
		t.Fatalf("circuit error %v, want destroyed for integrity", c.Err())
	}
	// The failure after build reaches the client's owner, as one that
	// counts against the guard (discovery's path bias).
	select {
	case err := <-failed:
		if !PathBiasFailure(err) {
			t.Fatalf("failure %v not counted for path bias", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnFailure not called")
	}
}

// TestWideLayerGarblesEverything: changing any byte of a wrapped body
// changes, after open, about half the bits of the whole body, and every
// later body through the same layer too (the chain).
func TestWideLayerGarblesEverything(t *testing.T) {
	for _, pos := range []int{0, 1, 15, 16, 17, 200, offTag - 1, offTag, bodyLen - 1} {
		var k hopKeys
		copy(k.f.tbc[:], randBytes(t, 32))
		copy(k.f.enc[:], randBytes(t, 32))
		copy(k.f.tweak[:], randBytes(t, 32))
		a, _ := newLayer(k) // the client's side
		b, _ := newLayer(k) // the relay's
		plain := make([]byte, bodyLen)
		for i := 0; i < 2; i++ {
			body := append([]byte(nil), plain...)
			a.fwd.wrap(body)
			if i == 0 {
				body[pos] ^= 1
			}
			b.fwd.open(body)
			for _, part := range [][]byte{body[:offTag], body[offTag:]} {
				ones := 0
				for _, x := range part {
					for ; x != 0; x &= x - 1 {
						ones++
					}
				}
				if n := 8 * len(part); ones < n/4 || ones > 3*n/4 {
					t.Errorf("byte %d flipped, cell %d: %d of %d bits set after open, want about half", pos, i, ones, n)
				}
			}
		}
	}
}

// TestWideLayerRoundTrip: with random keys, opening undoes wrapping for a
// run of cells (the two ends' chains stay in step, and the hash open
// computes from additional data is the one wrap got from its ciphertext),
// the hop recognizes what its end sealed, in order, and nothing else: not
// another layer's cell, not a replayed one.
func TestWideLayerRoundTrip(t *testing.T) {
	keys := func() hopKeys {
		var k hopKeys
		k.f.load(randBytes(t, dirKeyLen))
		k.b.load(randBytes(t, dirKeyLen))
		return k
	}
	k := keys()
	client, _ := newLayer(k)
	relay, _ := newLayer(k)
	other, _ := newLayer(keys())
	var sent [][]byte
	for i := 0; i < 20; i++ {
		plain := relayBody(relayData, 1, randBytes(t, i*200))
		body := append([]byte(nil), plain...)
		client.fwd.seal(body)
		sent = append(sent, append([]byte(nil), body...))
		relay.fwd.open(body)
		if !bytes.Equal(body[:offTag], plain[:offTag]) {
			t.Fatalf("cell %d: open(wrap(x)) != x", i)
		}
		if !relay.fwd.recognize(body) {
			t.Fatalf("cell %d not recognized", i)
		}
		// Backward: wrapped by a hop on the way, opened by the client.
		body = append(body[:0], plain...)
		relay.bwd.wrap(body)
		client.bwd.open(body)
		if !bytes.Equal(body, plain) {
			t.Fatalf("cell %d backward: open(wrap(x)) != x", i)
		}
	}
	foreign := relayBody(relayData, 1, nil)
	other.fwd.seal(foreign)
	relay.fwd.open(foreign)
	if relay.fwd.recognize(foreign) {
		t.Error("cell sealed under other keys recognized")
	}
	fresh, _ := newLayer(k) // a relay in step with the client's first cell
	for i, c := range sent {
		body := append([]byte(nil), c...)
		fresh.fwd.open(body)
		if !fresh.fwd.recognize(body) {
			t.Fatalf("cell %d not recognized in order", i)
		}
	}
	replay := append([]byte(nil), sent[len(sent)-1]...)
	fresh.fwd.open(replay)
	if fresh.fwd.recognize(replay) {
		t.Error("replayed cell recognized")
	}
}
