// Package tis is pikcio's Trusted Identification System: the trusted third
// party that enrolls every user and certifies two identifiers for them, and
// the functions nodes use to check those certificates.
//
// # Identifiers and certificates
//
// A user holds two Ed25519 key pairs: the node's libp2p identity key and a
// separate Matryoshka key. At enrollment the TIS derives
//
//	node ID       = HMAC-SHA256(secret, "pikcio-tis/v1/node-id"       || name || e-mail)
//	Matryoshka ID = HMAC-SHA256(secret, "pikcio-tis/v1/matryoshka-id" || name || e-mail)
//
// (fields length-prefixed; name and e-mail normalized by NormalizeName and
// NormalizeEmail: Unicode NFC, trimmed, e-mail lower-cased) under a 32-byte
// secret only the TIS holds. Without the secret nobody can compute either
// ID from an e-mail, nor tell that two IDs belong to one person. The TIS
// returns two Certificates, each binding one ID to one key (node ID to the
// libp2p key, Matryoshka ID to the Matryoshka key) with a random 128-bit
// serial, an issue time and an expiry, signed by the TIS root key. No
// certificate carries both IDs, and nothing the TIS publishes (certificates,
// revocation lists) links them: serials are random, not sequential, and
// issue times are rounded down to TimeGranularity (an hour) so that the two
// certificates of an enrollment share their timestamp with every other
// enrollment of that hour. That is the residual link: an observer holding a
// node certificate and a Matryoshka certificate can only tell that they
// were issued in the same hour. A relay publishes its node certificate in
// its discovery descriptor under DescriptorExtension; Matryoshka
// certificates are shown only to the user's contacts.
//
// # Enrollment
//
// The node POSTs an EnrollRequest to PathEnroll: both public keys, the
// properties, the key ID of the TIS it is meant for and a timestamp, signed
// by both private keys, each under its own context string (proof of
// possession: nobody can enroll a public key whose private key they do not
// hold). The TIS refuses a request for another TIS, one more than
// MaxClockSkew from its clock, a bad signature, invalid properties, or the
// same key as both keys. A replay within the skew window can only make the
// TIS re-issue certificates to the same keys. The answer (Enrollment) holds
// both certificates and the TIS's bootstrap multiaddrs; the client checks it
// against the pinned root key and its own keys before trusting it.
//
// Duplicates: one e-mail, one enrollment. The TIS indexes each enrolled
// person by HMAC(secret, e-mail) and each enrolled public key by
// HMAC(secret, key). A key already enrolled by another e-mail is refused
// with ErrAlreadyEnrolled (only the key's holder can ask, by proof of
// possession).
//
// Verified e-mail: a request without a code (EnrollRequest.Code) is
// answered ErrCodeSent and a one-time code of CodeDigits digits is mailed
// to the address (Mailer: SMTPMailer, or DemoMailer, which logs it, for a
// demo), at most one per CodeResend; the answer is the same whether or not
// the address is enrolled, blocked or was just sent a code, and only the
// mail says which, so the API is no membership oracle, and nobody can
// squat another's address. The TIS stores HMAC(secret, e-mail hash, code)
// with an expiry (CodeLifetime) and counts wrong tries (CodeAttempts, then
// ErrTooManyAttempts). With the code the person is enrolled; an enrolled
// person with new keys (a lost device) gets them certified, and the old
// certificates revoked, in the same transaction. A retry with the same
// code and keys gets the enrollment that was committed (idempotent); the
// same code with other keys is refused (ErrBadCode), and a new code
// enrolls them. The same person with the same keys needs no code: fresh
// certificates with the same IDs (renewal, lost files), up to
// MaxIssuesPerPerson times. A person one of whose certificates the
// operator revoked (Server.Revoke) is refused with ErrBlocked.
//
// Abuse limits: per client address (an IPv6 /64; behind TrustedProxies the
// X-Forwarded-For address), per mail domain for code mails, and globally
// (ServerOptions, documented defaults in options.go). Servers sharing a
// PostgreSQL store share the limits too: a token bucket per key in the
// limits table, taken from by one atomic statement, so N servers allow
// the limit once, not N times. With SQLite (one process) the buckets live
// in memory.
//
// # What the TIS keeps, what it knows, what it never learns
//
// The TIS directory holds RootKeyFile, SecretFile (unless
// ServerOptions.SecretFile or Secret keep it elsewhere) and the SQLite
// database DBFile, all 0600 in a 0700 directory; or the state lives in a
// PostgreSQL database (ServerOptions.DB). The state (Store) holds only
// keyed hashes (of e-mails, of name+e-mail+keys, of public keys, of
// pending codes), serials and the signed revocation list: no name and no
// e-mail in the clear. Someone who steals the state without the secret
// learns how many people enrolled and which serials belong to the same
// person, nothing more; someone who steals both can test guessed e-mails,
// so the secret should be kept apart from the state.
//
// During an enrollment the TIS sees the name, the e-mail, both public keys
// and the client's IP address; it can link the node ID to the Matryoshka
// ID (it computes both, and the state groups a person's serials), which the
// TIS design accepts. It never receives a private key, so it cannot
// impersonate a user, read their traffic or learn their contacts; but like
// any certificate authority a compromised root key can certify arbitrary
// keys, which is why nodes pin one root key and revocation exists.
//
// The mailed code proves control of the mailbox at enrollment, no more:
// whoever controls the mailbox later can enroll a new device.
//
// # Transport
//
// Server.Listen serves plain HTTP only on a loopback address; anywhere
// else it needs TLSCertFile and TLSKeyFile (TLS 1.3), because requests
// carry a name and an e-mail. Integrity does not rest on TLS: every answer
// is signed by the root key the client pinned. BaseURL turns a bare
// host:port into http:// on loopback and https:// elsewhere.
//
// # Verification and revocation
//
// VerifyNodeCert checks a node certificate against the pinned root key, the
// peer ID it is presented for (the subject key must be that peer's libp2p
// key), the time and a revocation list, with distinct sentinel errors. The
// RevocationList is a signed blob (serials, issue time, next update,
// sequence number) served at PathRevocations; the server re-signs it with
// the next sequence number on every revocation and after half of
// RevocationLifetime. Clients verify it (ParseRevocationList) and keep the
// highest sequence (RevocationCache); RevocationValidator has the
// Validate/Select methods of a libp2p record validator so the same blob can
// travel through the DHT under RevocationKey.
//
// At a million people the revoked serials outgrow one blob (a lost device
// revokes two; revoked serials stay listed until they expire): a list of
// more than MaxRevoked serials (512 KiB) is signed in pages of MaxRevoked,
// each naming the sequence, its number and the page count; HTTP serves
// page i at PathRevocations?page=i and the DHT under RevocationPageKey.
// Clients fetch every page (FetchRevocations, Agent) and join them with
// AssembleRevocationList, which refuses pages of two lists, out of order,
// overlapping, or more than MaxRevocationPages (2M serials, 32 MiB): a
// client's memory stays bounded whatever a TIS or DHT server sends. A list
// of one page encodes as before (version 1).
//
// A list of several pages ends in a delta (version 3, RevocationList.Base):
// the serials revoked since its pages were signed, with the list's
// sequence and times, signed on its own. One revocation, and the refresh
// at half the lifetime, sign the delta again and nothing else (one page
// however long the list, TestRevocationDeltaSignsOnePage); every page is
// signed afresh when the delta would pass a page or the pages are a week
// old (revocationRebase), which also drops expired serials. HTTP serves
// the delta at PathRevocations?delta, the DHT under RevocationDeltaKey.
// A client that holds the list fetches the delta alone when it is on the
// pages it holds (Client.FetchRevocationsSince, RevocationList.WithDelta),
// and the pages only when they changed; an Agent puts into the DHT only
// the records that changed, and reads the delta alone when it can.
//
// # A node's agent
//
// Agent is an enrolled node's part in the TIS (LoadAgent reads its
// enrollment; EnrollFirst enrolls at a first start). It serves the node's
// certificate on CertProtocol (Serve; pikcio's node calls it on relays
// only, a client shows its certificate to nobody), checks a relay's certificate from
// its descriptor (VerifyRelay) and, for a previous hop that presents no
// admission token (a relay extending a circuit), the hop's by asking it on the
// connection it has, never dialing (AdmitPeer; answers cached per peer, a
// refusal for 30 s, at most MaxPeerCerts), and keeps the revocation list
// (KeepRevocations): fetched from the TIS when the agent has its URL and
// PUT into the DHT, and read from the DHT by every node. The DHT is a
// RecordStore, a two-method interface (*discovery.Discovery is one;
// tistest.Records an in-memory one for tests); a list it answers counts
// only if it verifies against the pinned root and is newer.
//
// A node registers RevocationValidator for RevocationNamespace in its DHT,
// so every DHT server stores, under RevocationKey(root), only lists signed
// by the pinned root and keeps the one with the highest sequence: a
// forged, tampered or older list put by a hostile node is refused and
// never replaces a newer one. At start and every tis.revocation_refresh
// (30 s after a failure) an agent with the TIS's URL fetches the list and
// PUTs it into the DHT when it is newer than the one it last put (again
// every hour, against record expiry); then every agent, with or without
// the URL, GETs the list from the DHT and offers it to its cache. So a
// node that cannot reach the TIS (or has only the root key) learns a
// revocation within about two refreshes.
//
// # Encodings
//
// Certificates, revocation lists, enrollment requests and answers have
// canonical binary encodings: a version byte, fields in a fixed order,
// big-endian integers, uint16 length prefixes, size caps, no trailing
// bytes. Signatures are over a context string and the encoding
// (internal/wire's signed-record pattern), so any decoded value
// re-encodes to the bytes that were signed.
//
// # Storage and several servers
//
// Every change (enrollment, renewal, revocation, the next revocation list)
// is one transaction of a Store: SQLite (modernc.org/sqlite, pure Go) by
// default, PostgreSQL (pgx) for a TIS served by several processes, which
// then share one database and stay correct together: a person row is
// locked (FOR UPDATE) or inserted under a unique key, so one e-mail never
// gets two enrollments, and the revocation list row is locked, so its
// sequence numbers are one increasing series. A conflicting transaction is
// run again. A Server answers the revocation list it last read for up to a
// second. A StateFile (state.json) of an older version is migrated into
// the store on the first start in one transaction, and kept until
// ConfirmMigration.
//
// The admission token keys and counts of package tis/token live in the
// store too (Server.TokenKey, Server.TakeTokens): one key per period for
// all servers, sealed under a key derived from the secret, and one
// budget per enrollment and period.
package tis
