// Package delayline is a TCP forwarder that delays every byte by a fixed
// one-way delay and optionally caps the rate: a wide-area link on loopback,
// without root or netem. Each direction is a FIFO of timestamped chunks with
// a bounded size (a router's buffer); when it is full the forwarder stops
// reading, so the sender's TCP sees backpressure.
package delayline

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Options shape a link.
type Options struct {
	Delay time.Duration // one-way, each direction
	Rate  int64         // bytes per second per direction; 0: unlimited
	// Queue bounds the bytes in flight per direction (delayed or waiting for
	// the rate cap). 0: 64 MiB, or 200 ms of Rate when Rate is set.
	Queue int
}

// Line forwards connections from its listener to a target.
type Line struct {
	l      net.Listener
	target string
	opts   Options

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen starts a line on 127.0.0.1 that forwards to target.
func Listen(target string, o Options) (*Line, error) {
	if o.Queue <= 0 {
		o.Queue = 64 << 20
		if o.Rate > 0 {
			o.Queue = int(max(o.Rate/5, 256<<10))
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ln := &Line{l: l, target: target, opts: o, conns: make(map[net.Conn]struct{})}
	ln.wg.Add(1)
	go ln.accept()
	return ln, nil
}

// Addr is where the line listens.
func (ln *Line) Addr() *net.TCPAddr { return ln.l.Addr().(*net.TCPAddr) }

// Close stops the line and every connection through it, and waits.
func (ln *Line) Close() error {
	err := ln.l.Close()
	ln.mu.Lock()
	ln.closed = true
	for c := range ln.conns {
		_ = c.Close()
	}
	ln.mu.Unlock()
	ln.wg.Wait()
	return err
}

func (ln *Line) track(c net.Conn) bool {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if ln.closed {
		_ = c.Close()
		return false
	}
	ln.conns[c] = struct{}{}
	return true
}

func (ln *Line) accept() {
	defer ln.wg.Done()
	for {
		c, err := ln.l.Accept()
		if err != nil {
			return
		}
		if !ln.track(c) {
			continue
		}
		ln.wg.Add(1)
		go ln.serve(c)
	}
}

func (ln *Line) serve(a net.Conn) {
	defer ln.wg.Done()
	b, err := net.Dial("tcp", ln.target)
	if err != nil || !ln.track(b) {
		_ = a.Close()
		return
	}
	// Small socket buffers: the queue that matters is the line's own. A
	// delayed line's also keep the bytes that have just come or are about
	// to go few enough to stay in the CPU's caches: with the kernel's
	// autotuned buffers (megabytes) the line cost twice the CPU per GiB
	// (BenchmarkLine), and 256 KiB is still a hundred times what loopback's
	// round trip of microseconds needs.
	for _, c := range []net.Conn{a, b} {
		if tc, ok := c.(*net.TCPConn); ok && ln.opts.Rate > 0 {
			_ = tc.SetReadBuffer(64 << 10)
			_ = tc.SetWriteBuffer(64 << 10)
		} else if ok && sockBuf > 0 && ln.opts.Delay > 0 {
			_ = tc.SetReadBuffer(sockBuf)
			_ = tc.SetWriteBuffer(sockBuf)
		}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ln.pipe(b, a) }()
	go func() { defer wg.Done(); ln.pipe(a, b) }()
	wg.Wait()
	_ = a.Close()
	_ = b.Close()
	ln.mu.Lock()
	delete(ln.conns, a)
	delete(ln.conns, b)
	ln.mu.Unlock()
}

const rateBurst = 20 * time.Millisecond

type chunk struct {
	at   time.Time // when it may leave
	data []byte
	buf  *[]byte      // pooled (UDPLine)
	lb   *lineBuf     // the read buffer it is in (Line)
	to   *net.UDPConn // a datagram's upstream socket (UDPLine)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// pipe carries src to dst with the delay and rate cap.
func (ln *Line) pipe(dst, src net.Conn) {
	if ln.opts.Delay == 0 && ln.opts.Rate == 0 {
		_, err := io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok && err == nil {
			_ = tc.CloseWrite()
		} else {
			_ = dst.Close()
			_ = src.Close()
		}
		return
	}
	q := &queue{limit: ln.opts.Queue}
	q.cond = sync.NewCond(&q.mu)
	done := make(chan struct{})
	go func() {
		defer close(done)
		ln.send(dst, src, q)
	}()
	var b *lineBuf
	for {
		// Reads fill a large buffer in turn, each chunk a slice of it,
		// so that a small read neither takes a whole buffer nor stops the
		// next read from being large.
		if b == nil || len(b.b)-b.off < minRead {
			if b != nil {
				b.unref()
			}
			b = getLineBuf()
		}
		n, err := src.Read(b.b[b.off:])
		if n > 0 {
			b.refs.Add(1)
			c := chunk{at: time.Now().Add(ln.opts.Delay), data: b.b[b.off : b.off+n], lb: b}
			b.off += n
			if !q.push(c) {
				c.lb.unref()
				break
			}
		}
		if err != nil {
			q.end(errors.Is(err, io.EOF))
			break
		}
	}
	if b != nil {
		b.unref()
	}
	<-done
}

// lineBufSize is the size of a TCP line's read buffers; minRead the least
// room a read is given in one.
var lineBufSize, minRead = 256 << 10, 32 << 10

// lineBuf is a read buffer that chunks share: it goes back to its pool
// when the reader has moved on and every chunk in it has been sent.
type lineBuf struct {
	b    []byte
	off  int // where the next read goes
	refs atomic.Int32
}

var lineBufPool sync.Pool

func getLineBuf() *lineBuf {
	b, _ := lineBufPool.Get().(*lineBuf)
	if b == nil || len(b.b) != lineBufSize {
		b = &lineBuf{b: make([]byte, lineBufSize)}
	}
	b.off = 0
	b.refs.Store(1) // the reader's
	return b
}

func (b *lineBuf) unref() {
	if b.refs.Add(-1) == 0 {
		lineBufPool.Put(b)
	}
}

// maxBatch bounds the chunks that leave in one write.
var maxBatch = 64

// sockBuf is the socket buffer size of a delayed line without a rate cap
// (0: the kernel's).
var sockBuf = 256 << 10

func (ln *Line) send(dst, src net.Conn, q *queue) {
	var next time.Time // rate cap: when the next byte may leave
	var batch []chunk
	var bufs [][]byte
	for {
		c, ok, eof := q.pop()
		if !ok {
			if eof {
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
					return
				}
			}
			_ = dst.Close()
			return
		}
		if d := time.Until(c.at); d > 0 {
			time.Sleep(d)
		}
		if ln.opts.Rate == 0 && maxBatch > 1 {
			// Every chunk already due leaves with this one, in one
			// write (writev).
			batch = append(batch[:0], c)
			batch = q.popDue(batch, time.Now(), maxBatch)
			bufs = bufs[:0]
			n := 0
			for _, c := range batch {
				bufs = append(bufs, c.data)
				n += len(c.data)
			}
			wb := net.Buffers(bufs)
			if _, err := wb.WriteTo(dst); err != nil {
				q.fail()
				_ = dst.Close()
				_ = src.Close()
				return
			}
			q.release(n)
			for i, c := range batch {
				c.lb.unref()
				batch[i] = chunk{}
			}
			continue
		}
		data := c.data
		for len(data) > 0 {
			k := len(data)
			if ln.opts.Rate > 0 {
				k = min(k, 16<<10)
				now := time.Now()
				// Late wake-ups are made up for, within a burst of
				// 20 ms, so a loaded machine does not lower the rate.
				if next.Before(now.Add(-rateBurst)) {
					next = now.Add(-rateBurst)
				}
				if d := next.Sub(now); d > 0 {
					time.Sleep(d)
				}
				next = next.Add(time.Duration(int64(k) * int64(time.Second) / ln.opts.Rate))
			}
			if _, err := dst.Write(data[:k]); err != nil {
				q.fail()
				_ = dst.Close()
				_ = src.Close()
				return
			}
			data = data[k:]
		}
		q.release(len(c.data))
		c.lb.unref()
	}
}

// queue is a bounded FIFO of chunks.
type queue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []chunk
	bytes  int
	limit  int
	ended  bool
	eof    bool
	failed bool
}

func (q *queue) push(c chunk) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for q.bytes >= q.limit && !q.failed {
		q.cond.Wait()
	}
	if q.failed {
		return false
	}
	q.items = append(q.items, c)
	q.bytes += len(c.data)
	q.cond.Broadcast()
	return true
}

func (q *queue) end(eof bool) {
	q.mu.Lock()
	q.ended, q.eof = true, eof
	q.cond.Broadcast()
	q.mu.Unlock()
}

func (q *queue) fail() {
	q.mu.Lock()
	q.failed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

// popDue appends to batch, without waiting, the chunks at the head that
// may leave at now, up to max in all.
func (q *queue) popDue(batch []chunk, now time.Time, max int) []chunk {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := 0
	for k < len(q.items) && len(batch) < max && !q.items[k].at.After(now) {
		batch = append(batch, q.items[k])
		q.items[k] = chunk{}
		k++
	}
	q.items = q.items[k:]
	return batch
}

func (q *queue) pop() (chunk, bool, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.ended {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return chunk{}, false, q.eof
	}
	c := q.items[0]
	q.items[0] = chunk{}
	q.items = q.items[1:]
	return c, true, false
}

// release frees room once a chunk has left: bytes count as queued until
// they are sent.
func (q *queue) release(n int) {
	q.mu.Lock()
	q.bytes -= n
	q.cond.Broadcast()
	q.mu.Unlock()
}
