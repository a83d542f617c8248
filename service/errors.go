package service

import "errors"

// Errors callers branch on. Every parse and check failure wraps one.
var (
	ErrMalformed     = errors.New("malformed service message")
	ErrTooLarge      = errors.New("service message over its size cap")
	ErrBadSignature  = errors.New("descriptor signature does not verify")
	ErrDecrypt       = errors.New("cannot decrypt (wrong address or key, or tampered)")
	ErrNotAuthorized = errors.New("descriptor is for the service's contacts only and this client is not listed")
	ErrKeyMismatch   = errors.New("record is not under the key it belongs to")
	ErrStale         = errors.New("descriptor is for another time period")
	ErrUnknownIntro  = errors.New("introduce names an introduction point this service does not hold")
	ErrReplay        = errors.New("introduce replayed or out of its time window")
	ErrAuth          = errors.New("handshake authentication failed")
	ErrRateLimited   = errors.New("introduction point over its rate limit")
	ErrPoW           = errors.New("introduce lacks the required proof of work")
)
