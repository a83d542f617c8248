package service

import (
	"context"
	"crypto/rand"
	"io"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// What the runtime (Host and Dialer) needs from the rest of pikcio, owned
// here: *circuit.Circuit is a Circuit, and the node's path selection is a
// Builder.

// Circuit is a built circuit that can take part in joining (package
// circuit's join.go).
type Circuit interface {
	// Binding is the circuit binding of the last hop, for ESTABLISH_INTRO.
	Binding() [32]byte
	EstablishIntro(ctx context.Context, msg []byte) error
	// Introduction waits for the next INTRODUCE2 on an intro circuit.
	Introduction(ctx context.Context) ([]byte, error)
	Introduce(ctx context.Context, msg []byte) error
	EstablishRendezvous(ctx context.Context, cookie []byte, finish func(rendezvous2 []byte) ([]byte, error)) error
	AwaitRendezvous(ctx context.Context) error
	// Rendezvous joins the client at the last hop; dial answers its streams.
	Rendezvous(rendezvous1, seed []byte, dial func(context.Context) (net.Conn, error)) error
	OpenStream(ctx context.Context, host string, port uint16) (net.Conn, error)
	Done() <-chan struct{}
	Close() error
}

// Builder builds the circuits of services and their clients.
type Builder interface {
	// BuildTo builds a circuit whose last hop is relay (an intro point or
	// a rendezvous relay named by someone else).
	BuildTo(ctx context.Context, relay peer.ID) (Circuit, error)
	// BuildAny builds a circuit to a last hop of the builder's choosing,
	// none of avoid, and names that hop.
	BuildAny(ctx context.Context, avoid []peer.ID) (Circuit, RendezvousPoint, error)
}

// Runtime defaults, in one place.
const (
	// DefaultIntroPoints is how many intro points a service keeps.
	DefaultIntroPoints = 3
	// DefaultRepublish is how often a service uploads its descriptor
	// again when nothing changed.
	DefaultRepublish = 30 * time.Minute
	// DefaultPublishAhead: within this of a period's end a service also
	// publishes the next period's descriptor.
	DefaultPublishAhead = 6 * time.Hour
	// DefaultRetry is how soon a service tries again after an intro point
	// could not be built or a descriptor not be uploaded.
	DefaultRetry = 2 * time.Second
	// DefaultMaxRendezvousBuilds caps the rendezvous circuits a service
	// builds at once; INTRODUCE2 beyond it waits.
	DefaultMaxRendezvousBuilds = 16
	// DefaultConnectTimeout bounds a client's whole connection to a
	// service (descriptor, rendezvous, introduction, join).
	DefaultConnectTimeout = 60 * time.Second
	// DefaultJoinTimeout bounds the wait for the service after an
	// introduction was accepted.
	DefaultJoinTimeout = 20 * time.Second
)

// runtimeDefaults fills in the period length, clock and randomness that
// Host and Dialer share.
func runtimeDefaults(period *time.Duration, now *func() time.Time, r *io.Reader) {
	if *period <= 0 {
		*period = DefaultPeriodLength
	}
	if *now == nil {
		*now = time.Now
	}
	if *r == nil {
		*r = rand.Reader
	}
}
