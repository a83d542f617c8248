package token

import (
	"time"

	"github.com/pikcio/pikcio/tis"
)

// Defaults, in one place.
const (
	// DefaultPeriod is how long one token key signs, and the span over
	// which TokensPerPeriod counts.
	DefaultPeriod = 24 * time.Hour
	// DefaultTokensPerPeriod is how many tokens one enrollment gets per
	// period: one circuit each. A client that builds a circuit every ten
	// minutes all day needs 144; 512 leaves room for isolation, preemptive
	// circuits and failed builds, while one enrollment can open no more
	// than that many circuits a day across all guards together.
	DefaultTokensPerPeriod = 512
	// DefaultGrace is how long after its period a key's tokens are still
	// accepted (clock skew, a circuit built at the turn of the period).
	DefaultGrace = time.Hour
	// DefaultKeyBits is the size of the token keys' RSA modulus.
	DefaultKeyBits = 2048
	// DefaultMaxSpent caps the spent tokens a redeemer remembers per key.
	DefaultMaxSpent = 1 << 17
	// DefaultWalletLow and DefaultWalletTarget: a wallet with fewer than
	// Low tokens refills in the background up to Target.
	DefaultWalletLow    = 16
	DefaultWalletTarget = 64
	// DefaultRetryDelay is how long a wallet waits after a failed refill.
	DefaultRetryDelay = time.Minute
	// DefaultKeyRefresh is how often a Guard fetches the token keys. Keys
	// are published a period ahead, so an hour keeps a guard current
	// through any period change.
	DefaultKeyRefresh = time.Hour
	// DefaultMinKeyFetch is the least time between two key fetches a
	// Guard makes for tokens of keys it does not hold.
	DefaultMinKeyFetch = 30 * time.Second
)

// Wire caps.
const (
	// MaxBatch caps the blinded messages of one issuance request.
	MaxBatch = 64
	// MinKeyBits and MaxKeyBits bound a token key's modulus.
	MinKeyBits = 2048
	MaxKeyBits = 4096
	// maxModulus is the largest signature or blinded message, in bytes.
	maxModulus = MaxKeyBits / 8
	// maxPublicKey caps an encoded (PKCS #1 DER) token public key.
	maxPublicKey = maxModulus + 64
	// MaxKeysPublished caps the keys in one KeySet.
	MaxKeysPublished = 4
)

// IssuerOptions configure an Issuer. The zero value is valid.
type IssuerOptions struct {
	// Period is the life of one token key, at least a minute (default
	// DefaultPeriod). Periods are aligned on multiples of Period since
	// 1970, the same for everyone.
	Period time.Duration
	// TokensPerPeriod caps the tokens of one enrollment (one node ID) per
	// period (default DefaultTokensPerPeriod).
	TokensPerPeriod int
	// Grace is how long the previous period's key stays published after
	// its period, for guards that start then (default DefaultGrace).
	Grace time.Duration
	// KeyBits is the RSA modulus size, MinKeyBits to MaxKeyBits (default
	// DefaultKeyBits).
	KeyBits int
	// Keys keeps the token private keys (default a new MemKeys, for
	// tests: a restarted issuer would then sign a second key for the
	// period, which guards and clients refuse, ErrKeyConflict). Mount
	// sets it to the TIS server, which keeps them in its store.
	Keys KeyStore
	// MaxClockSkew bounds request timestamps (default tis.DefaultMaxClockSkew).
	MaxClockSkew time.Duration
	// Counter counts tokens per enrollment and period (default a new
	// MemCounter; Mount sets it to the TIS server, which counts in its
	// store).
	Counter Counter
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o IssuerOptions) withDefaults() IssuerOptions {
	if o.Period <= 0 {
		o.Period = DefaultPeriod
	}
	if o.TokensPerPeriod <= 0 {
		o.TokensPerPeriod = DefaultTokensPerPeriod
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.KeyBits <= 0 {
		o.KeyBits = DefaultKeyBits
	}
	if o.MaxClockSkew <= 0 {
		o.MaxClockSkew = tis.DefaultMaxClockSkew
	}
	if o.Keys == nil {
		o.Keys = &MemKeys{}
	}
	if o.Counter == nil {
		o.Counter = NewMemCounter()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// RedeemerOptions configure a Redeemer. The zero value is valid.
type RedeemerOptions struct {
	// Grace is how long after its period a key's tokens are accepted
	// (default DefaultGrace).
	Grace time.Duration
	// MaxSpent caps the spent tokens remembered per key (default
	// DefaultMaxSpent); past it tokens of that key are refused with
	// ErrCacheFull until the key expires.
	MaxSpent int
}

func (o RedeemerOptions) withDefaults() RedeemerOptions {
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.MaxSpent <= 0 {
		o.MaxSpent = DefaultMaxSpent
	}
	return o
}

// WalletOptions configure a Wallet. The zero value is valid.
type WalletOptions struct {
	// Low: a Take that leaves fewer tokens starts a background refill
	// (default DefaultWalletLow).
	Low int
	// Target is how many tokens a refill aims for (default
	// DefaultWalletTarget, at least Low).
	Target int
	// RetryDelay is how long after a failed refill the wallet asks again
	// (default DefaultRetryDelay).
	RetryDelay time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (o WalletOptions) withDefaults() WalletOptions {
	if o.Low <= 0 {
		o.Low = DefaultWalletLow
	}
	if o.Target <= 0 {
		o.Target = DefaultWalletTarget
	}
	if o.Target < o.Low {
		o.Target = o.Low
	}
	if o.RetryDelay <= 0 {
		o.RetryDelay = DefaultRetryDelay
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
