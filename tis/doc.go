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
// HMAC(secret, key). The same person (same normalized name and e-mail) with
// the same two keys gets fresh certificates with the same IDs (renewal, lost
// files), up to MaxIssuesPerPerson times; the same e-mail with any other
// name or key, or a key already enrolled by another e-mail, is refused with
// ErrAlreadyEnrolled; a person one of whose certificates was revoked is
// refused with ErrBlocked. Changing keys means the operator revokes and a
// new e-mail is used: this package has no key rotation.
//
// # What the TIS keeps, what it knows, what it never learns
//
// The TIS directory holds RootKeyFile, SecretFile and StateFile, all 0600
// in a 0700 directory. The state holds only keyed hashes (of e-mails, of
// name+e-mail+keys, of public keys), serials and the signed revocation
// list: no name and no e-mail in the clear. Someone who steals the state
// without the secret learns how many people enrolled and which serials
// belong to the same person, nothing more; someone who steals both can test
// guessed e-mails, so the secret should be backed up apart from the state.
//
// During an enrollment the TIS sees the name, the e-mail, both public keys
// and the client's IP address; it can link the node ID to the Matryoshka
// ID (it computes both, and the state groups a person's serials), which the
// TIS design accepts. It never receives a private key, so it cannot
// impersonate a user, read their traffic or learn their contacts; but like
// any certificate authority a compromised root key can certify arbitrary
// keys, which is why nodes pin one root key and revocation exists.
//
// The TIS does not verify that the enrollee owns the e-mail: that is for
// the deployment (e.g. a mailed code before enrollment). Until then the
// ErrAlreadyEnrolled answer tells a prober that an e-mail is enrolled; the
// global enrollment rate limit (EnrollRate) only slows such probing.
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
// # A node's agent
//
// Agent is an enrolled node's part in the TIS (LoadAgent reads its
// enrollment; EnrollFirst enrolls at a first start). It serves the node's
// certificate on CertProtocol (Serve), checks a relay's certificate from
// its descriptor (VerifyRelay) and a previous hop's by asking it on the
// connection it has, never dialing (AdmitPeer; answers cached per peer, a
// refusal for 30 s, at most MaxPeerCerts), and keeps the revocation list
// (KeepRevocations): fetched from the TIS when the agent has its URL and
// PUT into the DHT, and read from the DHT by every node. The DHT is a
// RecordStore, a two-method interface (*discovery.Discovery is one;
// tistest.Records an in-memory one for tests); a list it answers counts
// only if it verifies against the pinned root and is newer.
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
// # Limits
//
// The state is one JSON file rewritten (atomically) on every enrollment,
// which suits thousands of users, not millions. One Server per directory:
// nothing locks the directory against a second process.
package tis
