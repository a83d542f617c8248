package service

import "time"

// Defaults and limits, in one place.
const (
	// DefaultPeriodLength is the length of a key-blinding time period
	// (Tor's is one day too).
	DefaultPeriodLength = 24 * time.Hour

	// MaxDescriptorSize caps an encoded descriptor record.
	MaxDescriptorSize = 16 << 10
	// MaxIntroPoints caps the introduction points in one descriptor.
	MaxIntroPoints = 10
	// MaxClients caps the contacts a contacts-only descriptor lists.
	MaxClients = 128
	// maxPeerIDLen caps a relay peer ID inside a descriptor or INTRODUCE.
	maxPeerIDLen = 64

	// DefaultReplayWindow is how far an INTRODUCE's timestamp may be from
	// the service's clock; the replay cache remembers ephemeral keys for
	// twice as long.
	DefaultReplayWindow = 10 * time.Minute
	// DefaultReplayEntries caps the replay cache of one service.
	DefaultReplayEntries = 1 << 16

	// DefaultIntroRate and DefaultIntroBurst are the token bucket of one
	// introduction point: INTRODUCE messages per second, and how many may
	// come at once (Tor's defaults for its intro point DoS extension).
	DefaultIntroRate  = 25
	DefaultIntroBurst = 200
	// MaxPoWDifficulty caps the proof-of-work difficulty a descriptor may
	// ask for (leading zero bits of a SHA-256); 0 turns the puzzle off.
	MaxPoWDifficulty = 32
)
