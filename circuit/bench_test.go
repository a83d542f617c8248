package circuit

import (
	"context"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/testutil"
)

// sourceServer writes n bytes to each connection: the first 8 bytes
// from the client give n.
func sourceServer(b testing.TB) uint16 {
	b.Helper()
	addr, _ := testutil.Serve(b, func(c net.Conn) {
		var hdr [8]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		n := int64(0)
		for _, x := range hdr {
			n = n<<8 | int64(x)
		}
		buf := make([]byte, 64<<10)
		for n > 0 {
			k := min(int64(len(buf)), n)
			if _, err := c.Write(buf[:k]); err != nil {
				return
			}
			n -= k
		}
	})
	return uint16(addr.Port)
}

// BenchmarkBulk3Hops downloads through a 3-hop circuit; SetBytes makes
// go test print MB/s.
func BenchmarkBulk3Hops(b *testing.B) {
	n := newTestNet(b, netOpts{})
	port := sourceServer(b)
	c := n.build(b, 0, 1, 2)
	const size = 64 << 20
	b.SetBytes(size)
	b.ReportAllocs()
	buf := make([]byte, 256<<10)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		s, err := c.OpenStream(ctx, "127.0.0.1", port)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		var hdr [8]byte
		v := int64(size)
		for j := 7; j >= 0; j-- {
			hdr[j] = byte(v)
			v >>= 8
		}
		if _, err := s.Write(hdr[:]); err != nil {
			b.Fatal(err)
		}
		got := 0
		for {
			k, err := s.Read(buf)
			got += k
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		_ = s.Close()
		if got != size {
			b.Fatalf("got %d bytes", got)
		}
	}
}

// BenchmarkUpload3Hops sends through a 3-hop circuit to an echo-less sink.
func BenchmarkBuild3Hops(b *testing.B) {
	n := newTestNet(b, netOpts{})
	// Warm the libp2p connections so the figure is the circuit protocol's.
	_ = n.build(b, 0, 1, 2).Close()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c := n.build(b, 0, 1, 2)
		b.StopTimer()
		_ = c.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/build")
}

// BenchmarkRelayCrypto is the per-cell work of a middle relay on a forward
// cell: remove a layer and check whether the cell is recognized.
func BenchmarkRelayCrypto(b *testing.B) {
	benchCells(b, func(l, _ *layer, body []byte) {
		l.fwd.open(body)
		l.fwd.recognize(body)
	})
}

// BenchmarkRelayCryptoBackward is a middle relay's per-cell work on a
// backward cell: add a layer.
func BenchmarkRelayCryptoBackward(b *testing.B) {
	benchCells(b, func(l, _ *layer, body []byte) { l.bwd.wrap(body) })
}

// BenchmarkEdgeCrypto is an edge's per-cell work to send: authenticate and
// add its layer.
func BenchmarkEdgeCrypto(b *testing.B) {
	benchCells(b, func(l, _ *layer, body []byte) { l.bwd.seal(body) })
}

// BenchmarkEdgeCryptoRoundTrip is both edges' per-cell work for one hop:
// one end seals, the other opens and recognizes.
func BenchmarkEdgeCryptoRoundTrip(b *testing.B) {
	benchCells(b, func(snd, rcv *layer, body []byte) {
		snd.bwd.seal(body)
		rcv.bwd.open(body)
		if !rcv.bwd.recognize(body) {
			b.Fatal("not recognized")
		}
	})
}

// benchCells runs step on one body per iteration, with the two ends of a
// hop's layer, and reports ns/cell.
func benchCells(b *testing.B, step func(a, z *layer, body []byte)) {
	var k hopKeys
	a, err := newLayer(k)
	if err != nil {
		b.Fatal(err)
	}
	z, _ := newLayer(k)
	body := make([]byte, bodyLen)
	b.SetBytes(CellSize)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		step(a, z, body)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/cell")
}

func heapNow() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}

// BenchmarkIdleCircuitMemory measures memory per idle circuit at the relays:
// it builds many 2-hop circuits and divides the growth of the whole
// process (client, both relays) by the circuits and the relay count,
// after subtracting the client's share measured on its own.
func BenchmarkIdleCircuitMemory(b *testing.B) {
	n := newTestNet(b, netOpts{relays: 2, relay: RelayOptions{HandshakesPerSecond: 1e6, HandshakeBurst: 1e6}})
	_ = n.build(b, 0, 1).Close()
	const count = 500
	for i := 0; i < b.N; i++ {
		before := heapNow()
		circs := make([]*Circuit, 0, count)
		for j := 0; j < count; j++ {
			circs = append(circs, n.build(b, 0, 1))
		}
		after := heapNow()
		var relayOnly uint64
		for _, r := range n.relays {
			relayOnly += uint64(r.Stats().Circuits)
		}
		perCirc := float64(after-before) / count
		b.ReportMetric(perCirc/1024, "KiB/circuit(all)")
		b.ReportMetric(float64(after-before)/float64(relayOnly)/1024, "KiB/relay-circuit-upper")
		for _, c := range circs {
			_ = c.Close()
		}
		for _, r := range n.relays {
			for r.Stats().Circuits > 0 {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
}

// BenchmarkIdleStreamMemory measures memory per idle stream at the client
// and exit together.
func BenchmarkIdleStreamMemory(b *testing.B) {
	n := newTestNet(b, netOpts{})
	port, _ := echoServer(b)
	c := n.build(b, 0, 1, 2)
	const count = 500
	for i := 0; i < b.N; i++ {
		before := heapNow()
		streams := make([]net.Conn, 0, count)
		for j := 0; j < count; j++ {
			s, err := c.OpenStream(context.Background(), "127.0.0.1", port)
			if err != nil {
				b.Fatal(err)
			}
			streams = append(streams, s)
		}
		after := heapNow()
		b.ReportMetric(float64(after-before)/count/1024, "KiB/stream(client+exit+server)")
		for _, s := range streams {
			_ = s.Close()
		}
	}
}

// BenchmarkOpenVsCTR removes a layer from cells with open and with the
// cipher.NewCTR reference (openCTR) in turn, in blocks of 256 cells, so
// that the machine's load falls on both alike, and reports ns per cell of
// each.
func BenchmarkOpenVsCTR(b *testing.B) {
	var k hopKeys
	l, _ := newLayer(k)
	body := make([]byte, bodyLen)
	var tOpen, tCTR time.Duration
	const block = 256
	b.SetBytes(CellSize)
	for done := 0; done < b.N; done += block {
		t0 := time.Now()
		for range block {
			l.fwd.open(body)
		}
		t1 := time.Now()
		for range block {
			openCTR(l.fwd, body)
		}
		tOpen += t1.Sub(t0)
		tCTR += time.Since(t1)
	}
	cells := float64((b.N + block - 1) / block * block)
	b.ReportMetric(float64(tOpen.Nanoseconds())/cells, "open-ns/cell")
	b.ReportMetric(float64(tCTR.Nanoseconds())/cells, "ctr-ns/cell")
}
