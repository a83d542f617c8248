// Package trust is pikcio's trust system: signed trust records, how they
// travel through the DHT, the Trust Capital Index (TCI) every node computes
// from them, the TIS's statements of relays' trust, the user's own
// records, and the local contacts store. The contact exchange over the
// network is in trust/exchange; the node wires all of it into path
// selection, the status page and `pikcio trust show`.
//
// # Records
//
// All records are about Matryoshka IDs (tis.ID of a Matryoshka
// certificate), except RelayScore.
//
//   - Vouch: the voucher states that the vouchee is who they claim, with a
//     weight of MinWeight..MaxWeight, an issue time and an expiry. Signed by
//     the voucher's Matryoshka key; Vouch.Verify needs the voucher's
//     Matryoshka certificate (checked with tis.VerifyMatryoshkaCert against
//     the pinned root) to bind the ID to the key. Nobody vouches for
//     themselves.
//   - Withdrawal: the voucher withdraws their vouch for the vouchee. Per
//     (voucher, vouchee) pair, the latest record wins: a vouch issued
//     strictly after the latest withdrawal counts, a withdrawal issued at
//     the same second as the latest vouch or later cancels it.
//   - Attestation: the TIS root, or an attester key named in the
//     configuration, states that the subject passed a check of some kind
//     ("email-verified", "account-linked:<service>").
//   - RelayScore: the TIS states the score band (BandWidth points wide) of
//     the owner of a relay, under the relay's node ID, for at most
//     MaxRelayScoreLifetime. See the RelayScore type for the trade-off: the
//     node ID <-> Matryoshka ID link stays with the TIS, at the price of
//     trusting the TIS for relay scores.
//
// Encodings are canonical: version byte, kind byte, fields in a fixed
// order, big-endian integers and times (Unix seconds), uint16 length
// prefixes, size caps, no trailing bytes. Signatures are Ed25519 over a
// per-kind context string and the encoding without the signature. Decoders
// check the form only; Verify methods check keys, signatures and times
// (issue time at most MaxClockSkew in the future, now before the expiry).
//
// # Trust Capital Index
//
// Compute takes verified records and Options and returns a score 0..100
// per identity. All arithmetic is on int64 fixed point with Unit = 10^6
// meaning 1.0, divisions round down, and every sum is over integers, so
// the result does not depend on the order of the records.
//
// Inputs at time now. A record counts if its issue time is at most
// MaxClockSkew after now and now is before its expiry. For each
// (voucher j, vouchee i) the latest counting vouch (ties: later expiry,
// higher weight) gives the edge weight w(j,i), unless withdrawn (above).
// W(j) is the sum of j's edge weights. The identities are those named by
// a seed, a counting attestation or an edge.
//
// Base trust. s(i) = Unit for an identity in Options.Seeds (the
// pre-trusted set: the TIS vouches for nobody directly, so the operator
// names the identities it trusts); otherwise
//
//	s(i) = min(AttestationCap, AttestationTrust * k(i))
//
// where k(i) is the number of distinct attestation kinds of i (defaults:
// 0.1 per kind, at most 0.3). The TIS and the configured attesters are
// thus the roots of all trust: seeds they name, attestations they sign.
//
// Iteration. t_0 = s, then for n = 1..Iterations (default 30), with Keep
// (default 0.75; the damping toward the seed is 1 - Keep):
//
//	share(j,i) = floor(t_{n-1}(j) * w(j,i) / W(j))
//	in(i)      = sum over vouchers j of share(j,i)
//	v(i)       = min(Unit, floor(in(i) * Keep / Unit))
//	t_n(i)     = max(s(i), v(i))
//
// and score(i) = floor((t(i) * 100 + Unit/2) / Unit), t being t_Iterations.
// A voucher passes on its own trust, split in proportion to its weights
// (vouching for many spreads it thin), and each hop keeps only Keep of it;
// vouching never lowers anyone below their base.
//
// Worked example (TestDocExample): seed S; A has one attestation
// (s(A) = 100000); vouches S->A 50, S->B 50, A->B 100, B->C 10.
//
//	t(S) = 1000000                                      score 100
//	t(A) = max(100000, 500000*0.75)        = 375000     score 38
//	t(B) = (500000 + 375000)*0.75          = 656250     score 66
//	t(C) = floor(656250*0.75)              = 492187     score 49
//
// (S passes 1000000*50/100 = 500000 to A and to B, A passes all of its
// 375000 to B, B all of its 656250 to C.) Without cycles the iteration is
// exact after as many rounds as the longest path; with cycles it stops at
// the fixed count, which is part of the definition.
//
// Sybil resistance. Trust only comes from base trust: a group of
// identities none of which is a seed or attested, and which nobody outside
// vouches for, has t = 0 exactly, however densely they vouch for each
// other. If trust X per round enters such a region through attack edges,
// every round inside keeps only Keep of it, so the region holds at most
// X * Keep / (1 - Keep) in total (3X with the defaults), spread over its
// members, and no member gets more than that (TestSybilCluster: 50 Sybils
// reached from an attested attacker with score 10 peak at 8, while an
// honest identity two hops from a seed scores 29). Attested Sybils each
// get at most AttestationCap, which is why attestations are capped low
// and why the checks behind them (e-mail, linked accounts) must cost an
// attacker something.
//
// Scores.Explain lists what makes up a score: seed, attestation kinds,
// base, the trust from vouches, and the top ExplainTop vouchers with their
// weights, scores and contributions.
//
// Compute costs O(Iterations * (identities + edges)) time after an
// O(records log records) sort; BenchmarkCompute measures 10,000
// identities and 50,000 vouches.
//
// # Contacts
//
// Contacts is the user's address book in ContactsFile (mode 0600, written
// atomically) in the node's data directory: Matryoshka ID -> a local name
// the user chose, the contact's Matryoshka certificate and, when the
// contact runs one, their node's certificate and peer ID (so that the
// client can prefer contacts' relays as guards). The running node and the
// CLI both change the file: every change re-reads it under an exclusive
// lock (ContactsLockFile), and the node reloads it when it changes. Names
// never leave the device: the type has no method that sends or publishes
// anything, and a test pins its method set.
//
// # Publishing: bundles and the seed list in the DHT
//
// Each identity publishes one Bundle under BundleKey(its Matryoshka ID)
// in pikcio's own DHT (Namespace, with Validator): its Matryoshka
// certificate, the vouches and withdrawals it issued, and the
// attestations it was given, signed as a whole by its Matryoshka key. A
// later bundle replaces an earlier one everywhere (Validator.Select picks
// the latest issue time, ties broken by the bytes), so a withdrawal takes
// effect as the new bundle spreads, and a replayed old bundle loses. The
// user's own records live in OwnFile in the data directory (Own:
// `pikcio trust vouch/withdraw` and `pikcio trust attestation add` edit
// it); the running node publishes it when it changes and every
// trust.refresh.
//
// The TIS names the seed identities (tis.SeedList, signed by the root,
// served at tis.PathSeeds); nodes with tis.url put it into the DHT under
// SeedsKey, so every node starts from the same seeds.
//
// A View crawls: the seed list, then the bundles of the seeds and of the
// identities they vouch for, breadth first, up to MaxIdentities, then the
// node's contacts and the identities its own bundle vouches for that the
// crawl did not reach (each wave in a random order, so that whoever
// serves the fetches sees a reached contact fetched like any other
// identity: TestCrawlFetchesContactsAsTheGraph). The node's own bundle
// is never fetched: the Agent offers it to the View as it publishes it,
// so a fetch of it would only tell whose crawl it is. It verifies every
// bundle and
// record (expired, forged and not-yet-valid records are dropped), keeps
// the newest bundle per identity and never goes back to an older one, and
// computes the TCI. Nodes that see the same records get the same scores
// (TestViewCrawl, and node's TestTrustNetwork on three nodes). An
// identity that no seed reaches through vouches is found only if it is
// one of the crawler's contacts; it could only have base trust from
// attestations anyway.
//
// Publishing a bundle tells the DHT peers that store it which peer put
// it: a DHT node can link a Matryoshka ID to the node ID that publishes
// its bundle. Vouches are public by design (they make the score), but
// this link is a leak the design does not close yet; an operator who
// minds can publish from a client-only node that runs no relay.
//
// # Relays' trust: statements by the TIS
//
// A relay is known by its node ID, a person by the Matryoshka ID, and the
// link is never published. The TIS, which issued both certificates to the
// same person, is the one party that knows it. A relay asks the TIS
// (tis.PathRelayScore) with both certificates and a signature by both
// keys; the TIS checks they are the same person's, computes the
// operator's score from its own View (TISScorer) and signs a RelayScore:
// the band (BandWidth points wide) of that score under the node ID, valid
// DefaultRelayScoreLifetime. The relay carries it in its descriptor
// (DescriptorExtension); clients verify it against the root and the
// relay's node certificate. Trade-off: clients trust the TIS for relay
// scores (it could lie) and a band says less than the score; in return
// nobody else can tie a relay's address to a person's social graph.
//
// Path selection (the node's Weigher): a relay weighs 1 + the middle of
// its band (1 without a statement); trust.min_guard_score and
// trust.min_exit_score (default DefaultMinScore, 1) exclude guards and
// exits whose band's top is below them and, once any relay the node
// weighed carried a statement, relays without one; with
// trust.prefer_contact_guards a contact's relay is 20 times more likely
// as a guard.
//
// # A node's agent
//
// Agent is an enrolled node's part in the trust system, on top of its
// tis.Agent: Keep puts the TIS's seed list and the node's own bundle
// (OwnFile, written by the CLI) into the DHT when they change and every
// Settings.Refresh, and crawls the records into its View; KeepRelayScore
// keeps a relay's statement from the TIS (Statement, OwnBand); Band and
// Weight check relays' statements against their certificates (cached per
// relay until its certificate or statement changes, and never for a
// revoked certificate) and weigh them for path selection; Report answers
// the status server's trust query (web.TrustReport). The DHT is a
// tis.RecordStore: a client node's goes through circuits
// (circuit.RecordClient), so that no DHT server sees the client's peer ID with its
// own or its contacts' Matryoshka IDs. Crawler keeps a View for a TIS that runs on its own.
//
// # Invite codes
//
// An Invite is the start of a contact exchange (trust/exchange carries it
// out, directly between the two nodes): InvitePrefix followed by the unpadded base64url of version,
// a 16-byte random secret, expiry and up to MaxInviteAddrs multiaddrs of
// the inviter's node. It holds no name and no Matryoshka ID, but its
// addresses name the inviter's node: give it only to the person invited.
//
// The status page's identity section and a circuit hop's band and contact
// name come from Agent.IdentityStatus and Agent.HopStatus (status.go).
package trust
