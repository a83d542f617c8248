package tis

import (
	"errors"

	"github.com/pikcio/pikcio/internal/privfile"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrMalformed reports bytes that are not a canonical encoding.
	ErrMalformed = errors.New("malformed encoding")
	// ErrSignature reports a signature that the pinned root key did not make.
	ErrSignature = errors.New("bad signature")
	// ErrUnknownIssuer reports a certificate or list issued by another TIS
	// (or self-signed): its issuer key ID is not the pinned root's.
	ErrUnknownIssuer = errors.New("issued by an unknown TIS")
	// ErrExpired reports a certificate past its expiry.
	ErrExpired = errors.New("certificate expired")
	// ErrNotYetValid reports a certificate whose issue time is in the future.
	ErrNotYetValid = errors.New("certificate not yet valid")
	// ErrRevoked reports a certificate whose serial is on the revocation list.
	ErrRevoked = errors.New("certificate revoked")
	// ErrWrongKey reports a certificate whose subject key is not the key of
	// the peer (or of the key pair) it was presented for.
	ErrWrongKey = errors.New("certificate is for another key")
	// ErrWrongType reports a Matryoshka certificate where a node certificate
	// was expected, or the reverse.
	ErrWrongType = errors.New("wrong certificate type")
	// ErrUnsupportedKey reports a key type other than Ed25519.
	ErrUnsupportedKey = errors.New("unsupported key type")

	// ErrProofOfPossession reports an enrollment request not signed by the
	// private keys of both public keys it carries.
	ErrProofOfPossession = errors.New("proof of possession failed")
	// ErrStaleRequest reports an enrollment request whose timestamp is too
	// far from the TIS clock.
	ErrStaleRequest = errors.New("enrollment request timestamp out of range")
	// ErrBadProperties reports a name or e-mail that is empty or invalid.
	ErrBadProperties = errors.New("invalid identity properties")
	// ErrAlreadyEnrolled reports an e-mail, or a key, already enrolled with
	// other properties or keys.
	ErrAlreadyEnrolled = errors.New("already enrolled")
	// ErrBlocked reports a person one of whose certificates was revoked: the
	// TIS does not issue to them again.
	ErrBlocked = errors.New("enrollment blocked after revocation")
	// ErrRateLimited reports an enrollment refused because the TIS is
	// receiving too many, or the person was re-issued certificates too often.
	ErrRateLimited = errors.New("too many enrollment requests")
	// ErrRejected reports any other refusal by the TIS.
	ErrRejected = errors.New("enrollment rejected")

	// ErrExists reports that Init found an existing root key or secret.
	ErrExists = errors.New("TIS directory already initialized")
	// ErrNoDelta reports a revocation list of one page, which has no
	// delta (PathRevocations?delta): fetch the page.
	ErrNoDelta = errors.New("revocation list has no delta")
	// ErrPermissions reports a secret file that others may read.
	ErrPermissions = privfile.ErrPermissions
	// ErrUnknownSerial reports a serial that this TIS never issued.
	ErrUnknownSerial = errors.New("unknown serial")
	// ErrNotLoopback reports plain HTTP requested on a non-loopback address.
	ErrNotLoopback = errors.New("plain HTTP is only served on loopback; configure TLS")
	// ErrCodeSent is the answer to an enrollment request without a code
	// (unless it renews the enrolled keys): a one-time code was mailed to
	// the e-mail address, or had been a moment before. The same answer
	// comes whether or not the address is enrolled.
	ErrCodeSent = errors.New("an enrollment code was mailed to the address: enroll again with it")
	// ErrBadCode reports a wrong code, a code already used for other keys,
	// or no code pending for the address.
	ErrBadCode = errors.New("wrong or used enrollment code")
	// ErrCodeExpired reports a code past its lifetime: ask for a new one.
	ErrCodeExpired = errors.New("enrollment code expired")
	// ErrTooManyAttempts reports a code entered wrongly too often: ask for
	// a new one.
	ErrTooManyAttempts = errors.New("too many wrong enrollment codes")
	// ErrNoMailer reports a Server without a Mailer and without
	// OpenEnrollment.
	ErrNoMailer = errors.New("enrollment needs a mailer for its codes (ServerOptions.Mailer)")
	// ErrClosed reports use of a closed Server.
	ErrClosed = errors.New("server closed")
)
