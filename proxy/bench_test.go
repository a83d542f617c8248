package proxy_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pikcio/pikcio/proxy"
)

// socksConnect opens a SOCKS5 tunnel to 127.0.0.1:port the way a client
// does: greeting, wait for the method, request, wait for the reply.
func socksConnect(tb testing.TB, socksAddr string, port uint16) net.Conn {
	c, err := net.Dial("tcp", socksAddr)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		tb.Fatal(err)
	}
	var buf [10]byte
	if _, err := io.ReadFull(c, buf[:2]); err != nil {
		tb.Fatal(err)
	}
	if _, err := c.Write([]byte{5, 1, 0, 1, 127, 0, 0, 1, byte(port >> 8), byte(port)}); err != nil {
		tb.Fatal(err)
	}
	if _, err := io.ReadFull(c, buf[:]); err != nil || buf[1] != 0 {
		tb.Fatalf("reply % x, %v", buf, err)
	}
	return c
}

// BenchmarkGET1KiB: time to first byte and total time of a 1 KiB HTTP GET on
// a new connection, directly and through the SOCKS port over a fake circuit.
func BenchmarkGET1KiB(b *testing.B) {
	e := newEnv(b, proxy.PoolOptions{}, proxy.ServerOptions{})
	be := newBackend(b)
	req := "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
	for _, mode := range []string{"direct", "socks"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			var ttfb time.Duration
			for b.Loop() {
				start := time.Now()
				var c net.Conn
				if mode == "direct" {
					var err error
					if c, err = net.Dial("tcp", be.Listener.Addr().String()); err != nil {
						b.Fatal(err)
					}
				} else {
					c = socksConnect(b, e.socksAddr, be.port)
				}
				if _, err := io.WriteString(c, req); err != nil {
					b.Fatal(err)
				}
				r := bufio.NewReader(c)
				if _, err := r.Peek(1); err != nil {
					b.Fatal(err)
				}
				ttfb += time.Since(start)
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				_ = c.Close()
				if n != 1024 {
					b.Fatalf("body %d bytes", n)
				}
			}
			b.ReportMetric(float64(ttfb.Nanoseconds())/float64(b.N)/1e3, "ttfb-µs")
		})
	}
}

// BenchmarkThroughput: one 16 MiB download on an open tunnel.
func BenchmarkThroughput(b *testing.B) {
	e := newEnv(b, proxy.PoolOptions{}, proxy.ServerOptions{})
	const size = 16 << 20
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 64<<10)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			for sent := 0; sent < size; sent += len(buf) {
				if _, err := c.Write(buf); err != nil {
					break
				}
			}
			_ = c.Close()
		}
	}()
	defer wg.Wait()
	defer l.Close()
	port := portOf(b, l.Addr())
	for _, mode := range []string{"direct", "socks"} {
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				var c net.Conn
				if mode == "direct" {
					if c, err = net.Dial("tcp", l.Addr().String()); err != nil {
						b.Fatal(err)
					}
				} else {
					c = socksConnect(b, e.socksAddr, port)
				}
				n, _ := io.Copy(io.Discard, c)
				_ = c.Close()
				if n != size {
					b.Fatalf("got %d bytes", n)
				}
			}
		})
	}
}

// memUse is the memory a measurement counts: heap in use and goroutine
// stacks, after enough collections for stacks to shrink.
type memUse struct{ heap, stack float64 }

func heapAndStack() memUse {
	for range 4 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memUse{float64(m.HeapInuse), float64(m.StackInuse)}
}

// BenchmarkIdleConnections: memory per idle connection, for 1000 idle
// connections directly to a sink (client and sink sides only) and 1000 idle
// SOCKS tunnels through one server over a fake circuit to the same sink. The
// proxy's own cost is the difference.
func BenchmarkIdleConnections(b *testing.B) {
	const n = 1000
	e := newEnv(b, proxy.PoolOptions{}, proxy.ServerOptions{})
	// The sink holds connections without a goroutine each.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		_ = l.Close()
		<-done
		mu.Lock()
		for _, c := range held {
			_ = c.Close()
		}
		mu.Unlock()
	}()
	port := portOf(b, l.Addr())
	heldCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(held)
	}

	measure := func(open func() net.Conn) memUse {
		want := heldCount() + n
		before := heapAndStack()
		conns := make([]net.Conn, 0, n)
		for range n {
			conns = append(conns, open())
		}
		waitFor(b, "the sink to hold every connection", func() bool { return heldCount() >= want })
		time.Sleep(100 * time.Millisecond) // let relay goroutines park
		after := heapAndStack()
		for _, c := range conns {
			_ = c.Close()
		}
		return memUse{(after.heap - before.heap) / n, (after.stack - before.stack) / n}
	}
	// Warm up the pool's circuit.
	_ = socksConnect(b, e.socksAddr, port).Close()
	b.ResetTimer()
	var direct, socks memUse
	for range b.N {
		direct = measure(func() net.Conn {
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			return c
		})
		socks = measure(func() net.Conn { return socksConnect(b, e.socksAddr, port) })
	}
	d, s := direct.heap+direct.stack, socks.heap+socks.stack
	b.ReportMetric(d, "B/direct-conn")
	b.ReportMetric(s, "B/socks-conn")
	b.ReportMetric(s-d, "B/proxy-overhead")
	b.Logf("per idle connection: direct %s; through SOCKS %s (heap %s, stacks %s); proxy overhead %s",
		kib(d), kib(s), kib(socks.heap), kib(socks.stack), kib(s-d))
}

func kib(b float64) string {
	return strings.TrimRight(strings.TrimRight(strconv.FormatFloat(b/1024, 'f', 2, 64), "0"), ".") + " KiB"
}
