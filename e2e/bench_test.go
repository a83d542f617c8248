package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"testing"
	"time"

	xproxy "golang.org/x/net/proxy"

	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/pikcio/pikcio/proxy"
)

// get does one HTTP/1.1 GET on c and returns the time to the first byte of
// the response and the body length.
func get(b *testing.B, c net.Conn, path string) (time.Duration, int) {
	start := time.Now()
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path); err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReaderSize(c, 64<<10)
	if _, err := br.Peek(1); err != nil {
		b.Fatal(err)
	}
	ttfb := time.Since(start)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	return ttfb, int(n)
}

// BenchmarkTTFB1KiB measures the time to first byte of a 1 KiB GET on a new
// connection, through a warm circuit via SOCKS and directly, in the same
// run. The figure that matters is the difference of the two medians.
func BenchmarkTTFB1KiB(b *testing.B) {
	n := newNetwork(b, proxy.PoolOptions{})
	port, _ := fileServer(b, 1024)
	n.waitPrebuilt(b)
	d, err := xproxy.SOCKS5("tcp", n.socks, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	// Warm the circuit.
	if c, err := d.Dial("tcp", "127.0.0.1:"+port); err == nil {
		_ = c.Close()
	}
	for _, tc := range []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"direct", func() (net.Conn, error) { return net.Dial("tcp", "127.0.0.1:"+port) }},
		{"socks-3hops", func() (net.Conn, error) { return d.Dial("tcp", "127.0.0.1:"+port) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var times []time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				c, err := tc.dial()
				if err != nil {
					b.Fatal(err)
				}
				dial := time.Since(start)
				ttfb, size := get(b, c, "/file")
				_ = c.Close()
				if size != 1024 {
					b.Fatalf("%d bytes", size)
				}
				times = append(times, dial+ttfb)
			}
			b.ReportMetric(float64(median(times).Microseconds())/1000, "ms-median-ttfb")
		})
	}
}

func median(ts []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ts...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}

// BenchmarkSOCKSDownload64MiB downloads 64 MiB through the SOCKS port and a
// 3-hop circuit; go test prints MB/s.
func BenchmarkSOCKSDownload64MiB(b *testing.B) {
	n := newNetwork(b, proxy.PoolOptions{})
	const size = 64 << 20
	port, _ := fileServer(b, size)
	n.waitPrebuilt(b)
	d, err := xproxy.SOCKS5("tcp", n.socks, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := testutil.CPUTime()
	for i := 0; i < b.N; i++ {
		c, err := d.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			b.Fatal(err)
		}
		_, got := get(b, c, "/file")
		_ = c.Close()
		if got != size {
			b.Fatalf("%d bytes", got)
		}
	}
	// The CPU time of the whole path (every hop, the proxy, the server:
	// all in this process) per GiB, which a loaded machine's other work
	// does not change as it does MB/s.
	b.ReportMetric((testutil.CPUTime()-cpu0).Seconds()/(float64(b.N)*size/(1<<30)), "cpu-s/GiB")
}

// BenchmarkIdleConnections holds 1,000 open connections through one client,
// each idle after a first exchange, and reports memory per connection
// beyond the process's base. The relays, the exit's side of each stream and
// the echo server run in the same process, so "socks" is an upper bound for
// the client; "circuit-only" opens the same streams on a circuit without
// the proxy, and the difference of the two is the proxy's share.
func BenchmarkIdleConnections(b *testing.B) {
	n := newNetwork(b, proxy.PoolOptions{})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	n.waitPrebuilt(b)
	d, err := xproxy.SOCKS5("tcp", n.socks, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	circ, err := n.client.Build(context.Background(), n.hops)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = circ.Close() })
	const count = 1000
	for _, tc := range []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"socks", func() (net.Conn, error) { return d.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)) }},
		{"circuit-only", func() (net.Conn, error) {
			return circ.OpenStream(context.Background(), "127.0.0.1", uint16(port))
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			open := func() []net.Conn {
				conns := make([]net.Conn, 0, count)
				buf := make([]byte, 1)
				for j := 0; j < count; j++ {
					c, err := tc.dial()
					if err != nil {
						b.Fatal(err)
					}
					if _, err := c.Write([]byte{1}); err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(c, buf); err != nil {
						b.Fatal(err)
					}
					conns = append(conns, c)
				}
				return conns
			}
			closeAll := func(conns []net.Conn) {
				for _, c := range conns {
					_ = c.Close()
				}
				time.Sleep(200 * time.Millisecond) // let ENDs cross the circuit
			}
			closeAll(open()) // warm pools and maps
			var per []float64
			for i := 0; i < b.N; i++ {
				before := heap()
				conns := open()
				after := heap()
				per = append(per, (float64(after)-float64(before))/count/1024)
				closeAll(conns)
			}
			b.ReportMetric(medianF(per), "KiB/idle-conn")
		})
	}
}

func medianF(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s[len(s)/2]
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse + m.StackInuse
}
