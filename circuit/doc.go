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
// Flow control: a sender may have 128 DATA cells of one stream (512 KiB)
// and 256 of the whole circuit (1 MiB) that the far edge has not credited
// with a SENDME; the receiver credits a stream 32 cells at a time as the
// application reads, and the circuit 64 cells at a time as cells arrive.
// A stream whose reader stops therefore stops only its own sender, and
// what waits for it is bounded by its window. A peer that sends beyond a
// window, or credits more than it was owed, breaks the protocol.
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
// OnionKeyGrace. With RelayOptions.OnionKeyFile (node sets it to
// onion-keys.json in the data directory) both keys are kept on disk, mode
// 0600, rewritten at each rotation, so a relay that restarts still answers
// to the key its published descriptor names. Primitives: crypto/ecdh X25519, crypto/hkdf, crypto/hmac
// with SHA-256, AES-256-CTR and AES-GCM from the standard library.
//
// # Links
//
// Every pikcio host is built with LinkOptions, so that a link to a relay
// that died or hangs is found dead within seconds and the circuits over
// it fail (a relay sends DESTROY back for its part; the client's streams
// end with an error the application sees). Links are dialed over TCP
// first (a dead process's kernel closes its TCP connections at once),
// QUIC 300 ms later. yamux pings a link idle for 1 s and gives a ping or
// a write 3 s; QUIC links dialed by this host have a 4 s idle timeout
// with 1 s keep-alives (QUIC takes the smaller of both ends' timeouts,
// and a circuit's links are always dialed by the node before them) and
// give an unanswered handshake 1 s. A client told of a broken first-hop
// link (ClientOptions.LinkLost) lets its path selection avoid that relay.
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
//     a window overrun, or an EXTEND back to the previous hop closes that
//     circuit only (with DESTROY and a reason), never the relay; circuits
//     per previous hop, streams per circuit and handshakes per second are
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
