package discovery

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// seqValidator accepts 8-byte big-endian numbers under /test-seq/k and
// prefers the highest.
type seqValidator struct{}

var errBadSeq = errors.New("bad sequence record")

func (seqValidator) Validate(key string, v []byte) error {
	if key != "/test-seq/k" || len(v) != 8 {
		return errBadSeq
	}
	return nil
}

func (s seqValidator) Select(key string, vs [][]byte) (int, error) {
	best := -1
	for i, v := range vs {
		if s.Validate(key, v) == nil && (best < 0 || binary.BigEndian.Uint64(v) > binary.BigEndian.Uint64(vs[best])) {
			best = i
		}
	}
	if best < 0 {
		return 0, errBadSeq
	}
	return best, nil
}

func seq(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// TestValidatorRecords: a namespace added with Validator travels through
// the DHT with PutRecord/GetRecord; servers refuse invalid and older
// values; the option refuses bad arguments.
func TestValidatorRecords(t *testing.T) {
	ctx := testContext(t, 60*time.Second)
	sh := newHost(t)
	server, err := New(sh, Server(), NoDiscovery(), Validator("test-seq", seqValidator{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	if err := server.Start(ctx); err != nil {
		t.Fatal(err)
	}
	boot, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: sh.ID(), Addrs: sh.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	client := func() *Discovery {
		d, err := New(newHost(t), Bootstrap(boot[:1]...), NoDiscovery(), Validator("test-seq", seqValidator{}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		if err := d.Start(ctx); err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := client(), client()

	if _, err := b.GetRecord(ctx, "/test-seq/k"); !errors.Is(err, routing.ErrNotFound) {
		t.Fatalf("get before put: %v, want routing.ErrNotFound", err)
	}
	if err := a.PutRecord(ctx, "/test-seq/k", seq(5)); err != nil {
		t.Fatal(err)
	}
	if err := a.PutRecord(ctx, "/test-seq/k", []byte("bad")); err == nil {
		t.Fatal("invalid value put")
	}
	if err := a.PutRecord(ctx, "/test-seq/other", seq(9)); err == nil {
		t.Fatal("value under a refused key put")
	}
	// b never held the record: its PUT of an older value reaches the
	// server, which keeps the newer one.
	_ = b.PutRecord(ctx, "/test-seq/k", seq(3))
	c := client()
	v, err := c.GetRecord(ctx, "/test-seq/k")
	if err != nil {
		t.Fatal(err)
	}
	if binary.BigEndian.Uint64(v) != 5 {
		t.Fatalf("got %d, want 5", binary.BigEndian.Uint64(v))
	}

	for _, tc := range []struct {
		ns string
		v  seqValidator
		ok bool
	}{{"", seqValidator{}, false}, {Namespace, seqValidator{}, false}, {"x", seqValidator{}, true}} {
		t.Run(fmt.Sprintf("ns %q", tc.ns), func(t *testing.T) {
			d, err := New(newHost(t), Validator(tc.ns, tc.v))
			if err == nil {
				d.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("New: %v", err)
			}
		})
	}
	if _, err := New(newHost(t), Validator("x", nil)); !errors.Is(err, errOption) {
		t.Fatalf("nil validator: %v", err)
	}
}
