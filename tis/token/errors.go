package token

import "errors"

// Sentinel errors; test with errors.Is.
var (
	// ErrMalformed reports bytes that are not a canonical encoding.
	ErrMalformed = errors.New("malformed token encoding")
	// ErrNotEnrolled reports an issuance request whose node certificate is
	// not a valid, unrevoked certificate of this TIS, or that the
	// certificate's key did not sign.
	ErrNotEnrolled = errors.New("not an enrolled node")
	// ErrStaleRequest reports an issuance request whose time is too far
	// from the TIS clock.
	ErrStaleRequest = errors.New("token request timestamp out of range")
	// ErrLimit reports an enrollment that has had all the tokens of the
	// current period.
	ErrLimit = errors.New("token limit of this enrollment reached for this period")
	// ErrUnknownKey reports a token key this TIS did not publish (a token
	// of another TIS, or a made-up key), or a request under a key that is
	// not the current one.
	ErrUnknownKey = errors.New("unknown token key")
	// ErrKeyConflict reports two different token keys signed for
	// overlapping periods: the TIS could tell apart whoever got which.
	ErrKeyConflict = errors.New("two token keys for one period")
	// ErrForged reports a token whose signature the token key did not make.
	ErrForged = errors.New("forged token")
	// ErrSpent reports a token that was already redeemed.
	ErrSpent = errors.New("token already spent")
	// ErrExpired reports a token whose key's period (and grace) is over.
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid reports a token whose key's period has not begun.
	ErrNotYetValid = errors.New("token not yet valid")
	// ErrCacheFull reports a redeemer that cannot remember one more spent
	// token of a period; it refuses the token rather than forget one.
	ErrCacheFull = errors.New("spent-token cache full")
	// ErrNoTokens reports an empty wallet that could not be refilled.
	ErrNoTokens = errors.New("no admission tokens")
	// ErrRejected reports any other refusal by the issuer.
	ErrRejected = errors.New("token request rejected")
)
