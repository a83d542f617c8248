package exchange

import "errors"

// Sentinel errors; test with errors.Is. Those the inviter reports travel as
// a one-byte code (see codeOf), so Accept returns the same sentinels.
var (
	// ErrInviteUnknown reports an invite the inviter does not hold: never
	// made, already used, pruned, or a wrong secret (the accepter cannot
	// tell these apart).
	ErrInviteUnknown = errors.New("invite unknown or already used")
	// ErrInviteExpired reports an invite past its expiry.
	ErrInviteExpired = errors.New("invite expired")
	// ErrBadProof reports a signature by a Matryoshka or node key that
	// does not verify over the exchange.
	ErrBadProof = errors.New("bad proof in contact exchange")
	// ErrCertificate reports a certificate that is not valid for the
	// pinned TIS root (other TIS, expired, revoked, wrong type or key);
	// the error also wraps the tis sentinel when it is local.
	ErrCertificate = errors.New("invalid certificate in contact exchange")
	// ErrOwnInvite reports an invite accepted by the identity that made it.
	ErrOwnInvite = errors.New("invite made by the same identity")
	// ErrRateLimited reports an inviter receiving too many attempts.
	ErrRateLimited = errors.New("too many contact exchange attempts")
	// ErrMalformed reports bytes that are not a contact exchange message.
	ErrMalformed = errors.New("malformed contact exchange message")
	// ErrRefused reports a failure on the inviter's side (such as its
	// contacts file), which it does not detail.
	ErrRefused = errors.New("contact exchange refused by the inviter")
	// ErrSelf reports an incomplete own identity: no Matryoshka
	// certificate, a key that does not match it, or a node certificate
	// without its node key.
	ErrSelf = errors.New("own identity incomplete")
	// ErrTooManyInvites reports MaxPending unexpired invites already
	// pending.
	ErrTooManyInvites = errors.New("too many pending invites")
)

// Result codes of the inviter's reply.
const (
	codeOK byte = iota
	codeUnknown
	codeExpired
	codeBadProof
	codeCertificate
	codeOwnInvite
	codeRateLimited
	codeMalformed
	codeRefused
)

var codeErrors = map[byte]error{
	codeUnknown:     ErrInviteUnknown,
	codeExpired:     ErrInviteExpired,
	codeBadProof:    ErrBadProof,
	codeCertificate: ErrCertificate,
	codeOwnInvite:   ErrOwnInvite,
	codeRateLimited: ErrRateLimited,
	codeMalformed:   ErrMalformed,
	codeRefused:     ErrRefused,
}

// codeOf maps an error of the inviter's checks to its reply code.
func codeOf(err error) byte {
	for code, sentinel := range codeErrors {
		if errors.Is(err, sentinel) {
			return code
		}
	}
	return codeRefused
}
