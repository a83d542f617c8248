// Package discovery finds pikcio relays, chooses circuit paths through
// them and keeps a client's entry guards.
//
// # Descriptors
//
// A relay describes itself in a Descriptor: peer ID, addresses, its X25519
// onion key and expiry (and, during a rotation's grace period, the previous
// key), a summary of its exit policy (the destination ports it accepts for
// public addresses, as sorted port ranges), role flags (relay, exit, guard),
// the circuit protocol version, publication and expiry times, and a list of
// typed extensions for later data (TIS certificate, trust) that decoders keep
// even when they do not know them. The encoding is canonical (a format
// version byte, fixed field order, big-endian, length-prefixed, sorted
// ranges and extensions, no trailing bytes), so a descriptor has exactly one
// encoding and the signature, made with the relay's libp2p identity key over
// that encoding, can be checked by re-encoding. Descriptors over
// MaxDescriptorSize are refused before parsing. Verify checks the signature
// with the key embedded in the peer ID, then that the descriptor has not
// expired, was not published in the future beyond a skew, has a lifetime of
// at most MaxLifetime and carries an onion key that has not expired.
//
// # The DHT
//
// Nodes run go-libp2p-kad-dht under pikcio's own protocol
// (/pikcio/kad/1.0.0), never the public IPFS DHT: no default bootstrap
// peers, only the configured ones. Relays and bootstrap nodes are DHT
// servers, clients are DHT clients. A relay's descriptor is the value of
// "/pikcio-desc/<peer ID>"; every DHT node validates it (the namespace's
// record validator verifies it and checks that it belongs to its key) and
// selects the newest valid one, so forged, tampered and expired
// descriptors are refused by honest nodes and by the client that receives
// them. Records and provider records expire with the descriptor lifetime.
// Relays publish at start and every republish interval (and on Republish,
// after an onion key rotation), each time newer than the last.
//
// The Validator option adds other record namespaces to the DHT with their
// own validator (the node adds the TIS revocation list's and the trust
// records'), and PutRecord and GetRecord (records.go; tis.RecordStore is
// the interface tis's and trust's agents use them through) store and
// find such records: a DHT server stores a PUT
// record only if its validator accepts it and prefers it to the one it
// holds, and GetRecord returns the best valid value of the closest servers.
// Every node of a network must register the same validators, or its
// servers refuse those records.
//
// Join starts a Discovery through its bootstrap peers and retries with
// backoff (JoinBackoffMin doubling to JoinBackoffMax, each attempt within
// JoinTimeout) until one answers or its context ends: a node and the
// TIS's trust crawler both join so.
//
// # Finding relays
//
// Two ways to find the relays, both used by default (StrategyBoth):
//
//   - Provider records: relays announce themselves as providers of
//     RelaysCID (the CID of "pikcio-relays-v1"); a client asks for all
//     providers, then fetches each one's descriptor.
//   - Random walk: a client looks up random keys (GetClosestPeers), adds
//     its routing table, and fetches the descriptor of every peer met.
//
// Measured in one process with 50 relays and a bootstrap node on loopback
// (TestScale, on a 2-core machine shared with other work, over several
// runs), a fresh client's first round found 46-50 of the 50 relays in
// 0.25-0.7 s with the walk (4 lookups), all 50 in 0.3-1.3 s with the
// providers and all 50 in 0.25-1.3 s with both; later rounds took 0.15-1 s
// and found all 50 with each method. At this size a few lookups meet
// almost every peer; the walk's coverage falls as the network grows, while provider records list every relay but sit on the
// 20 peers closest to one key, which could hide relays. Together each
// covers the other's weakness, hence the default. Every fetched descriptor is verified again before it
// enters the node's directory (peer ID -> descriptor), which is refreshed
// every refresh interval; descriptors of relays already known are fetched
// again (to see key rotations), expired ones are dropped, and peers
// without a descriptor are not asked again for two intervals.
//
// # Path selection
//
// Select (and Discovery.SelectPath) choose hops 1..MaxHops (DefaultHops is
// 3: guard, middle, exit; a one-hop path is an exit alone):
//
//   - Only relays with a valid descriptor (not expired, onion key not
//     expired) that are not marked down are candidates; the node never
//     chooses itself; no relay appears twice in a path.
//   - The exit is chosen first, among exits whose policy accepts the
//     destination port (port unknown: both 443 and 80).
//   - The first hop is the first of the client's entry guards that is
//     usable and that some such exit can share a path with; the exit is
//     drawn among those exits. So the primary guard stays the first hop
//     even when it is also an exit.
//   - Middles are drawn from the relay-flagged candidates.
//   - No two relays of a path share an IPv4 /16 or an IPv6 /32
//     (AllowSameSubnet lifts this for loopback test networks).
//   - With the VerifyRelay option (the node's TIS certificate check), a
//     relay the check refuses never enters the directory, and Recheck
//     (run after every refresh, and by the node after a new revocation
//     list) drops those it refuses later.
//   - Each draw is random (crypto/rand), weighted by a Weigher
//     (UniformWeigher by default; a node with a TIS weighs relays by
//     their operator's trust band); weight 0 excludes, also a guard
//     already in the guard set.
//
// # Entry guards
//
// A client keeps DefaultGuards guards (a primary and two backups) in
// guards.json in its data directory (JSON, mode 0600, written to a
// temporary file and renamed). Each has a random lifetime of 30-60 days.
// A guard is replaced only when its lifetime ends, after
// DefaultMaxGuardFailures consecutive failures to reach it (a build error
// naming hop 0), or after being absent from the refreshed directory for
// longer than the descriptor lifetime (absence is only counted while the
// node runs); new guards are sampled only to fill the set. So a relay
// becomes a client's first hop by being sampled, never just by waiting,
// and failures at later hops never count against the guard. Nor does a
// refusal for lack of resources (an error whose RelayBusy() is true, such
// as DESTROY(resource)): anyone can make a relay busy, and counting it
// would let an attacker walk clients off their guards.
//
// Path bias (pathbias.go, after Tor's path-spec): circuits that fail after
// they were built, for integrity or protocol (ReportCircuitFailure), are
// counted per guard against the circuits built through it; past
// PathBiasMaxFailRate of at least PathBiasMinCircuits the guard is dropped
// with one warning and never sampled again, since a guard that destroys
// the circuits it cannot follow to their exit biases its clients towards
// the exits it runs.
//
// A relay extends circuits only to relays it has a verified descriptor for
// (RelayAddrs, used as circuit.RelayOptions.ResolveHop), at that
// descriptor's addresses.
//
// # Building
//
// A Builder wraps a BuildFunc: it selects a path, builds it within a
// timeout learned from past builds (see TimeoutEstimator), and on failure
// reports it and tries a new path, up to DefaultMaxAttempts. A BuildFunc
// returns a *HopError to name the failing hop (CircuitBuild is the
// BuildFunc over a circuit client: a circuit.BuildError becomes one, and
// CircuitFailed is the client's OnFailure, which counts a circuit that
// failed the way a tampering relay makes it fail against its guard, see
// PathBias): that relay is marked down
// for 30 s, doubled for each further failure before it works again, up to
// DownTime (and, at hop 0, a guard failure is counted, once per mark).
// A failure only the hop before it reported (a refused or unanswered
// EXTEND: the next hop may be dead, not yet known to that hop, or the hop
// may lie to steer clients off it) keeps the relay out for 2 s, doubling
// while the same hop keeps refusing it, and counts nothing; a refusal by
// a second hop within a minute blames it as above.
// ReportUnreachable does the same for a relay whose link broke under open
// circuits. Other errors and timeouts mark the hops after the guard
// suspect for the shorter suspect time. So a relay that disappears stops
// being chosen at its first failure, or when its descriptor expires,
// whichever comes first.
//
// A relay that comes back is chosen again as soon as it has republished:
// the descriptor of a relay marked down is looked up again within half a
// second, then with backoff (at most every 2 s) while the mark lasts, and
// a descriptor published after the one the mark was made against (the
// relay restarted, with new addresses or a new onion key) lifts the mark.
// A failure met through a descriptor the directory has replaced since (a
// build chose the old one just before) blames no relay. A relay the node
// loses its last connection to is looked up the same way for 15 s (at
// most 16 relays at a time), mark or not: a relay killed and restarted as
// another circuit's exit or middle is known at its new addresses before a
// build dials the old ones (its QUIC handshake to a dead port waits a
// second), e.g. when it is the backup guard that the next build takes.
// A peer met without a descriptor is asked again after 30 s, then less
// often, up to twice the refresh interval. The Builder splits what is left
// of the caller's deadline between its remaining attempts, so a stalled
// attempt ends on its own deadline (reported, learned from, retried), not
// on the caller's.
//
// # Keeping a client's directory
//
// A Keeper refreshes a client's directory besides the refresh loop:
// every KeeperMin, doubling up to KeeperBusyMax, while no path can be
// made, then doubling up to KeeperMax; it tells its owner once when a path
// can first be made (the node starts its pool then). A build that finds no
// path waits on WaitPath (ErrNoPath when its context ends first) and pokes
// the keeper, which refreshes at most every KeeperMin.
package discovery
