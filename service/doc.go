// Package service holds the self-contained core of Matryoshka services
// (issue 17): services reached through pikcio by an address, the way Tor's
// onion services are, with neither side learning the other's network
// address. tor's rend-spec-v3 is the reference; this package has the
// formats, the cryptography and the checks, and no networking. The later
// wiring into circuit, node, proxy and the CLI is laid out at the end.
//
// # Addresses
//
// A service is its long-term Ed25519 key A (Identity). Its address
// (Address.String) is
//
//	base32(A | CHECKSUM | VERSION), CHECKSUM = SHA3-256(".pikcio checksum" | A | VERSION)[:2]
//
// 56 lowercase characters, reached as ADDRESS.pikcio; VERSION is 1. The
// address is self-authenticating: a descriptor opens only under the
// address whose key blinded and signed it. ParseAddress says what is
// wrong (length, alphabet, version, checksum, or a key that is not a point
// or is of small order, which would blind to a key anyone could sign for).
//
// # Time periods and key blinding
//
// Time is cut into periods (DefaultPeriodLength, one day, turning over at
// 12:00 UTC as in Tor; PeriodAt). For period N the service and its
// clients use the blinded key A' = h·A, h = clamp(SHA3-256("Derive
// temporary signing key\x00" | A | B | "key-blind" | N | length)), exactly
// rend-spec-v3 appendix A.2 (TestBlindingTorVector checks tor's own
// vector). Clients compute A' from the address (Address.Blind); only the
// service holds a' = h·a and signs under it (Ed25519 over the expanded
// key, verified by plain ed25519.Verify; its nonce prefix also depends on
// h, see blind.go). Scalar and point arithmetic is
// filippo.io/edwards25519. Without the address, A' of one period cannot be
// linked to A or to A' of another.
//
// # Descriptors
//
// Each period the service publishes a descriptor (SealDescriptor) in
// pikcio's DHT under DHTKey = "/pikcio-svc/" | hex(SHA3-256("pikcio-svc
// store-at" | A' | N)). The record is
//
//	version | period | period length | revision | A' | outer layer | signature by A'
//
// with two encrypted layers, as in rend-spec-v3 2.5. Each is AES-256-GCM
// under HKDF-SHA256(SECRET_DATA | subcredential | revision, salt) with a
// fresh salt and the header as associated data; subcredential =
// SHA3-256("subcredential" | SHA3-256("credential" | A) | A'), which only
// who knows the address can compute.
//
//   - Outer layer (SECRET_DATA = A'): whether the descriptor is open or
//     for contacts only, and for contacts only the client list; then the
//     inner layer.
//   - Inner layer (SECRET_DATA = A', plus the descriptor cookie when for
//     contacts only): the proof-of-work parameters and up to
//     MaxIntroPoints intro points, each a relay peer ID, the intro auth key
//     (Ed25519, one per intro point, unlinkable to A) and the service's
//     X25519 encryption key for INTRODUCE through it. Zero-padded to a
//     multiple of 512 bytes so the count of intro points does not show.
//
// Contacts only (Tor's client authorization): each contact has an X25519
// key the service knows. A fresh ephemeral key y per descriptor; for each
// contact, HKDF(X25519(y, contact), salt = subcredential) gives an
// 8-byte entry ID and a key that seals the 32-byte descriptor cookie. The
// list is padded with random entries to a multiple of 16 and shuffled.
// Without a listed key OpenDescriptor fails with ErrNotAuthorized. A
// contact dropped from the list can still use intro points it read
// before, so a service that drops a contact (or becomes contacts-only)
// replaces its intro points and closes its joined circuits (Host.revoke;
// TestManagerApply found that neither happened).
//
// Validator is the record validator of the namespace, for the DHT's
// NamespacedValidator: a record must verify under the A' it carries, sit
// at DHTKey(A', N), be of the network's period length and of the current
// period, the one before or the one after; Select keeps the highest
// revision (Identity.Revision: seconds since the period before began,
// plus an offset only the service knows, different every period, so a
// republished descriptor replaces the last and records of two periods
// cannot be matched by revision). Records are capped at MaxDescriptorSize.
//
// # Introduction and rendezvous
//
// The service keeps a circuit to each intro point and registers there with
// ESTABLISH_INTRO (IntroKeys.EstablishIntro): the intro auth key, the rate
// and burst it wants the intro point to enforce, and a circuit binding,
// signed by the auth key. A client that has the descriptor:
//
//  1. picks a rendezvous relay, builds a circuit to it and sends
//     ESTABLISH_RENDEZVOUS with a fresh 20-byte cookie
//     (ClientIntroduction.Cookie);
//  2. builds a circuit to an intro point and sends INTRODUCE1
//     (Introduce): the auth key in clear, so the intro point can forward
//     it, its fresh X25519 key X and a proof-of-work nonce, then, sealed
//     to the intro point's encryption key B and the subcredential, the
//     time, the cookie and the rendezvous relay (peer ID and onion key).
//     The intro point forwards it as INTRODUCE2 on the service's circuit;
//  3. the service (Server.Accept) checks it cheapest first (framing, a
//     known intro point, the intro point's rate, the proof of work, then
//     X25519, decryption, the time window and the replay cache), builds a
//     circuit to the rendezvous relay and sends RENDEZVOUS1 = cookie | Y |
//     AUTH;
//  4. the rendezvous relay matches the cookie, joins the two circuits and
//     sends the client RENDEZVOUS2 = Y | AUTH
//     (ParseRendezvous1); the client checks AUTH (Finish) and both ends
//     hold the same Keys.
//
// The handshake is hs-ntor (rend-spec-v3 5.1; see introduce.go):
// KEY_SEED depends on X^y (forward secret: stealing b later does not open
// recorded streams) and X^b (only the holder of the intro point's private
// key answers, so the client knows it reached the service), and binds the
// auth key, B, X, Y and the subcredential. The replay cache refuses an X
// seen within twice DefaultReplayWindow and any INTRODUCE whose time is
// more than the window off; when full of live entries it refuses new ones
// rather than forget one that could be replayed.
//
// DoS gate: a token bucket per intro point (DefaultIntroRate 25/s,
// DefaultIntroBurst 200, Tor's defaults): the intro point keeps one per
// intro circuit in IntroTable, at the rate and burst of ESTABLISH_INTRO
// capped at those defaults, and the service keeps a Gate in Server. The optional proof of work (gate.go) is hashcash over
// SHA-256 of the descriptor's seed, the auth key, X and a nonce; the
// descriptor sets the difficulty (0 to MaxPoWDifficulty bits), the client
// solves it (SolvePoW), the service checks it with one hash before any
// public-key work.
//
// # What each observer learns
//
//   - A DHT server: a key, a period, a revision, a blinded key A' and
//     ciphertext. Not the address, not A, not the intro points; a service's
//     records of two periods share nothing (TestDescriptorDHTView). It can
//     withhold or serve an old descriptor (the revision and period checks
//     bound how old) but cannot forge one. It can count how many records it
//     holds, not whose.
//   - Someone who knows the address: the intro points and the PoW
//     parameters (unless contacts only), and the service's blinded keys.
//   - An intro point: the auth key of one service it serves (not the
//     address), when introductions come and how many; from a client, a
//     fresh X and a nonce, and the circuit's previous hop, never the client
//     (TestIntroduceObservers). It cannot read or alter INTRODUCE1 (GCM).
//   - The rendezvous relay: a cookie, then Y and AUTH; two circuits from
//     two previous hops, so neither party's address or identity, and none
//     of the service's keys. It carries the joined stream under the
//     end-to-end layer and cannot read it.
//   - The client: the service's address and intro points, nothing of where
//     the service runs (its circuits end at intro point and rendezvous
//     relay).
//   - The service: the client's rendezvous relay and cookie, nothing that
//     identifies the client. A service must not log either.
//
// # Runtime
//
// Host (host.go) runs one published service: it keeps DefaultIntroPoints
// intro circuits, each built by a Builder to a relay of its choosing and
// registered with ESTABLISH_INTRO; it publishes the descriptor for the
// current period and, within DefaultPublishAhead of the turnover, the next
// one (again every DefaultRepublish, and at once when an intro point is
// lost and replaced). A revision is never reused within a period, though
// Identity.Revision counts seconds: a replacement uploaded within the
// second of the last descriptor must still replace it
// (TestHostReplacesIntroPoint found that). Each INTRODUCE2 is checked by
// Server.Accept and answered with a circuit to the client's rendezvous
// relay, whose streams are dialled to the service's loopback target.
// Dialer (dial.go) is the client: it fetches and caches descriptors
// (refetching once when every intro point of a cached one fails), builds
// a rendezvous circuit per attempt, introduces itself through the intro
// points in random order, and keeps the joined circuit of each service
// for later streams. Both own small interfaces for what they need
// (runtime.go): Circuit, which *circuit.Circuit is, and Builder, which
// the node implements over its directory (node/service.go, with
// discovery.ServicePath: the last hop needs no exit flag).
//
// # Wiring
//
// Done: the circuit commands below (circuit/join.go), the runtime, the
// proxy's .pikcio routing (proxy/pikcio.go), the status page, demo.pikcio,
// and the service cards of the invite exchange (trust.ServiceCard: the
// node's first service's address and its X25519 client key, inside both
// signed transcripts), so that CONTACTNAME.pikcio and contacts-only
// services work between nodes.
//
// Manager (manager.go) runs a node's services by name from a list of
// Config (node.Options.Services, then the configuration file's
// [[services]] blocks, config.ServiceConfig): Apply starts a new one,
// stops one no longer listed (its Host closes its intro and joined
// circuits and publishes no more, so the descriptor expires), gives a
// changed target to the next streams (Host.Update) and republishes at
// once when ContactsOnly changes; a service that becomes contacts-only
// also replaces its intro points, whose keys the open descriptor told.
// Apply fails, changing nothing, on a bad list or an unreadable key, so
// node.Apply (hot reload) keeps the running services. The Manager also
// holds the Dialer, looks names up (its own services, then its contacts
// by Label), and makes the invite exchange's Card. What it needs is owned
// here: a Builder, a RecordStore and a contacts source (a func returning
// []Contact); node/service.go adapts discovery (discovery.ServicePath),
// circuit and the contacts file to them.
//
// KeyDir (keys.go) is the services directory of a data directory:
// NAME.key (each service's seed) and client.key, mode 0600, made on first
// use; `pikcio service list` reads it without a running node, and
// KeyDir.Card gives `pikcio contacts accept` the card the running node
// would present (the first [[services]] block's address and the client
// key), so an exchange made offline still tells and learns both cards.
// Service names are lower-case DNS labels of at most 40 characters
// (CheckName): never taken for a 56-character address.
//
// Targets: config.CheckTarget accepts only loopback targets unless
// allow_lan (`pikcio service add --allow-lan`) is set, and only IP
// literals or "localhost", so that a service is not a proxy into the
// local network by default and no name is looked up.
//
// circuit gains only what joining needs, as relay commands on stream 0.
// What the relays keep is here already (IntroTable, RendezvousTable, with
// a type parameter for the relay's circuit handle); circuit calls them:
//
//	ESTABLISH_INTRO (service -> intro point): IntroKeys.EstablishIntro; the binding
//	        is a value both ends derive from the last hop's key material (for
//	        example HMAC(Df, "pikcio-svc circuit binding")), which circuit exports
//	        for the last hop. The relay calls IntroTable.Establish and answers
//	        INTRO_ESTABLISHED; a second ESTABLISH_INTRO under the same key (the
//	        service rebuilt its circuit) replaces the first.
//	INTRODUCE1 (client -> intro point): IntroTable.Route finds the service's
//	        circuit and takes a token of its bucket; the relay forwards the message
//	        unchanged as INTRODUCE2 and answers INTRODUCE_ACK (success, unknown
//	        service, or rate limited) to the client, which then tears its intro
//	        circuit down.
//	ESTABLISH_RENDEZVOUS (client -> rendezvous relay): the cookie;
//	        RendezvousTable.Establish, answered by RENDEZVOUS_ESTABLISHED. One
//	        cookie per circuit, waiting at most DefaultRendezvousWait.
//	RENDEZVOUS1 (service -> rendezvous relay): RendezvousTable.Join returns the
//	        client's circuit (the cookie is then forgotten) and the RENDEZVOUS2 to
//	        send it; the relay splices the two: from then on a RELAY cell that
//	        arrives from one circuit with no layer of the relay's recognizing it
//	        is re-encrypted under the other circuit's backward layer and sent on.
//	        It is the last hop of both circuits, so the splice is a relay-side
//	        table (circuit -> peer circuit) consulted where an unrecognized cell
//	        at the last hop today closes the circuit.
//
// Every one of these fits one relay cell (IntroduceLen is 216 bytes).
// Relays call Remove on both tables when a circuit closes.
//
// Each end then adds a virtual hop keyed by Keys (Kf, Kb, Df, Db have the
// shape of a hop's keys; the client's forward is the service's backward):
// circuit needs a constructor of a layer from key material and a way to
// append it to a built circuit. Streams are opened by the client with
// BEGIN addressed to that virtual hop; the service answers them by
// dialling its configured loopback target, never an exit. Everything else
// (choosing intro points, republishing on failure and at period turnover,
// descriptor upload and fetch, and the name lookups under .pikcio) stays
// in this package and node:
//
//   - Publishing (Identity.Publish, Fetch, over the RecordStore that
//     discovery.Discovery is, with discovery.Validator(Namespace,
//     Validator{})): the service picks 3 intro points (MaxIntroPoints caps
//     it), keeps a circuit to each, and seals and uploads a descriptor for
//     the current period and, in the last hours of a period, the next one
//     (Server.AddIntroPoint for both: an intro point serves two periods);
//     an intro circuit that fails is replaced, the intro point removed from
//     Server and a new descriptor uploaded at once with a higher revision.
//   - Names: proxy refuses to send a .pikcio name to an exit
//     (IsPikcioHost) and maps it with Resolve: ADDRESS.pikcio directly,
//     CONTACTNAME.pikcio through a lookup in the contacts file; an unknown
//     name is ErrUnknownName, for a clear SOCKS/HTTP error. The design choice for issue 17: contacts learn
//     each other's service addresses and X25519 client keys in the invite
//     exchange (package trust/exchange), since that channel is already
//     authenticated between the two; an address never needs to be
//     published anywhere else.
package service
