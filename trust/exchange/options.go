package exchange

import (
	"time"

	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/tis"
)

// ProtocolID is the libp2p protocol of the contact exchange.
const ProtocolID = "/pikcio/contact/1"

// Defaults and limits, in one place.
const (
	// Timeout bounds one exchange, on both sides.
	Timeout = 15 * time.Second
	// DefaultAttemptsPerSecond and DefaultAttemptBurst rate-limit the
	// exchanges an inviter serves (all peers together).
	DefaultAttemptsPerSecond = 5
	DefaultAttemptBurst      = 10
	// ExpiredKeep is how long an expired invite is kept, so that a late
	// friend hears ErrInviteExpired rather than ErrInviteUnknown; it is
	// pruned after.
	ExpiredKeep = 7 * 24 * time.Hour
	// MaxPending caps the invites waiting in InvitesFile.
	MaxPending = 64
	// MaxLifetime caps an invite's lifetime.
	MaxLifetime = 30 * 24 * time.Hour
)

// Options of a Service. The zero value is usable.
type Options struct {
	// Revocations returns the current revocation list of the TIS (already
	// verified against the root), or nil. Default: none.
	Revocations func() *tis.RevocationList
	// Now is the clock. Default: time.Now.
	Now func() time.Time
	// Log receives debug messages (no names, no invite secrets). Default:
	// logrus with component "contact-exchange".
	Log *logrus.Entry
	// AttemptsPerSecond and AttemptBurst rate-limit incoming exchanges.
	// Defaults: DefaultAttemptsPerSecond, DefaultAttemptBurst.
	AttemptsPerSecond float64
	AttemptBurst      int
}

func (o Options) withDefaults() Options {
	if o.Revocations == nil {
		o.Revocations = func() *tis.RevocationList { return nil }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = logrus.WithField("component", "contact-exchange")
	}
	if o.AttemptsPerSecond <= 0 {
		o.AttemptsPerSecond = DefaultAttemptsPerSecond
	}
	if o.AttemptBurst <= 0 {
		o.AttemptBurst = DefaultAttemptBurst
	}
	return o
}
