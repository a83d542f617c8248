package node

import (
	"errors"
	"time"

	"github.com/pikcio/pikcio/discovery"
	"github.com/pikcio/pikcio/exitnode"
	"github.com/pikcio/pikcio/internal/datadir"
	"github.com/pikcio/pikcio/trust"
)

// Errors callers branch on.
var (
	// ErrNoRole: the configuration enables neither the client nor the relay.
	ErrNoRole = errors.New("node has nothing to do: enable the client, the relay, or both")
	// ErrDataDirInUse: another process holds the data directory.
	ErrDataDirInUse = datadir.ErrInUse
	// ErrClosed: Start after Close, or Start twice.
	ErrClosed  = errors.New("node closed")
	ErrStarted = errors.New("node already started")
	// ErrNoPath: no circuit path can be chosen from the relays known (yet).
	ErrNoPath = discovery.ErrNoPath
)

// Options are a node's settings that are not in the configuration file:
// what a program or a test decides about the node. The zero value is the
// setting for a node of a real network.
type Options struct {
	// AllowSameSubnet lets a circuit use relays that share an IPv4 /16 or
	// an IPv6 /32. A network whose relays all run on one machine (the
	// demo, tests, a try-out) needs it; on a real network it would let one
	// operator hold several hops of a circuit. Default false.
	AllowSameSubnet bool
	// Discovery options are added after the node's own (tests shorten
	// intervals with them).
	Discovery []discovery.Option
	// Enroll, when set, enrolls the node with the TIS on its first start:
	// if tis.root_key is set and the data directory holds no enrollment,
	// New sends these properties and the node's keys to the TIS at tis.url
	// (tis.EnrollNode) and keeps only the certificates it gets back. The
	// name and e-mail are never written anywhere; a node that is already
	// enrolled ignores them. Default nil: a node without an enrollment
	// fails with tis.ErrNotEnrolled.
	Enroll *Enrollee
	// TrustView, when set, is the TCI view the node keeps fresh instead of
	// one of its own: `pikcio demo` shares it with its in-process TIS,
	// which makes relay score statements from it. Default nil.
	TrustView *trust.View
	// ExitResolver resolves names at an exit relay, for its streams and
	// for RESOLVE. Default nil: the system's resolver
	// (net.DefaultResolver).
	ExitResolver exitnode.Resolver
	// Services are published by a client node (service.go). Default none.
	Services []ServiceConfig
	// CircuitIdentityPeriod is how long a client builds its circuits from
	// one libp2p identity before it makes a new one (circuitid.go).
	// Default 0: circuit.DefaultIdentityOptions().Period (a day).
	CircuitIdentityPeriod time.Duration
}

// Enrollee is the person a node enrolls for (tis.NormalizeName and
// tis.NormalizeEmail apply at the TIS).
type Enrollee struct {
	Name  string
	Email string
	// Code is the one-time code the TIS mailed to Email; without it the
	// first start asks the TIS to mail one and stops (tis.ErrCodeSent).
	Code string
}
