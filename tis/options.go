package tis

import (
	"net/netip"
	"time"
)

// Defaults, in one place.
const (
	// DefaultCertLifetime is the validity of an issued certificate.
	DefaultCertLifetime = 365 * 24 * time.Hour
	// DefaultRevocationLifetime is how long a signed revocation list stays
	// current (its NextUpdate); the server re-signs it after half of that.
	DefaultRevocationLifetime = 24 * time.Hour
	// DefaultMaxClockSkew is how far an enrollment request's timestamp may
	// be from the TIS clock, and how far in the future a certificate's issue
	// time may be for a verifier.
	DefaultMaxClockSkew = 5 * time.Minute
	// TimeGranularity is the rounding of certificate issue times, so that
	// the node and Matryoshka certificates of one enrollment do not share a
	// to-the-second timestamp (see doc.go).
	TimeGranularity = time.Hour
	// CertTimeSpread is how far back, at most, a new certificate's issue
	// time and, apart, its expiry are moved, in TimeGranularity steps
	// drawn for each certificate, so that the node and Matryoshka
	// certificates of one enrollment carry unrelated times.
	CertTimeSpread = 7 * 24 * time.Hour
	// MaxRequestBody caps an enrollment request body.
	MaxRequestBody = 4 << 10
	// DefaultEnrollRate and DefaultEnrollBurst bound enrollment requests
	// (all clients together) per second. Codes, not this, keep out made-up
	// identities; this only caps the load.
	DefaultEnrollRate  = 200
	DefaultEnrollBurst = 400
	// DefaultAddrRate and DefaultAddrBurst bound enrollment requests per
	// client address (an IPv6 /64) per second: a burst of 10, then one a
	// minute. One address cannot lock out the others.
	DefaultAddrRate  = 1.0 / 60
	DefaultAddrBurst = 10
	// DefaultDomainRate and DefaultDomainBurst bound the code mails sent to
	// one mail domain per second (a flood of one provider's addresses).
	DefaultDomainRate  = 5
	DefaultDomainBurst = 100
	// DefaultCodeLifetime is how long a mailed enrollment code works.
	DefaultCodeLifetime = 15 * time.Minute
	// DefaultCodeAttempts is how many wrong codes end a code.
	DefaultCodeAttempts = 5
	// DefaultCodeResend is how long after a code mail the TIS sends no
	// other code to the address (asking again answers the same).
	DefaultCodeResend = time.Minute
	// DefaultRelayScoreRate and DefaultRelayScoreBurst bound relay score
	// requests.
	DefaultRelayScoreRate  = 20
	DefaultRelayScoreBurst = 40
	// MaxIssuesPerPerson caps how many times one person's certificates are
	// re-issued.
	MaxIssuesPerPerson = 32
)

// ServerOptions configure a Server. The zero value is valid.
type ServerOptions struct {
	// Bootstraps are the multiaddrs (with /p2p/ peer IDs) given to every
	// enrolled node. Each must parse as a multiaddr.
	Bootstraps []string
	// CertLifetime is the validity of issued certificates, at least two
	// TimeGranularity (default DefaultCertLifetime). As issue times are
	// rounded down, a certificate is valid for up to TimeGranularity less.
	CertLifetime time.Duration
	// RevocationLifetime is the NextUpdate horizon of the revocation list,
	// at least a minute (default DefaultRevocationLifetime).
	RevocationLifetime time.Duration
	// MaxClockSkew bounds enrollment request timestamps
	// (default DefaultMaxClockSkew).
	MaxClockSkew time.Duration
	// EnrollRate and EnrollBurst bound enrollment requests per second, all
	// clients together (defaults DefaultEnrollRate, DefaultEnrollBurst).
	// This slows down probing which e-mails are enrolled (see doc.go).
	EnrollRate  float64
	EnrollBurst int
	// AddrRate and AddrBurst bound enrollment requests per client address
	// (defaults DefaultAddrRate, DefaultAddrBurst); DomainRate and
	// DomainBurst the code mails per mail domain (DefaultDomainRate,
	// DefaultDomainBurst). The servers of one PostgreSQL store share
	// them (and EnrollRate); with SQLite they live in the process.
	AddrRate    float64
	AddrBurst   int
	DomainRate  float64
	DomainBurst int
	// TrustedProxies are the reverse proxies whose X-Forwarded-For names
	// the client address (default none: the peer address counts).
	TrustedProxies []netip.Prefix
	// DB is the database: "" for the SQLite file DBFile in the TIS
	// directory, "sqlite:PATH", or a "postgres://" URL that several
	// servers may share.
	DB string
	// SecretFile is the hash secret's file when it is kept apart from the
	// directory (default SecretFile in the directory); Secret, when set,
	// is the secret itself (from an environment variable).
	SecretFile string
	Secret     []byte
	// Mailer sends enrollment codes. It is required unless OpenEnrollment
	// is set: SMTPMailer for real people, DemoMailer for a demo.
	Mailer Mailer
	// OpenEnrollment enrolls without codes, as in-process tests do: anyone
	// can enroll any e-mail. Never set it where real people enroll.
	OpenEnrollment bool
	// CodeLifetime, CodeAttempts and CodeResend shape the codes (defaults
	// DefaultCodeLifetime, DefaultCodeAttempts, DefaultCodeResend).
	CodeLifetime time.Duration
	CodeAttempts int
	CodeResend   time.Duration
	// TLSCertFile and TLSKeyFile, both set, make Listen serve HTTPS. Without
	// them Listen serves plain HTTP, and only on a loopback address.
	TLSCertFile, TLSKeyFile string
	// RelayScorer makes relay score statements (PathRelayScore); nil
	// answers 501. RelayScoreRate and RelayScoreBurst bound its requests
	// per second, all clients together (defaults DefaultRelayScoreRate,
	// DefaultRelayScoreBurst).
	RelayScorer     RelayScorer
	RelayScoreRate  float64
	RelayScoreBurst int
	// Now is the clock (default time.Now); tests set it.
	Now func() time.Time
}

func (o ServerOptions) withDefaults() ServerOptions {
	if o.CertLifetime <= 0 {
		o.CertLifetime = DefaultCertLifetime
	}
	if o.RevocationLifetime <= 0 {
		o.RevocationLifetime = DefaultRevocationLifetime
	}
	if o.MaxClockSkew <= 0 {
		o.MaxClockSkew = DefaultMaxClockSkew
	}
	if o.EnrollRate <= 0 {
		o.EnrollRate = DefaultEnrollRate
	}
	if o.EnrollBurst <= 0 {
		o.EnrollBurst = DefaultEnrollBurst
	}
	if o.AddrRate <= 0 {
		o.AddrRate = DefaultAddrRate
	}
	if o.AddrBurst <= 0 {
		o.AddrBurst = DefaultAddrBurst
	}
	if o.DomainRate <= 0 {
		o.DomainRate = DefaultDomainRate
	}
	if o.DomainBurst <= 0 {
		o.DomainBurst = DefaultDomainBurst
	}
	if o.CodeLifetime <= 0 {
		o.CodeLifetime = DefaultCodeLifetime
	}
	if o.CodeAttempts <= 0 {
		o.CodeAttempts = DefaultCodeAttempts
	}
	if o.CodeResend <= 0 {
		o.CodeResend = DefaultCodeResend
	}
	if o.RelayScoreRate <= 0 {
		o.RelayScoreRate = DefaultRelayScoreRate
	}
	if o.RelayScoreBurst <= 0 {
		o.RelayScoreBurst = DefaultRelayScoreBurst
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
