package delayline

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/pikcio/pikcio/internal/testutil"
)

// lineVariants are the ways a line can carry bytes, which BenchmarkLine
// compares.
var lineVariants = []struct {
	name            string
	buf, min, batch int
	sock            int
}{
	// Before issue 16's last round: a 64 KiB buffer per read, a write per
	// chunk, the kernel's socket buffers.
	{"64k-each", 64 << 10, 64 << 10, 1, 0},
	{"256k-each", 256 << 10, 32 << 10, 1, 0},
	{"256k-batch", 256 << 10, 32 << 10, 64, 0},
	{"256k-batch-sock128k", 256 << 10, 32 << 10, 64, 128 << 10},
	{"256k-batch-sock256k", 256 << 10, 32 << 10, 64, 256 << 10}, // the default
}

// BenchmarkLine sends 64 MiB through a line with a 10 ms delay, from a
// writer (16 KiB writes, as a TLS link writes records) to a reader in this
// process, once per variant in turn in each iteration, so that the load
// of the machine falls on all of them alike. It reports the CPU time per
// GiB of the writer and reader alone (direct) and what each variant of the
// line adds to it.
func BenchmarkLine(b *testing.B) {
	defaults := lineVariants[len(lineVariants)-1]
	b.Cleanup(func() { lineBufSize, minRead, maxBatch = defaults.buf, defaults.min, defaults.batch })
	sink, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sink.Close() })
	ln, err := Listen(sink.Addr().String(), Options{Delay: 10 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	const size = 64 << 20
	cpu := make([]time.Duration, len(lineVariants))
	var direct time.Duration // the writer and reader alone, without the line
	for i := 0; i < b.N; i++ {
		cpu0 := testutil.CPUTime()
		sendThrough(b, sink.Addr().String(), sink, size)
		direct += testutil.CPUTime() - cpu0
		for v, lv := range lineVariants {
			lineBufSize, minRead, maxBatch, sockBuf = lv.buf, lv.min, lv.batch, lv.sock
			cpu0 := testutil.CPUTime()
			sendThrough(b, ln.Addr().String(), sink, size)
			cpu[v] += testutil.CPUTime() - cpu0
		}
	}
	gib := float64(b.N) * size / (1 << 30)
	b.ReportMetric(direct.Seconds()/gib, "direct-cpu-s/GiB")
	for v, lv := range lineVariants {
		b.ReportMetric((cpu[v]-direct).Seconds()/gib, lv.name+"-line-cpu-s/GiB")
	}
}

// sendThrough sends size bytes to addr, which leads to sink.
func sendThrough(b *testing.B, addr string, sink net.Listener, size int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	s, err := sink.Accept()
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		buf := make([]byte, 16<<10)
		for sent := 0; sent < size; sent += len(buf) {
			if _, err := c.Write(buf); err != nil {
				break
			}
		}
		_ = c.Close()
	}()
	_ = s.SetDeadline(time.Now().Add(time.Minute))
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{s}, make([]byte, 256<<10))
	_ = s.Close()
	if err != nil || n != int64(size) {
		b.Fatalf("%d bytes, %v", n, err)
	}
}
