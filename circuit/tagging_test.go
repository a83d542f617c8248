package circuit

import (
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"
)

// TestTaggingGarbledAtNextHop is the tagging attack of issue 14: a guard
// XORs a pattern into the recognized field of one forward cell, and a
// colluding exit looks for the pattern once its layer is off and XORs it
// back. With counter-mode layers the exit saw the pattern and the stream
// went on intact, confirming that both ends were on the same circuit. With
// the wide-block layers the middle hop garbles the whole cell: the exit
// never sees the pattern and destroys the circuit for integrity.
func TestTaggingGarbledAtNextHop(t *testing.T) {
	pattern := [2]byte{0xa5, 0x5a}
	n := newTestNet(t, netOpts{})
	echo, _ := echoServer(t)
	var armed, tagged, seen atomic.Bool
	n.relays[0].tap = func(fwd bool, cell []byte) {
		if fwd && armed.CompareAndSwap(true, false) {
			cell[1+offRecog] ^= pattern[0]
			cell[1+offRecog+1] ^= pattern[1]
			tagged.Store(true)
		}
	}
	n.relays[2].peek = func(body []byte) {
		if body[offRecog] == pattern[0] && body[offRecog+1] == pattern[1] {
			body[offRecog] ^= pattern[0]
			body[offRecog+1] ^= pattern[1]
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
	for _, pos := range []int{0, 1, 15, 16, 17, 200, bodyLen - 1} {
		var k hopKeys
		copy(k.f.tbc[:], randBytes(t, 32))
		copy(k.f.ctr[:], randBytes(t, 32))
		copy(k.f.hash[:], randBytes(t, 32))
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
			for _, part := range [][]byte{body[:16], body[16:]} {
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
