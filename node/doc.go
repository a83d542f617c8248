// Package node assembles a pikcio node from its configuration: a libp2p
// host and the roles it plays. It is wiring: the work is done by the
// packages that own each concept (circuit, discovery, proxy, tis's and
// trust's agents, web), and node connects their hooks, adapts
// descriptors for the agents, and runs their loops under its own
// lifetime (Close waits for them).
//
//   - Client: discovery in client mode (it finds relays through the DHT
//     and keeps entry guards), a circuit.Client, and the proxy package's
//     circuit Pool behind a SOCKS5 and an HTTP proxy on the loopback.
//     Circuits are built by discovery's Builder over paths it selects
//     (discovery.CircuitBuild over the circuit.Client, whose failures after
//     build feed discovery's path bias through CircuitFailed).
//   - Relay: a circuit.Relay, and discovery publishing the relay's signed
//     descriptor in the DHT (the relay is a DHT server, so other nodes can
//     bootstrap through it).
//   - Exit: a relay with an exitnode.Exit and its policy: the operator's
//     rules (relay.exit_policy) before the default policy, which rejects
//     private ranges and the node's own addresses (exitnode.KeepOwnAddrs
//     re-applies it when they change).
//
// A node may be a client and a relay at once. New prepares the node
// (data directory, identity, host); Start runs it; Close stops everything
// Start started and waits for it.
//
// # Data directory
//
// node.data_dir (default $XDG_DATA_HOME/pikcio) is internal/datadir's
// (mode 0700, locked while the node runs: ErrDataDirInUse; the identity
// key), and holds the client's entry guards (discovery.GuardsFile).
//
// # Joining
//
// A node without bootstrap peers is where others join: it waits for them.
// A node with bootstrap peers joins through them in the background and
// retries (discovery.Join: 1 s, doubling to 30 s) until one answers. A
// client's directory is kept by a discovery.Keeper: refreshed every second
// or so (backing off) until it can make a path, when the pool starts
// building circuits; the first built circuit closes Ready.
//
// # Trusted Identification System
//
// With tis.root_key set (the pinned root key of a TIS), the node must be
// enrolled: by `pikcio enroll`, which certifies the identity key and keeps
// the certificates in the data directory, or at its first start with
// Options.Enroll (`--enroll-name`, `--enroll-email`): when the data
// directory holds no enrollment and tis.url is set, New enrolls with
// tis.EnrollNode before anything else, and later starts reuse the saved
// enrollment and ignore the properties. New fails with tis.ErrNotEnrolled
// otherwise. A relay publishes its node certificate in its descriptor
// (tis.DescriptorExtension), and serves it on tis.CertProtocol to the peers
// it is connected to. With tis.require (the
// default):
//
//   - the client's discovery keeps only relays whose certificate verifies
//     for their peer ID against the root, now, and the revocation list
//     (discovery.VerifyRelay): a relay without one, or with an expired,
//     revoked, self-signed or foreign one, is never chosen;
//   - the relay admits a new circuit from a client only with an
//     anonymous admission token (package tis/token) in its CREATE, made
//     for this relay and signed by the TIS's token key of the period
//     (circuit.RelayOptions.AdmitCircuit, node/admission.go): the guard
//     learns that an enrolled user built the circuit, not which one. A
//     missing, spent or refused token gets DESTROY(
//     circuit.DestroyTokenMissing, DestroyTokenSpent, DestroyTokenInvalid).
//     A previous hop without a token is admitted only as a relay
//     extending a circuit: it must present its node certificate on
//     tis.CertProtocol (cached per peer, a refusal for 30 s), so a middle
//     or an exit sees the certificate of the relay before it, never the
//     client's. The relay fetches the token keys from tis.url every hour
//     (token.Guard); a relay without tis.url refuses every token.
//   - a client with tis.url keeps a wallet of tokens (WalletFile in the
//     data directory, 0600), per guard, refilled from the TIS in batches
//     (token.Wallet); out of tokens, a build fails with
//     token.ErrNoTokens, which is not held against the guard. Neither is
//     a guard's refusal for a missing token when the client has no wallet
//     (no tis.url): a discovery.LocalError, which marks no relay down,
//     counts no guard failure and tries no other path. The status page
//     shows the wallet (identity.tokens).
//   - a client builds its circuits from a second libp2p host with a fresh
//     Ed25519 identity (circuit.NewFreshDialHost), which listens nowhere and serves
//     nothing; identity.key stays the node's DHT, trust and relay
//     identity. These hosts are circuit.Identities (circuitid.go wires
//     them): a new circuit identity is made at every start, every
//     Options.CircuitIdentityPeriod (circuit.DefaultIdentityOptions, a
//     day) and at each NewIdentity (control API, status page, SIGUSR1):
//     new circuits are built from it, the pools retire the old
//     identity's circuits for new streams and the record circuits are
//     retired, and its host closes once its last circuit has, or after
//     the identities' drain bound (10 min), which bounds a service's
//     intro circuits too (the service replaces them). A guard so sees a
//     peer ID that nothing else carries and that a restart, a period or
//     a new identity changes; within one identity, that the circuits
//     share a connection, as a Tor guard does. (Per period rather than
//     per guard connection: one host keeps the pool's circuits and their
//     links simple, and a guard already sees the address.) A client-only
//     node serves tis.CertProtocol to nobody; a relay serves it, its
//     certificate being in its descriptor anyway.
//   - a client's trust records (its own bundle, the seed list, the
//     crawl's and its contacts' bundles) go through circuits
//     (circuit.RecordClient; records.go builds them): a 3-hop circuit to
//     a relay drawn as a middle, never the guard, whose DHT does each put
//     and get (circuit's RECORD_PUT and RECORD_GET; enrolled relays serve
//     the trust namespace only, Relay.ServeRecords). Puts and gets never
//     share a circuit, and the own bundle is never fetched (trust's
//     crawl takes it from the view), so the relay that sees whose bundle
//     is published never sees that circuit crawl. A get circuit carries
//     10 minutes of operations from its first, a crawl at the default
//     trust.refresh, a put circuit an hour (circuit.RecordClientOptions);
//     an operation that fails for another reason than the record's (not
//     found, refused) is retried on a new circuit through another last
//     hop, up to three. Each record circuit costs an admission token
//     like any other: at most one per 10 minutes for the crawl and one
//     an hour for the puts, 168 a day of an enrollment's 512. A crawl of
//     DefaultMaxIdentities bundles at the relays' 20 operations a second
//     takes over 8 minutes. A relay-only node keeps its records
//     in its DHT directly, and every node puts and gets the revocation
//     list directly (it is the same for all).
//
// The certificate protocol, the admission cache and the revocation loop
// are tis.Agent's; the trust loops (the own bundle and the seed list into
// the DHT, the crawl, the relay's score statement, relays' bands and the
// weights of path selection) are trust.Agent's. Both work on the DHT
// through tis.RecordStore: the revocation loop on the node's DHT, the
// trust loops on a client's record circuits (trustStore).
//
// Revocation lists travel through the TIS and the DHT (tis.Agent's
// KeepRevocations; the node registers tis.RevocationValidator for
// tis.RevocationNamespace in its DHT, see package tis). A newer list makes
// the client recheck its directory at once (discovery's Recheck), so a
// revoked relay leaves its paths, and the relay's admission check uses it
// from then on. Without node.bootstrap the node joins through the
// bootstraps the TIS handed out at enrollment. The name and e-mail given at
// enrollment are never stored by the node.
//
// # Reload
//
// Apply is the config.Watcher's apply function: exit policy, log level and
// format, hop count, the pool's dirtiness, spare circuits and timeouts, and
// the relay's caps and bandwidth limits change for new work, while open
// circuits and streams carry on. Settings that need a restart are logged.
//
// # Status
//
// Status is a snapshot of the node (web.Status; its circuits are built by
// web.Circuits). With client.status_listen set, the node serves it with
// web.Listen: the page, /api/status and /metrics from the node's registry
// (web.Metrics, fed by proxy.TimeFirstByte and timeBuilds, with
// go-libp2p's collectors), behind web's Host and header checks. Failed
// dials reach the page's error memory through proxy.RecordFailures.
//
// # Control API, announced addresses, IPv6
//
// With client.control_listen set, the node serves the control API (package
// control) for a browser front end, with a cookie rotated at each start:
// control's ContactBook answers the contact requests, and the server's
// ServePool the circuit requests from the pool, whose and the guards'
// changes it turns into events (control.go adapts). node.announce replaces the addresses the host
// advertises (circuit.Announce). An exit with relay.ipv6_exit says it reaches
// IPv6, and a client sends streams to IPv6 literals (proxy.SplitIPv6)
// through a second pool of circuits ending at such exits (ipv6.go).
//
// # Logging
//
// Components log through logrus (SetupLogging applies the [log] section,
// liblog.Setup).
// At info level nothing names a destination, and no peer ID is tied to a
// stream or a circuit.
package node
