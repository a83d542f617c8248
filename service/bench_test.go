package service_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/service"
	"github.com/pikcio/pikcio/service/servicetest"
)

// sourceServer answers a big-endian u64 n with n bytes.
func sourceServer(b *testing.B) string {
	addr, _ := testutil.Serve(b, func(c net.Conn) {
		var n [8]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return
		}
		buf := make([]byte, 64<<10)
		for left := binary.BigEndian.Uint64(n[:]); left > 0; {
			k := min(left, uint64(len(buf)))
			if _, err := c.Write(buf[:k]); err != nil {
				return
			}
			left -= k
		}
	})
	return addr.String()
}

func firstByte(b *testing.B, ctx context.Context, d *service.Dialer, addr service.Address) {
	c, err := d.Dial(ctx, addr, 80)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var one [8]byte
	binary.BigEndian.PutUint64(one[:], 1)
	if _, err := c.Write(one[:]); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(c, one[:1]); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkServiceFirstByte: time from Dial to the first byte of the
// service's answer, on loopback through 3-hop circuits on both sides.
// cold: no descriptor cached and no joined circuit (fetch, rendezvous
// circuit, intro circuit, INTRODUCE, the service's circuit, join); warm:
// a new stream on the joined circuit.
func BenchmarkServiceFirstByte(b *testing.B) {
	net := servicetest.New(b, 6)
	h := benchHost(b, net, sourceServer(b))
	cb := net.NewBuilder(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			d := service.NewDialer(service.DialerOptions{Builder: cb, Store: net.Store})
			firstByte(b, ctx, d, h.Address())
			_ = d.Close()
		}
		b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/first-byte")
	})
	b.Run("warm", func(b *testing.B) {
		b.ReportAllocs()
		d := service.NewDialer(service.DialerOptions{Builder: cb, Store: net.Store})
		defer d.Close()
		firstByte(b, ctx, d, h.Address())
		b.ResetTimer()
		for b.Loop() {
			firstByte(b, ctx, d, h.Address())
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/first-byte")
	})
}

// BenchmarkServiceBulk: 64 MiB from the service to the client through the
// joined circuits (3 hops each side, 6 layers of relay crypto plus the
// virtual hop's at each end), on loopback.
func BenchmarkServiceBulk(b *testing.B) {
	const size = 64 << 20
	net := servicetest.New(b, 6)
	h := benchHost(b, net, sourceServer(b))
	d := service.NewDialer(service.DialerOptions{Builder: net.NewBuilder(b), Store: net.Store})
	b.Cleanup(func() { _ = d.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ReportAllocs()
	b.SetBytes(size)
	for b.Loop() {
		c, err := d.Dial(ctx, h.Address(), 80)
		if err != nil {
			b.Fatal(err)
		}
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], size)
		if _, err := c.Write(n[:]); err != nil {
			b.Fatal(err)
		}
		got, err := io.Copy(io.Discard, c)
		_ = c.Close()
		if err != nil || got != size {
			b.Fatalf("read %d of %d bytes: %v", got, size, err)
		}
	}
	b.ReportMetric(float64(size)*float64(b.N)/(1<<20)/b.Elapsed().Seconds(), "MiB/s")
}

func benchHost(b *testing.B, net *servicetest.Network, target string) *service.Host {
	b.Helper()
	id, err := service.NewIdentity(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	h, err := service.NewHost(id, service.HostOptions{Builder: net.NewBuilder(b), Store: net.Store, Target: target})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = h.Close() })
	testutil.WaitFor(b, time.Minute, "descriptor published", func() bool { return !h.Status().Published.IsZero() })
	return h
}
