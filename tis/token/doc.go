// Package token issues and redeems anonymous admission tokens: the TIS
// gives enrolled nodes blind RSA signatures (RFC 9474) that a guard checks
// offline, so that a guard learns that the previous hop of a circuit is
// an enrolled user, and nothing that links two circuits or a circuit to a
// person.
//
// # Choice of scheme
//
// Tokens are RSABSSA-SHA384-PSS-Deterministic blind signatures (RFC 9474)
// made with github.com/cloudflare/circl/blindsign/blindrsa, the variant
// Privacy Pass uses for its publicly verifiable tokens (RFC 9578, token
// type 2). Blind RSA because:
//   - it is publicly verifiable: a guard checks a token with the period's
//     public key, offline. The VOPRF tokens of Privacy Pass (type 1) can
//     only be checked with the issuer's private key, so every guard would
//     hold the key that mints tokens, or every redemption would go to the
//     TIS, which would then see when each circuit is built and at which
//     guard;
//   - blindness is unconditional: the TIS's view of an issuance is
//     consistent with every token ever redeemed (TestTokensUnlinkableToIssuance
//     checks the algebra), whatever computing power it has;
//   - circl is maintained and implements the RFC with its test vectors.
//     It has no Privacy Pass issuance protocol (cloudflare/pat-go has, as
//     a research implementation), and Privacy Pass's HTTP framing
//     (WWW-Authenticate challenges, origin names) is made for web origins,
//     not for admission to an onion circuit. So the token layout follows
//     type 2 (key ID, random part, signature) with the guard's peer ID in
//     place of the challenge, and the issuance messages are this package's.
//
// Costs, in CPU time per token with the default 2048-bit keys (medians of
// five runs on an AMD EPYC core): the TIS about 3.4 ms (BenchmarkIssue;
// circl's blind signing does not use the Chinese remainder theorem), the
// client about 0.6 ms more for blinding, unblinding, checking and HTTP
// (BenchmarkClientIssue), a guard about 50 µs (BenchmarkRedeem). A token
// is 323 bytes. Re-measured when admission was wired in (medians of five,
// 2-core machine at load average 13 to 20): 3.2 ms of TIS CPU per token,
// 3.95 ms for client and TIS together, 50 µs at the guard. A 3-hop
// build on loopback with a token from a filled wallet against one
// without (BenchmarkBuildWithToken, 300 builds, five runs each, load
// average 3.5 to 5) took a median 3.14 against 2.43 ms: 0.7 ms more, of
// which the guard's check is 50 µs and most of the rest the wallet's
// file, rewritten and synced in the background after each Take (under
// load averages of 13 to 20 the difference was lost in the noise). A wallet
// that is empty asks for firstBatch (4) tokens on the build's path, about
// 16 ms of TIS work, then refills to Target in the background.
//
// # Protocol
//
// Time is cut into periods of IssuerOptions.Period (DefaultPeriod, a day),
// aligned on multiples of the period since 1970. For each period the TIS
// makes a fresh RSA key and publishes it as a Key: the root key ID, the
// period's start and end and the public key, signed by the TIS root under
// a context string of its own (tis.Server.SignTokenKey). PathKeys serves
// the previous period's key during DefaultGrace, the current one's and
// the next one's, so a guard holds a key before its period begins.
//
// Issuance (PathIssue, Client.Issue): the client picks the current key
// (at the turn of a period, should the TIS refuse it as not current, the
// neighbouring one within the clock skew), draws a 32-byte random seed per
// token and blinds the message
//
//	"pikcio-admission-token-v1\x00" || key ID || len16 || guard peer ID || seed
//
// It sends an IssueRequest: the TIS it is meant for, its node certificate,
// the key ID, the time and up to MaxBatch blinded messages, signed by its
// node key. The TIS checks that the certificate is its own, valid and not
// revoked, that the node key signed the request, that the time is within
// MaxClockSkew, and that the key is the current one; then its Counter
// grants up to TokensPerPeriod (DefaultTokensPerPeriod, 512) tokens per
// enrollment per period, counted by node ID, so a re-issued certificate
// shares its enrollment's count. It blindly signs the granted messages and
// says how many remain. The client unblinds, checks each signature
// against the published key (a TIS cannot hand out tokens that guards
// refuse) and keeps them in a Wallet, per guard, in a 0600 file; the
// wallet refills in the background when a guard's tokens run low.
//
// Redemption (Redeemer.Redeem): the guard decodes the token, finds its key
// among the keys it holds (one of another TIS, or a made-up key, is
// ErrUnknownKey), checks the time (from tis.DefaultMaxClockSkew before the
// key's period to Grace after it), verifies the signature over
// the message with its own peer ID in it (a token made for another guard
// fails like a forged one, ErrForged), and refuses a seed it has seen
// under that key (ErrSpent). The spent-token cache is per key, capped at
// RedeemerOptions.MaxSpent (past the cap it refuses, ErrCacheFull, rather
// than forget), and goes with the key when its period and grace end.
// Binding a token to one guard is what makes a guard's own cache enough:
// a token cannot be spent at two guards, and the guard it is shown to
// cannot spend it elsewhere.
//
// # What each side learns
//
//   - The TIS, at issuance: that this enrollment (the node ID in the
//     certificate, hence the person) asked, when, from which IP address,
//     and how many tokens it got. It never sees a seed, a token, a
//     signature or the guard; a blinded message is uniformly distributed
//     whatever the token.
//   - A guard, at redemption: that the previous hop holds a valid token of
//     this period for it, that is, that some enrollment asked the TIS for
//     it. Not which enrollment, and nothing that links two tokens: seeds
//     are random, signatures of one key are indistinguishable. Tokens are
//     unlinkable to each other only among the holders of the same key,
//     which is everyone in the period.
//   - TIS and guard together: the TIS's records of issuances and the
//     guard's of redemptions cannot be matched token by token; what
//     remains is timing and volume (a user who alone asks for tokens at
//     3:00 and alone builds circuits at 3:01). The batch and refill sizes
//     of the Wallet blur that.
//   - A TIS trying to tag users with per-user keys must publish every key
//     it signs for guards to accept its tokens; two signed keys for one
//     period are refused by guards and clients (ErrKeyConflict) and are
//     signed proof of the attempt.
//   - Limits: one enrollment gets TokensPerPeriod tokens a period, each
//     good for one circuit at one guard; a token of the previous period
//     stays good for the grace, so over any span of one period an
//     enrollment opens at most about twice TokensPerPeriod circuits.
//     Replaying a captured issuance request (it travels over TLS) within
//     the clock skew only spends its sender's allowance on signatures the
//     replayer cannot unblind.
//
// # Admission
//
// Mounting: every way of running a TIS (the TIS command, localnet, the
// tests) calls Mount, which makes the Issuer with its keys and counts in
// the TIS's store (tis.Server is a KeyStore and a Counter) and serves it
// under tis.PathTokens. The first server of a database to need a
// period's key generates it and stores it, in one transaction that
// fails for the servers that raced it, which read the stored one; the
// private key is stored sealed (AES-256-GCM) under a key derived from
// the TIS secret, bound to the root and the period, so a copy of the
// database without the secret cannot issue. The count of an enrollment
// in a period is one row, keyed by a keyed hash of both, read locked and
// written in one transaction: TIS processes sharing one PostgreSQL
// database (or one SQLite file) sign with one key, a guard fetching the
// keys from any of them accepts the tokens of all, and an enrollment
// gets TokensPerPeriod once, not once per process or restart
// (TestTwoServersShareTokens). Storing a period's key deletes the keys
// and counts of the periods before the previous one. A KeyFile of an
// older version is moved into the store by Mount.
//
// A node's part is an Admission (NewAdmission, from plain inputs: the
// TIS's URL and root, the node's key, certificate and peer ID, its
// roles, and the errors to refuse with; node/admission.go wires it).
//
// Client: a node with tis.url makes a Client from its enrollment and
// opens a Wallet in its data directory. Before
// building a circuit, circuit.ClientOptions.Token calls Wallet.Take for
// the first hop and the token travels in the padding of the CREATE cell
// (circuit/admission.go), so it costs no byte and no round trip more;
// ErrNoTokens is the clear error for a client out of tokens, and
// Wallet.State feeds the status page.
//
// Guard: circuit.RelayOptions.AdmitCircuit receives the token once the
// CREATE has arrived and the handshake budget allows it, and
// Admission.Admit redeems it with a Guard, which fetches the keys every
// DefaultKeyRefresh and, for a token of a key it does not hold, at once
// (at most every DefaultMinKeyFetch). A refusal is DESTROY with
// circuit.DestroyTokenMissing, DestroyTokenSpent or DestroyTokenInvalid.
// Only a relay's first hop needs a token: a middle or exit relay sees a
// relay as its previous hop, which proves itself by its published
// certificate as before.
package token
