package delayline

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// On Linux a TCP line holds its bytes in kernel pipes instead of user
// buffers: splice(2) moves them from the source socket into a pipe and,
// after the delay, from the pipe into the destination socket, so no byte
// is copied into or out of this process (the copying line cost about half
// of the benchmark process's CPU at 10 ms per link). What the line models
// is the same: each byte leaves no sooner than the delay after it was
// read, in order, within the rate cap and the queue bound.

const (
	// pipeSize is the capacity asked of each pipe (F_SETPIPE_SZ; 1 MiB is
	// Linux's default /proc/sys/fs/pipe-max-size for unprivileged users).
	pipeSize = 1 << 20
	// maxPipes bounds the pipes (two descriptors each) of one direction.
	maxPipes = 128
	// coalesce: bytes read within this long of a span's last ones join that
	// span (and move its departure later, never earlier), so a burst takes
	// one pipe and one timer rather than one per read.
	coalesce = 200 * time.Microsecond

	spliceMove     = 0x1 // SPLICE_F_MOVE
	spliceNonblock = 0x2 // SPLICE_F_NONBLOCK
	fSetPipeSize   = 1031
)

var errShortPipe = errors.New("delayline: pipe held fewer bytes than counted")

// kpipe is a kernel pipe holding bytes between the two sockets.
type kpipe struct{ r, w int }

func newKpipe() (*kpipe, error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		return nil, err
	}
	// A smaller pipe (the 64 KiB default) still works, in smaller spans.
	_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[1]), fSetPipeSize, pipeSize)
	return &kpipe{r: fds[0], w: fds[1]}, nil
}

func (p *kpipe) close() {
	_ = syscall.Close(p.r)
	_ = syscall.Close(p.w)
}

// span is bytes in one pipe that leave together at at.
type span struct {
	at      time.Time
	arrived time.Time // when its last bytes were read
	p       *kpipe
	n       int
}

// spanQueue is a bounded FIFO of spans, and the direction's pipes.
type spanQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond
	items  []*span
	bytes  int
	limit  int
	ended  bool
	eof    bool
	failed bool
	free   []*kpipe
	all    []*kpipe
}

// spliceable reports whether pipe can splice between dst and src.
func spliceable(dst, src net.Conn) bool {
	_, ok1 := dst.(*net.TCPConn)
	_, ok2 := src.(*net.TCPConn)
	return ok1 && ok2
}

// splicePipe is pipe through kernel pipes (dst and src are TCP).
func (ln *Line) splicePipe(dst, src net.Conn) {
	rc, err1 := src.(*net.TCPConn).SyscallConn()
	wc, err2 := dst.(*net.TCPConn).SyscallConn()
	if err1 != nil || err2 != nil {
		_ = dst.Close()
		_ = src.Close()
		return
	}
	q := &spanQueue{limit: ln.opts.Queue}
	q.cond = sync.NewCond(&q.mu)
	defer q.closePipes()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ln.spliceSend(dst, src, wc, q)
	}()
	defer func() { <-done }()
	for {
		if q.appendTail(rc, ln.opts.Delay) {
			continue
		}
		p, err := q.getPipe()
		if err != nil {
			q.end(false)
			return
		}
		var n int64
		var serr error
		err = rc.Read(func(fd uintptr) bool {
			n, serr = syscall.Splice(int(fd), nil, p.w, nil, pipeSize, spliceMove|spliceNonblock)
			return serr != syscall.EAGAIN
		})
		if err == nil {
			err = serr
		}
		if n > 0 {
			now := time.Now()
			q.push(&span{at: now.Add(ln.opts.Delay), arrived: now, p: p, n: int(n)})
		} else {
			q.putPipe(p)
		}
		if err != nil || n <= 0 {
			q.end(err == nil) // splice returns 0 at EOF
			return
		}
	}
}

// appendTail splices what src has now, without waiting, into the last
// span if it is still queued, arrived within coalesce and has room; it
// reports whether it moved any bytes.
func (q *spanQueue) appendTail(rc syscall.RawConn, delay time.Duration) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 || q.bytes >= q.limit || q.failed {
		return false
	}
	t := q.items[len(q.items)-1]
	now := time.Now()
	if now.Sub(t.arrived) > coalesce || t.n >= pipeSize/2 {
		return false
	}
	var n int64
	var serr error
	// The pipe is not empty, so EAGAIN may mean it is full as well as that
	// src has nothing: try once and never wait here.
	err := rc.Read(func(fd uintptr) bool {
		n, serr = syscall.Splice(int(fd), nil, t.p.w, nil, pipeSize/2-t.n, spliceMove|spliceNonblock)
		return true
	})
	if err != nil || serr != nil || n <= 0 {
		return false
	}
	t.n += int(n)
	t.arrived = now
	t.at = now.Add(delay)
	q.bytes += int(n)
	q.cond.Broadcast()
	return true
}

// spliceOut moves up to k bytes from p to the socket behind wc, waiting
// while the socket is full.
func spliceOut(wc syscall.RawConn, p *kpipe, k int) (int, error) {
	var m int64
	var serr error
	err := wc.Write(func(fd uintptr) bool {
		m, serr = syscall.Splice(p.r, nil, int(fd), nil, k, spliceMove|spliceNonblock)
		return serr != syscall.EAGAIN
	})
	if err == nil {
		err = serr
	}
	if err == nil && m <= 0 {
		err = errShortPipe
	}
	return int(m), err
}

func (ln *Line) spliceSend(dst, src net.Conn, wc syscall.RawConn, q *spanQueue) {
	var next time.Time // rate cap: when the next byte may leave
	for {
		s, ok, eof := q.pop()
		if !ok {
			if eof {
				_ = dst.(*net.TCPConn).CloseWrite()
				return
			}
			_ = dst.Close()
			return
		}
		if d := time.Until(s.at); d > 0 {
			time.Sleep(d)
		}
		for s.n > 0 {
			k := s.n
			if ln.opts.Rate > 0 {
				k = min(k, 16<<10)
				next = ln.pace(next, k)
			}
			m, err := spliceOut(wc, s.p, k)
			if err != nil {
				q.fail()
				_ = dst.Close()
				_ = src.Close()
				return
			}
			s.n -= m
			q.release(m)
		}
		q.putPipe(s.p)
	}
}

// getPipe returns an empty pipe once the queue has room for more bytes and
// the direction is under maxPipes.
func (q *spanQueue) getPipe() (*kpipe, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for !q.failed && (q.bytes >= q.limit || (len(q.free) == 0 && len(q.all) >= maxPipes)) {
		q.cond.Wait()
	}
	if q.failed {
		return nil, io.ErrClosedPipe
	}
	if k := len(q.free); k > 0 {
		p := q.free[k-1]
		q.free = q.free[:k-1]
		return p, nil
	}
	p, err := newKpipe()
	if err != nil {
		return nil, err
	}
	q.all = append(q.all, p)
	return p, nil
}

func (q *spanQueue) putPipe(p *kpipe) {
	q.mu.Lock()
	q.free = append(q.free, p)
	q.cond.Broadcast()
	q.mu.Unlock()
}

func (q *spanQueue) closePipes() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, p := range q.all {
		p.close()
	}
	q.all, q.free = nil, nil
}

func (q *spanQueue) push(s *span) {
	q.mu.Lock()
	q.items = append(q.items, s)
	q.bytes += s.n
	q.cond.Broadcast()
	q.mu.Unlock()
}

func (q *spanQueue) end(eof bool) {
	q.mu.Lock()
	q.ended, q.eof = true, eof
	q.cond.Broadcast()
	q.mu.Unlock()
}

func (q *spanQueue) fail() {
	q.mu.Lock()
	q.failed = true
	q.cond.Broadcast()
	q.mu.Unlock()
}

func (q *spanQueue) pop() (*span, bool, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) == 0 && !q.ended {
		q.cond.Wait()
	}
	if len(q.items) == 0 {
		return nil, false, q.eof
	}
	s := q.items[0]
	q.items[0] = nil
	q.items = q.items[1:]
	return s, true, false
}

func (q *spanQueue) release(n int) {
	q.mu.Lock()
	q.bytes -= n
	q.cond.Broadcast()
	q.mu.Unlock()
}
