package trust

import "errors"

// Sentinel errors; test with errors.Is.
var (
	// ErrMalformed reports bytes or fields that are not a canonical record.
	ErrMalformed = errors.New("malformed trust record")
	// ErrSignature reports a record whose signature the expected key did
	// not make.
	ErrSignature = errors.New("bad trust record signature")
	// ErrWrongIdentity reports a vouch or withdrawal checked against the
	// certificate of another Matryoshka ID.
	ErrWrongIdentity = errors.New("certificate is for another identity")
	// ErrUnknownAttester reports an attestation or relay score statement
	// from a key that is neither the TIS root nor a configured attester.
	ErrUnknownAttester = errors.New("unknown attester")
	// ErrExpired reports a record past its expiry.
	ErrExpired = errors.New("trust record expired")
	// ErrNotYetValid reports a record issued in the future.
	ErrNotYetValid = errors.New("trust record not yet valid")
	// ErrLifetime reports a relay score statement valid for longer than
	// MaxRelayScoreLifetime.
	ErrLifetime = errors.New("record lifetime too long")
	// ErrNotFound reports a contact that is not in the store.
	ErrNotFound = errors.New("contact not found")
	// ErrAmbiguousContact reports a name that several contacts have.
	ErrAmbiguousContact = errors.New("several contacts have this name; give the Matryoshka ID")
)
