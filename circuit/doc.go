// Package circuit builds onion circuits over libp2p and carries TCP streams
// through them.
//
// A client (Client.Build) makes a circuit through one to eight relays,
// three by default: it completes a handshake with the first hop, then asks
// the last hop so far to extend the circuit to the next one (telescoping).
// Streams (Circuit.OpenStream) are opened at the last hop, the exit, which
// resolves names and connects through an ExitDialer (package exitnode). A
// Relay serves every hop's side. Each stream is a net.Conn with CloseWrite.
//
// # Wire format
//
// Adjacent hops talk over a libp2p connection (TCP or QUIC, with libp2p's
// own TLS or Noise security and yamux). Each circuit uses one libp2p stream
// per link, under the protocol ID /pikcio/circuit/1, so a circuit needs no
// identifier on the wire and one busy circuit cannot block another on the
// same link (yamux has a window per stream).
//
// Every cell on a link is exactly CellSize (4096) bytes: one command byte
// and a payload.
//
//	CREATE  (1)  client -> hop: u16 length, handshake message, zero padding
//	CREATED (2)  hop -> client: u16 length, handshake reply, zero padding
//	RELAY   (3)  a 4095-byte relay body under one encryption layer per hop
//	DESTROY (4)  one reason byte; tears the circuit down hop by hop
//
// A relay body, once every layer is off, is
//
//	recognized u16 (zero) | MAC [16] | command u8 | stream u16 | length u16 |
//	data [length] | zero padding to 4095 bytes
//
// with the relay commands BEGIN (u16 port, u8 length, host), CONNECTED,
// DATA, FIN (half-close: no more data from the sender), END (one reason
// byte, endreason.Reason), SENDME (flow-control credit), EXTEND (peer ID,
// up to 16 multiaddrs, the next hop's CREATE message), EXTENDED (its
// CREATED reply) and DROP (padding). Stream 0 is the circuit itself.
//
// Cells that are ready together travel together: a link read takes every
// whole cell that has arrived (up to 16) and a link write sends a batch,
// because each write is a yamux frame, a TLS record and a system call.
//
// Why 4096 bytes: cells are fixed-size so that their sizes tell an
// observer nothing, and padding costs bandwidth on small messages; but
// every cell also costs a fixed amount of work at every hop (framing,
// locks, a MAC). BenchmarkBulk3Hops (64 MiB down through 3 hops, all in one
// process on loopback, batching in place) was run three times for each
// size, interleaved, on the 2-core development machine when it was quiet:
// 2048-byte cells gave a median of 191 MB/s, 4096-byte cells 221 MB/s and
// 8192-byte cells 280 MB/s (under heavy load from other work the medians
// were 49, 86 and 66 MB/s). 4096 is kept: it clears the 150 MB/s bar with
// room, while every small message (a SENDME, a BEGIN, an HTTP request, a
// keystroke) costs half what it would in an 8192-byte cell, and so does
// every cell a flow-control window lets wait in memory. Tor's 514 bytes
// suit links where per-cell work is cheap next to bandwidth; here they
// would cost most of the speed.
//
// # Flow control
//
// Two levels, both counted in DATA cells and credited with SENDME (issue
// 16; the constants are in options.go).
//
// Circuit level: congestion control after Tor's proposal 324 (TCP Vegas),
// run by whichever edge sends. The receiving edge credits 64 cells
// (circuitIncr) with a circuit SENDME as they arrive, as before. The sender
// may have cwnd cells in flight; it notes when every 64th cell left, and the
// SENDME that credits it gives a round-trip sample. The smallest sample
// ever seen stands for the empty path (minRTT), the smallest of the last
// round trip for the path now, and once per round trip (a window credited)
// the cells queued along the path are estimated as
//
//	queue = cwnd * (roundMin - minRTT) / roundMin
//
// In slow start cwnd grows by 64 cells per SENDME (doubling each round
// trip) until queue exceeds gamma, then drops by the queue and leaves slow
// start. After that, once per round trip: grow by a step while queue is
// under alpha (and the window is in use), shrink by a step over beta, and
// by the whole queue over delta. alpha, beta, gamma and delta are 32, 96,
// 64 and 256 cells, or 1/16, 1/8, 1/8 and 1/2 of cwnd when that is more;
// the step is 64 cells or cwnd/16. cwnd starts at 256 cells (1 MiB, the
// fixed window it replaced) and stays within 256 and 8192 cells (32 MiB,
// 100 MiB/s at a 320 ms round trip). The floor keeps every path at least
// as fast as the fixed window was: on loopback, where a busy CPU is the
// queue, Vegas would otherwise shrink the window below what keeps three
// relays busy. A circuit's queue is therefore at most about 1 MiB plus
// what Vegas allows above it.
//
// Why: a fixed window caps a circuit at one window per round trip (1 MiB
// per 60 ms at 10 ms per link: 7 MiB/s), and a window large enough for a
// long path fills every queue on a short one. Vegas grows the window to the
// bandwidth-delay product and stops when the round trip starts to grow,
// that is when cells start to wait at the bottleneck: a relay's queue per
// circuit stays at a few tens of cells, and circuits through one
// bottleneck see the same delay and settle on similar windows (fair
// shares; TestFairShare). The round's smallest sample, not an average,
// judges the queue because a loaded machine's scheduling jitter only ever
// adds to a sample, while a standing queue raises all of them; thresholds
// that scale with the window keep a few milliseconds of jitter on a long
// path from reading as a queue. Loss-based designs (Reno, CUBIC) do not
// apply: links are reliable, a relay never drops a cell, and the queue
// would simply grow. A SENDME that credits more than is in flight breaks
// the protocol and closes the circuit.
//
// Stream level: receive windows tuned by the reader. A new stream may send
// 32 cells (128 KiB) unasked; the receiver grants 32 more with a stream
// SENDME as its reader consumes, keeping queued plus granted cells within
// the stream's window. When a reader empties the queue after reading
// half a window since the last growth, it keeps up and the window limits
// it, so the window doubles, up to 8192 cells (32 MiB). A reader that
// falls behind leaves cells queued and its window where it is, so one slow
// reader stalls only its own stream, with what waits for it bounded by its
// window. Windows are reserved from budgets: a circuit's streams together
// hold at most circuitBuffer (32 MiB), of which grown windows take at
// most three quarters so that new streams find their first window; an exit
// relay's streams together at most RelayOptions.MaxBufferedBytes. A BEGIN
// that finds no room is refused with END, a client's OpenStream fails.
// This is what the receiving edge enforces: a DATA cell beyond its
// stream's grant closes the circuit, so a circuit can make an edge hold at
// most its budget, however many streams it opens (issue 14, item 4), and
// credit beyond the largest window is a protocol violation too. Buffers
// are sized to the payload: a cell of a few bytes is held as a few bytes.
//
// An exit connection's kernel send buffer is capped
// (RelayOptions.ExitSendBuffer, 128 KiB), since what waits there for a
// destination that does not read is outside every window; open exit
// connections are capped per relay (MaxExitStreams).
//
// Links: each circuit is one yamux stream per link, whose window must not
// cap it first. go-yamux starts a stream at 256 KiB and doubles it by an
// RTT estimate (see linkWindowMax in links.go); LinkOptions lets it grow to
// 32 MiB, the largest congestion window. See bench/README.md for
// TCP+yamux against QUIC.
//
// # Optimistic data
//
// A stream opened with a context marked by internal/earlydata is returned
// as soon as its BEGIN has left, and its first DATA follows the BEGIN at
// once; the exit queues it (within the stream's window) while it resolves
// and connects, writes it to the destination while CONNECTED travels
// back, and answers a failed connect with END, which the client's next
// Read returns as the exit's error (ErrRefused, ErrPolicy, ...). This
// saves a circuit round trip on every new connection. The HTTP proxy uses
// it for every plain request; the SOCKS port by default replies success at
// once (see proxy/early.go for the trade-off and the opt-out).
//
// # Build round trips
//
// A telescoping build costs one circuit round trip per hop: 1 + 2 + 3 link
// round trips for three hops (about 127 ms at 10 ms per link). It stays
// off a connection's critical path because the proxy pool prebuilds
// circuits. A one-pass build was considered and not built: the client
// would send the CREATEs of all hops at once, the inner ones sealed to
// each hop's onion key (as in Sphinx) since hop i's session keys do not
// exist before hop i answers, and each hop would answer when the next one
// has, one path round trip in all (3 link round trips). The data keys
// would keep forward secrecy (each still comes from a fresh ntor-v3
// exchange), but the routing information of every build would then be
// exposed to a later theft of an onion key, and a hop could no longer
// refuse an extension before the client committed to the whole path. That
// trade is not worth half of a build that prebuilding already hides.
//
// # Handshake
//
// Each relay has an X25519 onion key B, bound to its libp2p identity key
// ID by a signature over (context, ID, B, expiry); the client checks that
// binding (OnionKey.Verify, or a signed relay descriptor) before use. The
// handshake is modelled on Tor's ntor-v3 (tor-spec 5.1.4, proposal 332),
// without its encrypted extension messages:
//
//	client: x, X = fresh X25519 key pair; CREATE = type | B | X | time
//	relay:  y, Y = fresh key pair; secret_input = X^y | X^b | ID | B | X | Y | time | PROTOID
//	        KEY_SEED = HMAC-SHA256(PROTOID:key_extract, secret_input)
//	        verify   = HMAC-SHA256(PROTOID:verify, secret_input)
//	        AUTH     = HMAC-SHA256(PROTOID:auth, verify | ID | B | Y | X | time | PROTOID | "server")
//	        CREATED  = Y | AUTH
//	client: computes Y^x and B^x, the same values, and checks AUTH in constant time.
//	both:   Kf | Kb | Df | Db = HKDF-Expand-SHA256(KEY_SEED, PROTOID:key_expand, 128)
//
// Only the holder of b can compute X^b, so only the real relay completes
// the handshake, and the client knows it. The session keys depend on the
// ephemeral x and y, which are discarded, so recording a circuit and later
// stealing the onion key does not decrypt it (forward secrecy). The relay
// refuses a CREATE whose X it has already seen or whose timestamp is more
// than ReplayWindow from its clock, so a replayed handshake fails outright
// (and could not be completed without x anyway). An onion key rotates
// (Relay.RotateOnionKey); the previous key is still accepted for
// OnionKeyGrace. Primitives: crypto/ecdh X25519, crypto/hkdf, crypto/hmac
// with SHA-256, AES-256-CTR and AES-GCM from the standard library.
//
// # Relay crypto
//
// Each hop shares with the client an AES-256-CTR keystream per direction
// (Kf, Kb) and a GMAC key per direction (Df, Db; AES-256-GCM over no
// plaintext, nonce = the cell's sequence number for that hop and
// direction, so a nonce never repeats under a key). To send to hop i the
// client computes the MAC with hop i's key over the body (MAC field zero),
// then applies the forward keystreams of hops i, i-1, ..., 1. Each hop
// removes its layer from every forward cell and checks whether the cell is
// for it: recognized is zero and the MAC verifies at its next sequence
// number. If not, the cell goes on; at the last hop an unrecognized cell
// is an integrity failure and closes the circuit. Backward, the
// originating hop adds its MAC and layer, every hop on the way adds its
// layer, and the client removes layers one by one until one recognizes the
// cell. Integrity is end to end between the client and the hop a cell is
// for, the MAC covers the order of cells (sequence numbers), and the
// keystreams make the same cell look different on every link.
//
// This is the design of Tor's relay crypto before proposal 359 (with GMAC
// instead of a running SHA-1 digest). It leaves open the tagging attack
// that Counter Galois Onion closes: counter-mode layers are malleable, so a
// malicious first hop can XOR a pattern into a cell and a colluding exit
// can see the pattern after removing its layer, confirming that the two
// see the same circuit, before the MAC check fails and the circuit closes.
// Any such tampering is detected and kills the circuit (it cannot change
// what is delivered), but it can be used to link the two ends at the cost
// of a destroyed circuit. A wide-block or CGO construction would close
// this; it needs a primitive (a tweakable wide-block cipher, or POLYVAL)
// that the standard library and golang.org/x/crypto do not export.
//
// # Threat model
//
// pikcio protects who talks to whom against an observer who sees some of
// the links and controls some of the relays, but not the first and last
// hop of the same circuit at the same time.
//
//   - The first hop learns the client's libp2p identity and address and the
//     next hop; it never sees a destination or stream data (they are under
//     the other hops' layers).
//   - A middle hop learns only its neighbours. It cannot read, alter (the
//     MAC catches it at the edge) or replay cells (sequence numbers), and
//     it cannot tell how far it is from either end.
//   - The exit learns destinations and stream data (use TLS end to end for
//     content), and the middle hop, but not the client.
//   - Link observers see fixed-size cells inside libp2p's encryption.
//     Timing and volume are not hidden: there is no padding traffic beyond
//     DROP cells yet, so an observer at both ends can correlate flows, as
//     with Tor.
//   - Relays defend themselves: a malformed or unexpected cell, a bad MAC,
//     a window overrun, over-crediting, or an EXTEND back to the previous
//     hop closes that circuit only (with DESTROY and a reason), never the
//     relay; circuits per previous hop, streams per circuit, handshakes
//     per second, open exit connections and buffered stream data are
//     capped (RelayOptions, with defaults in DefaultRelayOptions).
//   - Who may open a circuit: RelayOptions.AdmitPeer sees only the previous
//     hop's peer ID, before the handshake. pikcio's node uses it so that a
//     relay serving as a guard admits only enrolled nodes (package tis);
//     a middle or exit relay sees an enrolled relay as its previous hop,
//     never the client.
//   - Left open: a relay extends to whatever addresses an EXTEND names, so
//     a client can make a relay dial (but not authenticate to) arbitrary
//     addresses; the tagging attack above; and end-to-end timing
//     correlation.
package circuit
