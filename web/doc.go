// Package web is the node's status page and its small HTTP API, served by
// default on 127.0.0.1:7080. NewHandler(src, opts) returns the whole
// thing as one http.Handler; the node implements Source and serves it
// with Listen (a Server with header and idle timeouts, whose Close waits
// for it), with its trust queries (TrustPath) behind the same checks.
//
// Everything the page needs is embedded in the binary (assets/): an
// html/template page, one script and one style sheet. Nothing is loaded
// from elsewhere (no CDN, no outside fonts), so the page works offline.
//
// # Routes
//
//	GET  /                 the page, rendered on the server; ?destinations=1 shows error destinations
//	GET  /assets/app.js    the page's script
//	GET  /assets/style.css the page's style sheet
//	GET  /api/status       Source.Status(false) as indented JSON; ?destinations=1: Status(true)
//	POST /new-identity     Source.NewIdentity, with the CSRF token (see below)
//	GET  /metrics          Prometheus metrics (client_golang)
//	GET  /proxy.pac        a proxy auto-config file for the client's SOCKS port
//	GET  /api/trust/ID     a TrustReport as JSON (TrustPath, TrustHandler; 404 for an unknown ID)
//
// Besides the handler, web holds the models the node fills: Status (its
// circuits built by Circuits from what the node reads of its pool,
// PoolCircuit), the TrustReport, and Activity, the in-memory throughput and error history
// behind the page's graph and error list.
//
// # Live updates
//
// The page is complete without JavaScript: it carries
// <noscript><meta http-equiv=refresh></noscript> and reloads every
// Options.PollInterval rounded up to a second, but at most every
// MinPlainRefresh (10 s). With JavaScript, app.js
// polls GET /api/status every Options.PollInterval (default 2 s; the page
// hands it over in <meta name="pikcio-poll-ms">) and redraws the page from
// the JSON, including the throughput graph, an inline SVG drawn by the
// script (and by render.go for the page without script). The <main>
// element's data-rendered attribute says which drew it: "server" or "js".
// Polling was chosen over server-sent events: no connection held open, and
// nothing to stop when the page is closed.
//
// # The "show destinations" switch
//
// Off by default, and never persisted: no cookie, no localStorage, no
// server-side state. With JavaScript it is a checkbox that makes the
// script poll /api/status?destinations=1; without, a GET form that loads
// /?destinations=1. Referrer-Policy no-referrer keeps that URL to the page.
//
// # Security
//
// Every answer carries Cache-Control: no-store, X-Content-Type-Options:
// nosniff, X-Frame-Options: DENY, Referrer-Policy: no-referrer and a
// strict Content-Security-Policy (default-src 'none'; script-src 'self';
// style-src 'self'; img-src 'self' data:; connect-src 'self';
// frame-ancestors 'none'; form-action 'self'; base-uri 'none'): no inline
// script, style or event handler.
//
// A request whose Host header is not localhost (any ASCII case, optional
// trailing dot) or a loopback IP address (127.0.0.0/8, [::1],
// [::ffff:127.x.y.z]), each with an optional valid port, is refused with
// 403: a web page cannot read the status through a DNS name rebound to
// 127.0.0.1.
//
// POST /new-identity is refused with 403 when it comes from another site:
// a Sec-Fetch-Site header of cross-site or same-site, or an Origin header
// that is not http:// and the request's own loopback Host. It also needs
// the handler's CSRF token (32 random bytes from crypto/rand, new for each
// handler, compared in constant time), which the page carries in
// <meta name="pikcio-csrf"> and in its form:
//   - the script sends it in the X-CSRF-Token header and gets JSON back,
//     {"ok": true} (200) or {"ok": false} (409: the node has no client
//     role);
//   - the form of the page without script sends it in the hidden field
//     "csrf" (application/x-www-form-urlencoded) and is answered 303 See
//     Other to /.
//
// # /api/status
//
// The JSON of Status (model.go), field for field. Times are RFC 3339;
// a zero time is "0001-01-01T00:00:00Z".
//
//	version                  string   the node's version
//	generated                time     when the snapshot was taken
//	peer_id                  string   the node's libp2p peer ID
//	roles                    []string "client", "relay", "exit"
//	started                  time     when the node started
//	uptime_seconds           number   seconds since started
//	addrs                    []string listen multiaddrs, with /p2p/
//	joined                   bool     the node has joined the network (DHT)
//	identity                 object   TIS enrollment; absent when no TIS root key is configured
//	  enrolled               bool
//	  node_id                string   hex tis.ID of the node certificate (absent when empty)
//	  matryoshka_id          string   hex tis.ID of the Matryoshka certificate (absent when empty)
//	  node_cert_expires      time     zero when not enrolled
//	  matryoshka_cert_expires time    zero when not enrolled
//	  score                  int|null the user's own TCI, 0..100; null until computed
//	  contacts               int      contacts in the local store
//	  tokens                 object   the client's admission tokens; absent without a wallet
//	    held                 int      unspent tokens, for all guards
//	    guards               int      guards they are for
//	    remaining            int      more the TIS allows this period, -1 if not known yet
//	    refilling            bool     a refill is under way
//	    last_error           string   of the last refill (absent when it worked)
//	network                  object   what the node knows of the network
//	  relays_known           int      usable relay descriptors in the directory
//	  exits_known            int      of which exits
//	  guards                 int      the client's entry guards
//	  dht_peers              int      peers in the DHT routing table
//	  trust_identities       int      identities the TCI view covers (0 before the first computation)
//	client                   object   the client role; absent on a node without it
//	  socks                  string   SOCKS5 listen address (absent when off)
//	  http                   string   HTTP proxy listen address (absent when off)
//	  ready                  bool     a circuit has been built
//	  hops                   int      hops per circuit
//	  build_timeout_seconds  number   the learned build timeout
//	  pool                   object   the circuit pool's counters
//	    circuits             int      open circuits
//	    clean                int      prebuilt, not used yet
//	    retired              int      take no new streams
//	    streams              int      open streams
//	    building             int      circuits being built
//	    groups               int      isolation groups with a circuit
//	    builds               uint     circuits built since start
//	    build_failures       uint     failed builds since start
//	    bytes_up             uint     payload bytes sent over all circuits since start, closed ones included
//	    bytes_down           uint     payload bytes received likewise
//	  circuits               []object open circuits, oldest first
//	    id                   uint     the pool's number for it
//	    hops                 []object relays, first hop first
//	      id                 string   short form of the peer ID
//	      peer_id            string   full peer ID
//	      role               string   "guard", "middle" or "exit"
//	      tci                object|null the relay owner's TCI band {"min", "max"} (inclusive, 0..100); null when none
//	      contact            string   local name of the contact who runs the relay (absent when none)
//	    age_seconds          number
//	    bytes_up             uint     payload bytes sent
//	    bytes_down           uint     payload bytes received
//	    streams              int      open now
//	    streams_opened       uint     opened since the circuit was built
//	    group                int      isolation group, numbered locally; 0: prebuilt, not used yet
//	    state                string   "clean", "in use" or "retired"
//	relay                    object   the relay role; absent on a node without it
//	  exit                   bool     the relay is an exit
//	  exit_policy            []string the operator's exit rules (absent when none)
//	  circuits               int      circuits relayed now
//	  circuits_total         uint     circuits relayed since start
//	  bytes                  uint     cell bytes handled since start
//	  tci                    object|null the TCI band the TIS states for this relay's owner
//	services                 []object Matryoshka services the node publishes (absent when none); never their clients
//	  name                   string   the local name (NAME.pikcio on this node)
//	  address                string   ADDRESS.pikcio
//	  intro_points           []string peer IDs of its introduction points
//	  joined                 int      rendezvous circuits open now
//	  published              time     last descriptor upload; zero before the first
//	  publish_error          string   why the last upload failed (absent when it did not)
//	throughput               []object one sample per second, oldest first, at most ThroughputWindow (5 min)
//	  t                      int      Unix seconds
//	  up                     uint     bytes sent in that second (a relay: cell bytes forwarded)
//	  down                   uint     bytes received in that second
//	errors                   []object most recent failures, newest first
//	  time                   time
//	  kind                   string   e.g. "build", "dial", "policy"
//	  message                string   never names the destination
//	  destination            string   only with ?destinations=1 (absent otherwise)
//
// A relay node (relay set, client absent) shows its own side only: what it
// carries and its TCI band, never for whom.
//
// # /metrics
//
// Served by github.com/prometheus/client_golang (promhttp) from
// Options.Metrics, a prometheus.Registry: text exposition format 0.0.4 by
// default, or what the scraper negotiates. The handler registers the status
// collector below on it; a node also registers its histograms
// (pikcio_circuit_build_seconds, pikcio_stream_first_byte_seconds) and
// go-libp2p's collectors (libp2p_swarm_*, libp2p_rcmgr_*, ...), see
// node/metrics.go. No label carries a destination or a peer ID; the
// status collector's only labels are version (pikcio_info), direction
// ("up", "down") and bound ("min", "max").
//
//	pikcio_info{version}                  gauge   always 1
//	pikcio_uptime_seconds                 gauge
//	pikcio_joined                         gauge   0 or 1
//	pikcio_relays_known                   gauge
//	pikcio_exits_known                    gauge
//	pikcio_guards                         gauge
//	pikcio_dht_peers                      gauge
//	pikcio_trust_identities               gauge
//	pikcio_errors                         gauge   recent errors held
//	pikcio_enrolled                       gauge   with an identity
//	pikcio_node_cert_expiry_timestamp_seconds       gauge, when enrolled
//	pikcio_matryoshka_cert_expiry_timestamp_seconds gauge, when enrolled
//	pikcio_contacts                       gauge   with an identity
//	pikcio_tci_score                      gauge   once computed
//	pikcio_client_ready                   gauge   client only, as all below to pikcio_circuit_bytes_total
//	pikcio_build_timeout_seconds          gauge
//	pikcio_circuits                       gauge   open circuits
//	pikcio_circuits_clean                 gauge
//	pikcio_circuits_retired               gauge
//	pikcio_circuits_building              gauge
//	pikcio_streams                        gauge
//	pikcio_isolation_groups               gauge
//	pikcio_pool_builds_total              counter
//	pikcio_pool_build_failures_total      counter
//	pikcio_circuit_bytes_total{direction} counter from pool.bytes_up and pool.bytes_down
//	pikcio_relay_exit                     gauge   relay only, as all below to pikcio_relay_tci_band
//	pikcio_relay_circuits                 gauge
//	pikcio_relay_circuits_total           counter
//	pikcio_relay_bytes_total              counter
//	pikcio_relay_tci_band{bound}          gauge   when the relay holds a TCI statement
//	pikcio_throughput_bytes_per_second{direction} gauge, the last sample
//
// # /proxy.pac
//
// Content-Type application/x-ns-proxy-autoconfig. FindProxyForURL returns
// "SOCKS5 host:port" for the client's SOCKS address (an
// unspecified listen address becomes 127.0.0.1 or [::1]) for every URL:
// there is no DIRECT, so a browser fails rather than leaks while the node
// is down. 404 when the node has no SOCKS port.
//
// Chromium sends loopback addresses (localhost, 127.0.0.1, [::1]) direct
// even with a PAC file or --proxy-server; to proxy them as well, start it
// with --proxy-bypass-list="<-loopback>". There is deliberately no
// "SOCKS" (SOCKS4) fallback: Chromium resolves names locally for SOCKS4,
// so a fallback would send DNS queries to the local resolver whenever the
// SOCKS5 port is down.
//
// # Metrics registry
//
// Metrics is a node's Prometheus registry with the circuit build-time and
// time-to-first-byte histograms (ObserveBuild, ObserveFirstByte); the node
// adds go-libp2p's collectors and passes it as Options.Metrics.
package web
