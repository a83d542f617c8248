package delayline

import (
	"net"
	"sync"
	"time"
)

// UDPLine forwards datagrams from its socket to a target, each one delayed
// by Options.Delay, with one upstream socket per client address (as a NAT
// would), so that QUIC links can be measured under the same delay as TCP
// ones. Rate caps are not applied; a datagram that finds Queue full is
// dropped, as a router's buffer would.
type UDPLine struct {
	pc     *net.UDPConn
	target *net.UDPAddr
	opts   Options

	mu     sync.Mutex
	peers  map[string]*net.UDPConn
	closed bool
	wg     sync.WaitGroup
}

// ListenUDP starts a UDP line on 127.0.0.1 that forwards to target.
func ListenUDP(target string, o Options) (*UDPLine, error) {
	if o.Queue <= 0 {
		o.Queue = 64 << 20
	}
	ta, err := net.ResolveUDPAddr("udp", target)
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	_ = pc.SetReadBuffer(8 << 20)
	_ = pc.SetWriteBuffer(8 << 20)
	ln := &UDPLine{pc: pc, target: ta, opts: o, peers: make(map[string]*net.UDPConn)}
	ln.wg.Add(1)
	go ln.readClients()
	return ln, nil
}

// Addr is where the line listens.
func (ln *UDPLine) Addr() *net.UDPAddr { return ln.pc.LocalAddr().(*net.UDPAddr) }

// Close stops the line and waits for its goroutines.
func (ln *UDPLine) Close() error {
	err := ln.pc.Close()
	ln.mu.Lock()
	ln.closed = true
	for _, c := range ln.peers {
		_ = c.Close()
	}
	ln.mu.Unlock()
	ln.wg.Wait()
	return err
}

// delayer sends datagrams after the delay, in order, dropping what does
// not fit the queue.
type delayer struct {
	mu    sync.Mutex
	cond  *sync.Cond
	items []chunk
	bytes int
	limit int
	done  bool
}

func newDelayer(limit int) *delayer {
	d := &delayer{limit: limit}
	d.cond = sync.NewCond(&d.mu)
	return d
}

func (d *delayer) push(c chunk) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bytes+len(c.data) > d.limit {
		bufPool.Put(c.buf)
		return
	}
	d.items = append(d.items, c)
	d.bytes += len(c.data)
	d.cond.Signal()
}

func (d *delayer) stop() {
	d.mu.Lock()
	d.done = true
	d.cond.Broadcast()
	d.mu.Unlock()
}

func (d *delayer) run(send func(chunk)) {
	for {
		d.mu.Lock()
		for len(d.items) == 0 && !d.done {
			d.cond.Wait()
		}
		if len(d.items) == 0 {
			d.mu.Unlock()
			return
		}
		c := d.items[0]
		d.items[0] = chunk{}
		d.items = d.items[1:]
		d.bytes -= len(c.data)
		d.mu.Unlock()
		if w := time.Until(c.at); w > 0 {
			time.Sleep(w)
		}
		send(c)
		bufPool.Put(c.buf)
	}
}

func (ln *UDPLine) readClients() {
	defer ln.wg.Done()
	up := newDelayer(ln.opts.Queue)
	ln.wg.Add(1)
	go func() {
		defer ln.wg.Done()
		up.run(func(c chunk) { _, _ = c.to.Write(c.data) })
	}()
	defer up.stop()
	for {
		bp := bufPool.Get().(*[]byte)
		n, from, err := ln.pc.ReadFromUDP(*bp)
		if err != nil {
			bufPool.Put(bp)
			return
		}
		c, err := ln.peer(from)
		if err != nil {
			bufPool.Put(bp)
			continue
		}
		up.push(chunk{at: time.Now().Add(ln.opts.Delay), data: (*bp)[:n], buf: bp, to: c})
	}
}

// peer returns the upstream socket for a client address, starting its
// return path on first use.
func (ln *UDPLine) peer(from *net.UDPAddr) (*net.UDPConn, error) {
	ln.mu.Lock()
	defer ln.mu.Unlock()
	if c, ok := ln.peers[from.String()]; ok {
		return c, nil
	}
	if ln.closed {
		return nil, net.ErrClosed
	}
	c, err := net.DialUDP("udp", nil, ln.target)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadBuffer(8 << 20)
	_ = c.SetWriteBuffer(8 << 20)
	ln.peers[from.String()] = c
	back := newDelayer(ln.opts.Queue)
	ln.wg.Add(2)
	go func() {
		defer ln.wg.Done()
		back.run(func(c chunk) { _, _ = ln.pc.WriteToUDP(c.data, from) })
	}()
	go func() {
		defer ln.wg.Done()
		defer back.stop()
		for {
			bp := bufPool.Get().(*[]byte)
			n, err := c.Read(*bp)
			if err != nil {
				bufPool.Put(bp)
				return
			}
			back.push(chunk{at: time.Now().Add(ln.opts.Delay), data: (*bp)[:n], buf: bp})
		}
	}()
	return c, nil
}
