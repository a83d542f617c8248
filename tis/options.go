package tis

import "time"

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
	// MaxRequestBody caps an enrollment request body.
	MaxRequestBody = 4 << 10
	// DefaultEnrollRate and DefaultEnrollBurst bound enrollment requests
	// (all clients together) per second.
	DefaultEnrollRate  = 2
	DefaultEnrollBurst = 10
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
