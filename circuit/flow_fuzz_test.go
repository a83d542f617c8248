package circuit

import (
	"sync"
	"testing"
)

// sinkSender is the edge's way out in FuzzFlowControl: it records what the
// edge sends back (SENDMEs, ENDs), which is all the far end would see.
type sinkSender struct {
	mu   sync.Mutex
	sent []byte // relay commands
}

func (s *sinkSender) sendRelay(cmd byte, _ uint16, _ []byte) error {
	s.mu.Lock()
	s.sent = append(s.sent, cmd)
	s.mu.Unlock()
	return nil
}

// FuzzFlowControl feeds an edge a sequence of relay messages from the far
// end, mixed with reads and writes by its own streams, and checks that
// whatever the peer sends, the edge either closes the circuit (an error)
// or keeps its bounds: queued cells within each stream's window, windows
// within the circuit's budget, credit never negative or beyond the largest
// window. Each op is 3 bytes: op, stream, length (data of that length).
func FuzzFlowControl(f *testing.F) {
	f.Add([]byte{0, 1, 10, 0, 1, 200, 1, 1, 0, 2, 0, 0})
	f.Add([]byte{3, 0, 0})                    // circuit SENDME, nothing in flight
	f.Add([]byte{4, 1, 0, 4, 1, 0, 4, 1, 0})  // stream SENDMEs
	f.Add([]byte{2, 1, 32, 3, 0, 0, 3, 0, 0}) // write, then credit
	f.Add([]byte{0, 2, 255, 5, 2, 0, 0, 2, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		out := &sinkSender{}
		e := newEdge(out, 8, newBudget(1<<20))
		defer func() { e.kill(ErrCircuitClosed); e.wait() }()
		var streams [4]*Stream
		for i := 1; i < len(streams); i++ {
			s, err := e.acceptStream(uint16(i), streamAddr{host: "x", port: 1})
			if err != nil {
				t.Fatal(err)
			}
			streams[i] = s
		}
		buf := make([]byte, batchCells*MaxCellData)
		for len(ops) >= 3 {
			op, id, n := ops[0]%6, uint16(ops[1]%4), int(ops[2])
			ops = ops[3:]
			var err error
			switch op {
			case 0: // DATA from the far end, repeated n/8+1 times
				for k := 0; k <= n/8 && err == nil; k++ {
					err = e.handle(relayMsg{cmd: relayData, stream: id, data: buf[:n*16%MaxCellData+1]})
				}
			case 1: // our reader reads n cells' worth
				if s := streams[id]; s != nil {
					for k := 0; k < n && s.readable(); k++ {
						_, _ = s.Read(buf[:MaxCellData])
					}
				}
			case 2: // our writer sends, within its credit
				if s := streams[id]; s != nil {
					s.mu.Lock()
					w := s.window
					s.mu.Unlock()
					e.mu.Lock()
					room := e.cc.room()
					e.mu.Unlock()
					if k := min(n, w, room, batchCells); k > 0 {
						_, _ = s.Write(buf[:k*MaxCellData])
					}
				}
			case 3:
				err = e.handle(relayMsg{cmd: relaySendme})
			case 4:
				err = e.handle(relayMsg{cmd: relaySendme, stream: id})
			case 5:
				err = e.handle(relayMsg{cmd: byte(n)%relayMaxCmd + 1, stream: id, data: buf[:n%4]})
			}
			if err != nil {
				return // the circuit closes: the right answer to a violation
			}
			e.mu.Lock()
			inflight := e.cc.inflight
			cwnd := e.cc.cwnd
			e.mu.Unlock()
			if inflight < 0 || cwnd < cwndMin || cwnd > cwndMax {
				t.Fatalf("congestion window %d, in flight %d", cwnd, inflight)
			}
			if used := e.buf.inUse(); used > circuitBuffer {
				t.Fatalf("stream windows take %d cells of a %d-cell budget", used, circuitBuffer)
			}
			for _, s := range streams[1:] {
				s.mu.Lock()
				bad := s.rcells > s.rwin || s.rcredit < 0 || s.rcells+s.rcredit > s.rwin || s.window > streamWindowMax || s.rwin > streamWindowMax
				st := [5]int{s.rcells, s.rcredit, s.rwin, s.window}
				s.mu.Unlock()
				if bad {
					t.Fatalf("stream %d: queued %d, credit %d, window %d, send credit %d", s.id, st[0], st[1], st[2], st[3])
				}
			}
		}
	})
}

// readable reports whether a Read would return at once.
func (s *Stream) readable() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rq) > 0 || s.rErr != nil || s.rEOF
}
