// Package exchange runs the contact exchange of issue #7 over the network:
// `pikcio contacts invite` makes a one-time invite code (trust.Invite) and
// records it as pending; the friend runs `pikcio contacts accept CODE
// --name NAME`, which calls Accept; the inviter's node answers with
// Service. At the end both hold each other's Matryoshka ID and
// certificate, and the node certificate of each other's node, in their
// trust.Contacts, each under the name it chose locally.
//
// # Why directly between the two nodes
//
// The accepter dials the inviter's node at the addresses in the invite
// and the two talk on one libp2p stream (ProtocolID). There is no DHT
// record and no server: only the two nodes, and the transport between
// them, see that the connection happened, and its contents are encrypted
// by the libp2p transport. A record in the DHT would tell every peer
// storing or fetching it that an invite exists and when it was used; a
// rendezvous server (the TIS, say) would learn who befriended whom. The
// price is that the inviter's node must be reachable when the friend
// accepts; the invite's addresses already name that node, which is why the
// code is to be given only to the person invited.
//
// # What is sent
//
// Names never leave the device: the inviter's name for the friend is
// chosen with the invite and kept in InvitesFile until the exchange, then
// in the contacts file; the accepter's is given to Accept. Neither is in
// any message. The messages carry only certificates (Matryoshka and node),
// a lookup tag, MACs and signatures:
//
//	accepter -> inviter: version, tag, accepter's certificates, MAC,
//	                     signatures over the hello transcript
//	inviter -> accepter: result code; if OK, inviter's certificates, MAC,
//	                     signatures over the reply transcript
//
// The tag is SHA-256("pikcio invite id\0" || secret); the MAC key is
// HMAC-SHA256(secret, "pikcio invite mac key\0"). InvitesFile keeps the
// tag and MAC key, not the secret. (The brief had SHA-256 of the secret,
// which would not let the inviter check an HMAC keyed with the secret.)
//
// The hello transcript binds a context string, the version, the libp2p
// peer IDs of both ends of the stream (accepter first), the tag and the
// accepter's certificates; the reply transcript binds both peer IDs, the
// whole hello and the inviter's certificates. Each side presents an
// HMAC-SHA256 of its transcript under the MAC key (knowledge of the
// secret), an Ed25519 signature by its Matryoshka key (possession of the
// identity), and, with a node certificate, a signature by that node's
// key (the node is theirs: the accepter may run Accept from a short-lived
// host, and the node recorded for it comes from its certificate, not from
// the connection). Because the transcripts bind the peer IDs, a captured
// hello fails on any other connection.
//
// The inviter checks, in order: rate limit (DefaultAttemptsPerSecond),
// the tag names a pending invite, the MAC, the expiry, the accepter's
// certificates against the pinned root and the revocation list, the
// signatures, and that the accepter is not the inviter. An unknown tag, a
// used invite and a wrong MAC are all ErrInviteUnknown: a friend with a
// mistyped code and a stranger probing learn the same. Then, under the
// lock of InvitesFile, it removes the invite and adds the contact, so an
// invite is used at most once. The accepter checks that the inviter's
// node certificate is for the peer it dialed, and the rest as above.
// Errors travel as a one-byte code and come out of Accept as the same
// sentinel errors.
//
// If the reply is lost after the inviter recorded the friend, the invite
// is spent and only the inviter holds the contact; a new invite repairs
// it (the contact is then renamed, not duplicated).
package exchange
