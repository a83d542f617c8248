// Package circuit builds onion circuits over libp2p and carries TCP streams
// through them.
//
// A client (Client.Build) makes a circuit through one to eight relays,
// three by default: it completes a handshake with the first hop, then asks
// the last hop so far to extend the circuit to the next one (telescoping).
// Streams (Circuit.OpenStream) are opened at the last hop, the exit, which
// resolves names and connects through an ExitDialer (package exitnode). A
// Relay serves every hop's side. Each stream is a net.Conn with CloseWrite.
// Circuit.Resolve and Circuit.ResolvePTR ask the exit to resolve a name or
// an address (RESOLVE and RESOLVED, resolve.go), for SOCKS RESOLVE.
//
// # Wire format
//
// Adjacent hops talk over a libp2p connection (TCP or QUIC, with libp2p's
// own TLS or Noise security and yamux). Each circuit uses one libp2p stream
// per link, under the protocol ID /pikcio/circuit/2 (ProtocolID; /1 had the
// relay crypto before issue 14's second round, see Relay crypto), so a circuit needs no
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
//	RELAY_EARLY (5)  a RELAY cell that may carry an EXTEND (forward only)
//
// As with Tor's RELAY_EARLY, a relay passes an early cell on as one, takes
// an EXTEND only from one, and lets at most seven through a circuit: no
// circuit is extended beyond eight hops, however its client loops it. The
// client sends its first cells not meant for the first hop as early cells
// too, up to the seven, so a guard sees as many on every circuit whatever
// its length. A
// relay also accepts only a burst of 64 DROP cells for itself, then 8 a
// second: padding costs every hop work and no flow-control credit.
//
// A relay body, once every layer is off, is
//
//	command u8 | stream u16 | length u16 | data [length] | zero padding |
//	tag [16]
//
// 4095 bytes in all, where the tag is the authenticator of the hop the
// cell is for (see Relay crypto)
//
// with the relay commands BEGIN (u16 port, u8 length, host), CONNECTED,
// DATA, FIN (half-close: no more data from the sender), END (one reason
// byte, endreason.Reason), SENDME (flow-control credit), EXTEND (peer ID,
// up to 16 multiaddrs, the next hop's CREATE message), EXTENDED (its
// CREATED reply) and DROP (padding). Stream 0 is the circuit itself.
//
// Cells that are ready together travel together: a link read takes every
// whole cell that has arrived (up to 15) and a link write sends a batch,
// because each write is a yamux frame and a hand-off to its send loop, and
// each 16 KiB TLS record of it a system call. 15 cells are the most that
// fit one 64 KiB yamux frame with its header (16 took a second frame and
// a fifth record for 12 bytes). An exit reads its destination in pieces
// of a whole batch while data keeps coming, so each read leaves as one
// write.
//
// Why 4096 bytes: cells are fixed-size so that their sizes tell an
// observer nothing, and padding costs bandwidth on small messages; but
// every cell also costs a fixed amount of work at every hop (framing,
// locks, an authenticator). BenchmarkBulk3Hops (64 MiB down through 3 hops, all in one
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
// # Joined circuits
//
// For Matryoshka services (package service, issue 17) circuits can be
// joined (join.go). Relay commands on stream 0, each answered by the last
// hop with the formats and tables of package service: ESTABLISH_INTRO
// (12) / INTRO_ESTABLISHED (13), INTRODUCE1 (14) forwarded unchanged as
// INTRODUCE2 (15) on the service's circuit and answered with
// INTRODUCE_ACK (16, one status byte), ESTABLISH_RENDEZVOUS (17) /
// RENDEZVOUS_ESTABLISHED (18), and RENDEZVOUS1 (19), after which the
// rendezvous relay sends the client RENDEZVOUS2 (20) and splices the two
// circuits: a cell from one that no layer of the relay recognizes is sent
// on, under the other circuit's backward layer, where it would otherwise
// close the circuit. The relay is the last hop of both and handles only
// DROP for itself from then on. ESTABLISH_INTRO is signed over a circuit
// binding, HMAC(forward MAC key of the last hop, "pikcio-svc circuit
// binding") (Circuit.Binding), so an intro point cannot replay it on
// another circuit. Each end then appends a virtual hop whose layer is made
// from the end-to-end hs-ntor keys (the client's forward direction is the
// service's backward one); the client opens streams to it with BEGIN, and
// the service answers them by dialling its local target, never an exit.
// Closing either joined circuit closes the other; the relay's tables
// forget a circuit when it closes.
//
// # Records
//
// A client can ask the last hop of a circuit to do one DHT operation for
// it (records.go, issue 13): RECORD_PUT (21) and RECORD_GET (22), each
// answered by RECORD_RESULT (23) with a status (ok, not found, refused,
// busy, failed, unsupported) and, for a get, the record. The messages
// travel on stream 0 in fragments of one cell, each headed by an
// operation ID and a last-fragment flag, so that up to MaxRecordOps (8)
// operations may be in flight on one circuit. A relay serves only the
// namespaces its node told it (Relay.ServeRecords: the trust records),
// from its own DHT, whose validators check every value put; other keys
// are refused, and a relay told nothing answers "unsupported". Keys are
// at most MaxRecordKey (256) printable bytes, values MaxRecordValue (48
// KiB); a circuit gets DefaultRecordRate operations a second (burst
// DefaultRecordBurst) and each operation DefaultRecordTimeout (10 s),
// after which it fails; a client paces its requests to the default rate
// with half the burst (it waits, it is not answered busy: the other half
// is the relay's slack for requests held up or bunched on the way). A request to a middle hop, a request over the
// reassembly caps, or a malformed one closes the circuit. Because a
// circuit costs its client an admission token at the guard, the rate per
// circuit also bounds the DHT work one enrollment can ask of relays. The
// DHT servers near a key see the relay; the relay sees a circuit from
// its previous hop, never the client.
//
// RecordClient is the client side (recordclient.go): a RecordStore over
// circuits that a RecordBuilder makes to a relay that serves records.
// Puts and gets never share a circuit, so the relay that sees whose
// record is put never sees that circuit's gets. Each kind keeps one
// circuit in use: the gets' for RecordClientOptions.GetDirtiness (10
// min) from its first use, the puts' for PutDirtiness (an hour). An
// operation that fails for another reason than the record's (not found,
// refused) retires its circuit, which closes when its last operation
// ends, and is tried again on a new circuit that avoids the last hops
// tried, up to Tries (3). Retire (a new circuit identity) makes the next
// operations build new circuits; Close closes the circuits in use.
//
// # Circuit identities
//
// Identities (identities.go) are a client's circuit identities: the
// libp2p host, with a fresh key (NewDialHost), that its circuits are
// built from, never the node's own. A new one is made every
// IdentityOptions.Period (a day, Start's expired callback tells the
// caller, who calls Rotate) and at each Rotate (Tor's NEWNYM). New
// circuits go on the new host (Identities.Build, which builds again
// once a circuit that a rotation overtook during its build); the old
// host closes once it has no circuit and no build under way, or after
// IdentityOptions.Drain (10 min) in any case. A guard so sees a new
// peer ID each period and nothing in common with the last but the
// address. Close waits for the loop and closes every host.
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
// fixed window it replaced) and stays within 256 and 16384 cells (64 MiB,
// 100 MiB/s at a 640 ms round trip; see below for why). The floor keeps every path at least
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
// it, so the window grows sixteenfold (streamGrowth), up to 16384 cells
// (64 MiB, streamWindowMax = cwndMax: a stream never needs more than its
// circuit may have in flight). A reader that falls behind leaves cells queued and
// its window where it is, so one slow reader stalls only its own stream,
// with what waits for it bounded by its window. Windows are reserved from
// budgets: a circuit's streams together hold at most circuitBuffer (72
// MiB): growth takes what fits below circuitGrowth (64 MiB, so a lone
// stream reaches the largest window), and the rest is the first windows
// of 64 new streams; an exit relay's streams together at most
// RelayOptions.MaxBufferedBytes. A BEGIN that finds no room is refused
// with END, a client's OpenStream fails.
//
// Why these values (issue 16, bench/wan at 50 ms per link, a 306 ms
// circuit round trip): 50 MiB/s over 306 ms is 15 MiB (3900 cells) in
// flight, plus what waits for the reader. Growth used to double and be
// refused outright when the doubled window passed three quarters of a
// 32 MiB circuit budget, so a lone stream stopped at 4096 cells (16 MiB):
// about 4000 cells in flight at most, and 28 MiB/s measured (24 under
// load) for a 6 s download. The largest window is now reachable, and
// sixteenfold growth reaches 8192 cells in two round trips (32, 512, 8192
// cells: 0.6 s at 50 ms per link, and 32 MiB per 306 ms is already 100
// MiB/s) and the largest in three, rather than five with quadrupling or
// nine with doubling. It matters because every new stream starts at 32 cells (0.4
// MiB/s over a 306 ms round trip) and a download's first round trips are
// spent at a fraction of its speed: bench/wan -ramp at 50 ms per link, on
// a circuit already used, reached its full rate 1.75 to 2.25 s into the
// download with quadrupling and 1 to 1.25 s with sixteenfold growth (load
// 10-13). Faster growth costs no memory a reader does not use: the bound
// is the largest window and the budgets, not the rate of growth; what it
// changes is that the first stream to keep up may take most of
// circuitGrowth sooner, as it would a few round trips later.
//
// The largest congestion window went from 8192 cells (32 MiB) to 16384
// (64 MiB) in issue 16's third round. 32 MiB is 100 MiB/s only while the
// round trip stays at the empty path's 306 ms, and on a busy path it does
// not: with the window at 8192 and about 7000 cells in flight, one stream
// ran at 64 MiB/s (an average round trip of 0.43 s) while the smallest
// sample of each round stayed at 313-345 ms, under Vegas's thresholds,
// so Vegas rightly kept the window at its maximum and the maximum capped
// the stream (the "64" plateau of bench/wan -ramp at 50 ms, which 20
// circuits together reached too). With 16384, one pair run in turn at
// load 17-21: 41.8 -> 54.2 MiB/s (medians of three), above 64 in most
// samples, up to 126 (the pair before it, at load 15-21, stalled in
// both builds: see bench/README.md for the figures of main against all
// of this round). Vegas's parameters stay: they scale with the
// window. The cost is memory only where a queue forms or a reader stops:
// a relay's queue per circuit is still what Vegas allows (it sees queues
// by the round trip, not by the window), a link's yamux window may grow to
// the same 64 MiB (linkWindowMax, reserved with the resource manager as
// it grows), and what a circuit can make a client hold goes from 40 to 72
// MiB, only while its reader, having kept up, stops.
//
// Before that, the congestion window was not what capped it: it reached
// cwndMax in slow start, and Vegas saw at most a few hundred cells queued
// (under gamma, cwnd/8); nor the links (a yamux window that
// capped a link would hold cells at the relay before it, a standing queue
// Vegas would have seen), nor the delay line or TCP buffers (the delay is
// in the line's user-space queue, the sockets around it are on loopback
// with no delay). What a circuit can make a client hold went from 32 to
// 40 MiB then.
//
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
// cap it first (see "Links" below for their security). go-yamux starts a
// stream at 256 KiB and doubles it by an RTT estimate (see linkWindowMax in links.go); LinkOptions lets it grow to
// 64 MiB, the largest congestion window. See bench/README.md for
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
// it for every plain request; the SOCKS port replies success at once only
// with client.socks_early_success (proxy.ServerOptions.SOCKSEarlySuccess;
// see proxy/early.go), since an early success loses the precise reply code
// (bench/wan at 10 ms per link: first byte 148 -> 84.5 ms with it on).
//
// Such a stream is not lost to a circuit that fails before the exit
// answered: the proxy pool keeps what was written before the answer (up
// to 64 KiB; a write beyond waits for it), and when the BEGIN goes
// unanswered within the pool's begin bound, the circuit dies, or the exit
// finds the circuit full, it opens the stream again by the rules its Dial
// uses for streams that wait for CONNECTED (another exit for an
// unanswered BEGIN, a fresh circuit for a dead one) and sends the kept
// bytes and FIN there (Stream.Connected; proxy/early.go replayConn), as
// Tor replays a stream's optimistic data. A destination's refusal is not
// retried. The first exit may have passed the bytes on before it went
// silent, so a request can reach its destination twice, as with Tor; an
// exit sees them anyway.
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
// than ReplayWindow from its clock (the client rounds its time down to five
// minutes, so that clients with slightly skewed clocks send the same time
// and a relay cannot link circuits by skew), so a replayed handshake fails outright
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
// Links are secured with libp2p's TLS 1.3 first and Noise second, both
// unchanged; LinkOptions names them so that TLS's records are corked
// (linksec.go): crypto/tls writes every record, at most 16 KiB, with a
// write of its own, so each batch of cells (a 60 KiB yamux frame) took
// four system calls, and on loopback each also runs the receiver's TCP
// input. Corked, a Write's records leave in one write and one segment;
// the bytes on the wire are the same. BenchmarkSOCKSDownload64MiB (the
// CPU time of the whole path per GiB, medians of three interleaved runs,
// load 11-12): 8.58 -> 7.58 cpu-s/GiB, and write system calls per 64 MiB
// download 21,945 -> 11,718. TLS stays first: with Noise first the same
// benchmark took 9.31 cpu-s/GiB against corked TLS's 8.24 (interleaved,
// load 12-17), since ChaCha20-Poly1305 costs more per byte than AES-GCM
// on a CPU with AES instructions (Noise already wrote up to 64 KiB per
// call).
//
// # Relay crypto
//
// Each hop shares with the client, per direction, a wide-block layer: the
// UIV shape of Counter Galois Onion (Tor proposal 359), an LRW2 tweakable
// AES-256 block cipher over the body's last 16 bytes (the tag T), tweaked
// by a universal hash of the rest C and of a chain value J, and AES-256 in
// counter mode over C with the tag's plaintext T' as IV; see wideLayer.
// The hash is GHASH (GCM's, under the keystream key) plus AES of J under
// a key of its own; the counter mode is GCM's. A cell is recognized by its
// tag alone, CGO's way: whoever originates a cell for hop i (the client,
// or hop i backward) puts auth(seq) = AES-256(Ka, seq) in the tag, the
// next of a sequence only it and hop i can compute, and wraps the body in
// hop i's layer; the client then wraps it in the forward layers of hops
// i-1, ..., 1. Each hop removes its layer from every forward cell and
// checks whether the cell is for it: the tag is its next authenticator.
// If not, the cell goes on; at the last hop an unrecognized cell is an
// integrity failure and closes the circuit. Backward, every hop on the way
// adds its layer, and the client removes layers one by one until one
// recognizes the cell. A body changed anywhere opens to a random tag (one
// chance in 2^128 of a match); the sequence covers the order of cells, and
// the layers make the same cell look different on every link.
//
// The layers are not malleable: a change to any bit of a cell makes the
// next hop's removal of its layer yield a random-looking body, and because
// each layer's chain value follows the cells through it, every later cell
// too. So the tagging attack on counter-mode layers (a first hop XORs a
// pattern into a cell, a colluding exit finds it after removing its layer
// and XORs it back) is closed: nothing of the pattern reaches the exit,
// and the hop the cell was for finds it unrecognized and destroys the
// circuit (TestTaggingGarbledAtNextHop). What a tampering hop can still do
// is destroy circuits; the client counts circuits destroyed for integrity
// after they were built against their guard (path bias, package
// discovery). Primitives: crypto/aes, crypto/cipher (CTR, GCM) only.
//
// Why this shape (protocol /2; /1, the first wide-block layers, had the
// tag first, separate CTR and hash keys, and a GMAC over every body): the
// per-cell cost had doubled with the wide blocks (a middle hop's 614 ns
// with counter-mode layers to 1355 ns, an edge's 1212 to 1929 ns) and
// bulk through SOCKS had fallen below its 220 MiB/s bar. Three passes over
// 4 KiB went: adding a layer is now one AES-GCM Seal, whose assembly runs
// CTR and GHASH in one interleaved pass (the tag at the body's end is
// where Seal puts its tag, so it works in place); the separate MAC is
// gone, both at the sender (a GMAC pass) and at the receiver (another),
// since the wide block already authenticates the tag; and no buffer
// escapes per cell. Removing a layer still takes two passes, as it must
// (the IV comes from a hash of the data): GHASH, as GCM additional data,
// whose value differs from GHASH of the same bytes as ciphertext by a
// constant per key (only the length block differs, and GHASH is linear in
// it), measured once when the layer is made; then CTR, done as an AES-GCM
// Seal under the nonce T'[:12], whose keystream (from counter 2) is that
// CTR keystream, and whose tag is thrown away. cipher.NewCTR, used until
// issue 16's last round, copied the key schedule into a new 512-byte
// stream for every cell and layer (three per cell at the client). The
// fused pass costs what NewCTR and its pass did, within 2%
// (BenchmarkOpenVsCTR, both in turn in one loop); what went is the
// garbage: BenchmarkRelayCrypto allocates 3 B per cell instead of 515,
// and BenchmarkSOCKSDownload64MiB 3.5 MB per 5 x 64 MiB instead of 30.6
// (19,700 objects instead of 73,000).
// The nonce of the GCM keystream is 96 bits of T', which is random: two
// cells of a layer share a keystream with probability q^2/2^97, where a
// circuit carries far fewer than 2^32 cells. Security is unchanged in
// kind: a tweakable wide-block cipher from AES, a GCM-style hash and
// counter mode under one key (H = AES(K, 0) is never a keystream block),
// 128-bit authentication, fresh keys per circuit from ntor-v3.
//
// Cost, protocol /1 against /2 with batches of 15, interleaved on the
// 2-core development machine, which other work kept busy throughout
// (load averages given). Per cell, medians of five (load 4.6):
// BenchmarkRelayCrypto, a middle hop's forward cell (open and check),
// 1815 -> 2023 ns, the same work within noise (fastest runs 1714 and
// 1633); BenchmarkEdgeCrypto, an edge sending (seal), 2349 -> 1256 ns;
// a middle hop's backward cell (BenchmarkRelayCryptoBackward) is now
// 1248 ns, and a hop's two edges together (BenchmarkEdgeCryptoRoundTrip)
// 3092 ns. BenchmarkBulk3Hops, medians of three (load 2): 182 -> 244
// MB/s; measured as CPU time instead (user and system of the whole
// process, all hops in one) per 64 MiB, medians of three at load 15-25:
// 0.707 s with /1, 0.637 s with /2's crypto alone, 0.522 s with batches of
// 15 cells as well. BenchmarkSOCKSDownload64MiB (-benchtime 5x -count 5,
// run before-after-after-before, medians of ten): at load 1.7-2.3, 191.8
// -> 232.2 MB/s (183 -> 221 MiB/s); at load 2, 196.7 -> 221.6 MB/s; at
// load 2-5, 91.4 -> 138.1 MB/s; at load 10-16, 39.8 -> 60.3 MB/s.
// BenchmarkBulk3Hops at load 2 again: 177 -> 229 MB/s.
//
// # Threat model
//
// pikcio protects who talks to whom against an observer who sees some of
// the links and controls some of the relays, but not the first and last
// hop of the same circuit at the same time.
//
//   - The first hop learns the client's address, the libp2p identity of
//     the host it builds from (pikcio's node uses a fresh one at each
//     start, never its DHT identity) and the next hop; it never sees a destination or stream data (they are under
//     the other hops' layers).
//   - A middle hop learns only its neighbours. It cannot read, alter (the
//     next hop's layer garbles the cell, the tag catches it at the edge),
//     tag (nothing of a change survives the next honest hop) or replay
//     cells (sequence numbers, chained layers), and it cannot tell how far
//     it is from either end.
//   - The exit learns destinations and stream data (use TLS end to end for
//     content), and the middle hop, but not the client.
//   - Link observers see fixed-size cells inside libp2p's encryption.
//     Timing and volume are not hidden: there is no padding traffic beyond
//     DROP cells yet, so an observer at both ends can correlate flows, as
//     with Tor.
//   - Relays defend themselves: a malformed or unexpected cell, a bad tag,
//     a window overrun, over-crediting, or an EXTEND back to the previous
//     hop closes that circuit only (with DESTROY and a reason), never the
//     relay; circuits per previous hop, streams per circuit, handshakes
//     per second, open exit connections and buffered stream data are
//     capped (RelayOptions, with defaults in DefaultRelayOptions). The
//     handshake budget is per previous hop as well as global, and is spent
//     only once a whole CREATE has arrived; links still being admitted are
//     capped per previous hop and in total and dropped after
//     PendingTimeout; so one flooding peer spends only its own share.
//   - Who may open a circuit: RelayOptions.AdmitPeer sees only the previous
//     hop's peer ID, before the handshake; RelayOptions.AdmitCircuit also
//     the admission token the first hop's CREATE carries (admission.go).
//     pikcio's node uses the latter so that a guard admits a client only
//     with an unlinkable token of the TIS (package tis/token), and a relay
//     without a token only as an enrolled relay; a middle or exit relay
//     sees an enrolled relay as its previous hop, never the client.
//   - An EXTEND cannot make a relay a proxy: the relay extends only to a
//     relay it holds a verified descriptor for (RelayOptions.ResolveHop),
//     dials only that descriptor's addresses, and only IP addresses with
//     TCP or QUIC (DialableAddr: no names, no /ws, no loopback or private
//     addresses unless the node is on a private network); every refusal is
//     answered after the same floor, ExtendFailureDelay (a verified relay
//     that is down fails at once: its liveness is public, and clients must
//     route around it); and the node's
//     host has a connection gater (Gater) with the same rule for every
//     dial, whoever asked for it.
//   - Left open: end-to-end timing correlation, and a relay destroying the
//     circuits it carries (which path bias makes visible).
//
// # Host and onion keys
//
// NewHost starts the libp2p host a node runs the protocol on (resource
// manager sized by ResourceManager, Gater, LinkOptions). A relay's
// KeepOnionKey rotates its onion key once less than half of
// OnionKeyLifetime is left and tells its owner, which republishes the
// descriptor.
package circuit
