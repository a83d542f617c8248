package circuit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// CellSize is the size of every cell on a link, whatever it carries. See
// doc.go for how it was chosen.
const CellSize = 4096

// Link-level commands, the first byte of every cell.
const (
	cmdCreate  byte = 1 // client -> relay: handshake
	cmdCreated byte = 2 // relay -> client: handshake reply
	cmdRelay   byte = 3 // layered-encrypted relay body
	cmdDestroy byte = 4 // tear the circuit down, with a reason
	// cmdRelayEarly is a forward relay cell that may carry an EXTEND (Tor's
	// RELAY_EARLY): each relay passes it on as such and allows a circuit
	// at most maxEarlyCells of them, so no circuit grows beyond MaxHops.
	cmdRelayEarly byte = 5
)

// maxEarlyCells is how many RELAY_EARLY cells a relay lets through one
// circuit: one per EXTEND of a circuit of MaxHops hops.
const maxEarlyCells = MaxHops - 1

// DROP cells a relay accepts for itself on one circuit: a burst, then a
// steady rate. Padding needs few; beyond that they are work for nothing.
const (
	dropBurst = 64
	dropRate  = 8 // per second
)

// Layout of a relay body once every layer is removed: the relay header and
// data first, the tag (the hop's authenticator, crypto.go) in its last 16
// bytes.
const (
	bodyLen      = CellSize - 1
	offCmd       = 0 // relay command
	offStream    = 1 // 2 bytes, stream ID (0 = the circuit itself)
	offLen       = 3 // 2 bytes, length of the data
	relayHdrLen  = 5
	offTag       = bodyLen - tagLen
	MaxCellData  = offTag - relayHdrLen // bytes of stream data one cell carries
	maxHandshake = 512
)

// Relay commands (resolve.go adds RESOLVE and RESOLVED, 10 and 11).
const (
	relayBegin     byte = 1                // client -> exit: open a stream to host:port
	relayData      byte = 2                // stream bytes, either way
	relayEnd       byte = 3                // the stream is closed, with a reason
	relayConnected byte = 4                // exit -> client: BEGIN succeeded
	relaySendme    byte = 5                // flow control credit (stream 0: circuit level)
	relayExtend    byte = 6                // client -> hop: extend the circuit to a next hop
	relayExtended  byte = 7                // hop -> client: the next hop answered
	relayFin       byte = 8                // half-close: the sender sends no more data on the stream
	relayDrop      byte = 9                // padding, ignored by the receiver
	relayMaxCmd         = relayLastCommand // join.go adds 12 to 20
	relayExtendLim      = 16               // max addresses in an EXTEND
)

// DestroyReason says why a circuit was torn down. It is one byte on the wire.
type DestroyReason uint8

// Reasons carried by DESTROY cells.
const (
	DestroyNone      DestroyReason = 0
	DestroyProtocol  DestroyReason = 1 // a malformed or unexpected cell
	DestroyInternal  DestroyReason = 2
	DestroyRequested DestroyReason = 3 // the client closed the circuit
	DestroyResource  DestroyReason = 4 // a cap was reached
	DestroyHandshake DestroyReason = 5 // the handshake failed
	DestroyConnect   DestroyReason = 6 // extending to the next hop failed
	DestroyFinished  DestroyReason = 7 // the relay is shutting down
	DestroyIntegrity DestroyReason = 8 // a cell failed its integrity check
	// DestroyNotAdmitted: the relay does not carry circuits from this
	// previous hop (RelayOptions.AdmitPeer refused it, e.g. not enrolled).
	DestroyNotAdmitted DestroyReason = 9
	// DestroyTokenMissing, DestroyTokenSpent and DestroyTokenInvalid:
	// the first hop wants an admission token (RelayOptions.AdmitCircuit)
	// and the CREATE carried none, one already spent, or one it does not
	// accept (forged, for another guard, expired, of another TIS).
	DestroyTokenMissing DestroyReason = 10
	DestroyTokenSpent   DestroyReason = 11
	DestroyTokenInvalid DestroyReason = 12
	// DestroyLinkLost: the relay's link to the next hop of a built
	// circuit broke (that relay died or hung): unlike DestroyConnect, the
	// next hop was reached before, so a client extending beyond it blames
	// the next hop, not the one it was extending to.
	DestroyLinkLost DestroyReason = 13
)

var destroyNames = map[DestroyReason]string{
	DestroyNone:         "none",
	DestroyProtocol:     "protocol violation",
	DestroyInternal:     "internal error",
	DestroyRequested:    "closed by client",
	DestroyResource:     "resource limit",
	DestroyHandshake:    "handshake failed",
	DestroyConnect:      "could not extend to next hop",
	DestroyFinished:     "relay shutting down",
	DestroyIntegrity:    "cell failed integrity check",
	DestroyNotAdmitted:  "previous hop not admitted (not enrolled)",
	DestroyTokenMissing: "no admission token",
	DestroyTokenSpent:   "admission token already spent",
	DestroyTokenInvalid: "admission token refused (forged, expired, for another guard or another TIS)",
	DestroyLinkLost:     "link to the next hop lost",
}

func (r DestroyReason) String() string {
	if s, ok := destroyNames[r]; ok {
		return s
	}
	return fmt.Sprintf("reason %d", uint8(r))
}

// Errors that callers branch on.
var (
	ErrCircuitClosed = errors.New("circuit closed")
	ErrMalformed     = errors.New("malformed message")
	ErrIntegrity     = errors.New("cell failed integrity check")
	ErrStreamClosed  = errors.New("stream closed")
)

// DestroyedError reports that a relay tore the circuit down.
type DestroyedError struct{ Reason DestroyReason }

func (e *DestroyedError) Error() string { return "circuit destroyed: " + e.Reason.String() }

// RelayBusy reports a refusal for lack of resources: the relay is up and
// speaks the protocol, so it is no reason to give up on it (discovery
// does not count it against a guard).
func (e *DestroyedError) RelayBusy() bool { return e.Reason == DestroyResource }

// Is makes every DestroyedError match ErrCircuitClosed.
func (e *DestroyedError) Is(target error) bool { return target == ErrCircuitClosed }

var cellPool = sync.Pool{New: func() any { b := make([]byte, CellSize); return &b }}

func getCell() *[]byte { return cellPool.Get().(*[]byte) }

func putCell(b *[]byte) {
	if b != nil && len(*b) == CellSize {
		cellPool.Put(b)
	}
}

// readCell reads one cell. It blocks on a one-byte read first so that an idle
// link holds no cell buffer.
func readCell(r io.Reader) (*[]byte, error) {
	var first [1]byte
	if _, err := io.ReadFull(r, first[:]); err != nil {
		return nil, err
	}
	b := getCell()
	(*b)[0] = first[0]
	if _, err := io.ReadFull(r, (*b)[1:]); err != nil {
		putCell(b)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return b, nil
}

// batchCells is how many cells one link read or write carries at most:
// every link write costs a yamux frame and a hand-off to its send loop,
// and every 16 KiB TLS record of it a system call, so cells that are ready
// together travel together. 15 because a yamux frame is at most 64 KiB
// with its 12-byte header: 16 cells (64 KiB) would take a second frame,
// and a fifth TLS record and system call, for their last 12 bytes, where 15
// go in one frame of four records.
const batchCells = 15

var batchPool = sync.Pool{New: func() any { b := make([]byte, batchCells*CellSize); return &b }}

func getBatch() *[]byte  { return batchPool.Get().(*[]byte) }
func putBatch(b *[]byte) { batchPool.Put(b) }

// readBatch reads at least one whole cell, and as many more whole cells as
// have already arrived, up to batchCells. Like readCell it holds no buffer
// while the link is idle. It returns the batch and its length in bytes.
func readBatch(r io.Reader) (*[]byte, int, error) {
	var first [1]byte
	if _, err := io.ReadFull(r, first[:]); err != nil {
		return nil, 0, err
	}
	b := getBatch()
	buf := *b
	buf[0] = first[0]
	n, err := io.ReadAtLeast(r, buf[1:], CellSize-1)
	n++
	if err == nil {
		if rem := n % CellSize; rem != 0 {
			var k int
			k, err = io.ReadFull(r, buf[n:n+CellSize-rem])
			n += k
		}
	}
	if err != nil {
		putBatch(b)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, 0, err
	}
	return b, n, nil
}

// encodeCells lays data out as relay cells of cmd in buf, one cell when data
// is empty, and returns how many it used. data must fit in batchCells cells.
func encodeCells(buf []byte, cmd byte, stream uint16, data []byte) int {
	n := 0
	for {
		k := min(len(data), MaxCellData)
		c := buf[n*CellSize : (n+1)*CellSize]
		c[0] = cmdRelay
		encodeRelay(c[1:], cmd, stream, data[:k])
		data = data[k:]
		n++
		if len(data) == 0 {
			return n
		}
	}
}

// relayMsg is a decoded relay body.
type relayMsg struct {
	cmd    byte
	stream uint16
	data   []byte // aliases the cell buffer
}

// encodeRelay writes the plaintext relay header and data into body (which is
// bodyLen long) and zeroes the padding. The tag is filled in by the
// caller's layer (wideLayer.seal).
func encodeRelay(body []byte, cmd byte, stream uint16, data []byte) {
	if len(data) > MaxCellData {
		panic("circuit: relay data too long")
	}
	body[offCmd] = cmd
	binary.BigEndian.PutUint16(body[offStream:], stream)
	binary.BigEndian.PutUint16(body[offLen:], uint16(len(data)))
	n := copy(body[relayHdrLen:], data)
	clear(body[relayHdrLen+n : offTag])
}

// decodeRelay parses a relay body whose layer recognized it.
func decodeRelay(body []byte) (relayMsg, error) {
	if len(body) != bodyLen {
		return relayMsg{}, fmt.Errorf("relay body of %d bytes: %w", len(body), ErrMalformed)
	}
	m := relayMsg{cmd: body[offCmd], stream: binary.BigEndian.Uint16(body[offStream:])}
	n := int(binary.BigEndian.Uint16(body[offLen:]))
	if m.cmd == 0 || m.cmd > relayMaxCmd {
		return relayMsg{}, fmt.Errorf("relay command %d: %w", m.cmd, ErrMalformed)
	}
	if n > MaxCellData {
		return relayMsg{}, fmt.Errorf("relay data length %d: %w", n, ErrMalformed)
	}
	m.data = body[relayHdrLen : relayHdrLen+n]
	switch m.cmd {
	case relayBegin, relayData, relayEnd, relayConnected, relayFin, relayResolve, relayResolved:
		if m.stream == 0 {
			return relayMsg{}, fmt.Errorf("relay command %d on stream 0: %w", m.cmd, ErrMalformed)
		}
	case relayExtend, relayExtended, relayEstablishIntro, relayIntroEstablished, relayIntroduce1, relayIntroduce2,
		relayIntroduceAck, relayEstablishRendezvous, relayRendezvousEstablished, relayRendezvous1, relayRendezvous2,
		relayRecordPut, relayRecordGet, relayRecordResult:
		if m.stream != 0 {
			return relayMsg{}, fmt.Errorf("relay command %d on a stream: %w", m.cmd, ErrMalformed)
		}
	}
	return m, nil
}

// beginMsg is the payload of BEGIN: where the exit should connect.
type beginMsg struct {
	host string
	port uint16
}

func (b beginMsg) encode() ([]byte, error) {
	if b.host == "" || len(b.host) > 255 {
		return nil, fmt.Errorf("host of %d bytes: %w", len(b.host), ErrMalformed)
	}
	if b.port == 0 {
		return nil, fmt.Errorf("port 0: %w", ErrMalformed)
	}
	out := make([]byte, 3+len(b.host))
	binary.BigEndian.PutUint16(out, b.port)
	out[2] = byte(len(b.host))
	copy(out[3:], b.host)
	return out, nil
}

func decodeBegin(p []byte) (beginMsg, error) {
	if len(p) < 3 {
		return beginMsg{}, fmt.Errorf("begin of %d bytes: %w", len(p), ErrMalformed)
	}
	port := binary.BigEndian.Uint16(p)
	n := int(p[2])
	if port == 0 || n == 0 || len(p) != 3+n {
		return beginMsg{}, fmt.Errorf("begin port %d host length %d in %d bytes: %w", port, n, len(p), ErrMalformed)
	}
	host := string(p[3:])
	for i := 0; i < len(host); i++ {
		if c := host[i]; c <= ' ' || c == 0x7f {
			return beginMsg{}, fmt.Errorf("begin host has control byte: %w", ErrMalformed)
		}
	}
	return beginMsg{host: host, port: port}, nil
}

// extendMsg asks a hop to extend the circuit to the next relay.
type extendMsg struct {
	peer      peer.ID
	addrs     []ma.Multiaddr
	handshake []byte // the CREATE payload for the next hop
}

func (e extendMsg) encode() ([]byte, error) {
	pid := []byte(e.peer)
	if len(pid) == 0 || len(pid) > 255 {
		return nil, fmt.Errorf("peer ID of %d bytes: %w", len(pid), ErrMalformed)
	}
	if len(e.handshake) == 0 || len(e.handshake) > maxHandshake {
		return nil, fmt.Errorf("handshake of %d bytes: %w", len(e.handshake), ErrMalformed)
	}
	out := []byte{byte(len(pid))}
	out = append(out, pid...)
	var addrs [][]byte
	for _, a := range e.addrs {
		if len(addrs) == relayExtendLim {
			break
		}
		b := a.Bytes()
		if len(b) > 255 {
			continue
		}
		addrs = append(addrs, b)
	}
	out = append(out, byte(len(addrs)))
	for _, b := range addrs {
		out = append(out, byte(len(b)))
		out = append(out, b...)
	}
	out = binary.BigEndian.AppendUint16(out, uint16(len(e.handshake)))
	out = append(out, e.handshake...)
	if len(out) > MaxCellData {
		return nil, fmt.Errorf("extend of %d bytes does not fit a cell: %w", len(out), ErrMalformed)
	}
	return out, nil
}

func decodeExtend(p []byte) (extendMsg, error) {
	var e extendMsg
	bad := func(what string) (extendMsg, error) {
		return extendMsg{}, fmt.Errorf("extend: %s: %w", what, ErrMalformed)
	}
	if len(p) < 1 {
		return bad("empty")
	}
	n := int(p[0])
	p = p[1:]
	if n == 0 || len(p) < n {
		return bad("peer ID length")
	}
	id, err := peer.IDFromBytes(p[:n])
	if err != nil {
		return bad("peer ID")
	}
	e.peer = id
	p = p[n:]
	if len(p) < 1 {
		return bad("address count")
	}
	count := int(p[0])
	p = p[1:]
	if count > relayExtendLim {
		return bad("too many addresses")
	}
	for i := 0; i < count; i++ {
		if len(p) < 1 {
			return bad("address length")
		}
		l := int(p[0])
		p = p[1:]
		if len(p) < l {
			return bad("address")
		}
		a, err := ma.NewMultiaddrBytes(p[:l])
		if err != nil {
			return bad("address")
		}
		e.addrs = append(e.addrs, a)
		p = p[l:]
	}
	if len(p) < 2 {
		return bad("handshake length")
	}
	hl := int(binary.BigEndian.Uint16(p))
	p = p[2:]
	if hl == 0 || hl > maxHandshake || len(p) != hl {
		return bad("handshake")
	}
	e.handshake = append([]byte(nil), p...)
	return e, nil
}

// Link payloads for CREATE and CREATED carry a length-prefixed handshake.
func putHandshake(cell []byte, cmd byte, hs []byte) {
	cell[0] = cmd
	binary.BigEndian.PutUint16(cell[1:], uint16(len(hs)))
	n := copy(cell[3:], hs)
	clear(cell[3+n:])
}

func getHandshake(cell []byte) ([]byte, error) {
	if len(cell) != CellSize {
		return nil, fmt.Errorf("cell of %d bytes: %w", len(cell), ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(cell[1:]))
	if n == 0 || n > maxHandshake {
		return nil, fmt.Errorf("handshake length %d: %w", n, ErrMalformed)
	}
	return cell[3 : 3+n], nil
}
