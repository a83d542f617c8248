// Package trust is the core of pikcio's trust system (issue #7): signed
// trust records, the Trust Capital Index (TCI) computed from them, and the
// local contacts store. Wiring into path selection, the DHT, commands and
// the status page is not here.
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
// the user chose and the contact's Matryoshka certificate. Names never
// leave the device: the type has no method that sends or publishes
// anything, and a test pins its method set.
//
// # Invite codes
//
// An Invite is the start of a contact exchange (the exchange itself is a
// later step): InvitePrefix followed by the unpadded base64url of version,
// a 16-byte random secret, expiry and up to MaxInviteAddrs multiaddrs of
// the inviter's node. It holds no name and no Matryoshka ID, but its
// addresses name the inviter's node: give it only to the person invited.
package trust
