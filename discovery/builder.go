package discovery

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"
)

// DefaultMaxAttempts is how many paths a Builder tries for one build.
const DefaultMaxAttempts = 3

// ErrBuildFailed reports that every attempt of a Builder failed.
var ErrBuildFailed = errors.New("circuit build failed")

// HopError is the error a BuildFunc returns to say which hop of the path
// failed (0 is the first hop): that relay alone is then blamed.
type HopError struct {
	Hop int
	Err error
}

func (e *HopError) Error() string { return fmt.Sprintf("hop %d: %v", e.Hop, e.Err) }
func (e *HopError) Unwrap() error { return e.Err }

// LocalError is the error a BuildFunc returns for a failure that is the
// client's own, not any relay's (no admission token to present): no relay
// of the path is blamed, and another path is not tried, since it would
// fail the same way.
type LocalError struct{ Err error }

func (e *LocalError) Error() string { return e.Err.Error() }
func (e *LocalError) Unwrap() error { return e.Err }

// BuildFunc builds a circuit through path, first hop first.
type BuildFunc[C any] func(ctx context.Context, path []*Descriptor) (C, error)

// PathSource selects paths and learns how builds through them went.
// *Discovery implements it.
type PathSource interface {
	SelectPath(req PathRequest) ([]*Descriptor, error)
	ReportSuccess(path []*Descriptor)
	ReportFailure(path []*Descriptor, err error)
}

var _ PathSource = (*Discovery)(nil)

// Builder builds circuits with a BuildFunc: it selects a path, builds it
// within the learned timeout, and on failure reports the path and tries a
// new one, up to MaxAttempts times.
type Builder[C any] struct {
	src         PathSource
	build       BuildFunc[C]
	est         *TimeoutEstimator
	maxAttempts int
	log         *logrus.Entry
}

// BuilderOptions are a Builder's settings; zero fields take defaults.
type BuilderOptions struct {
	// MaxAttempts is the number of paths tried (default DefaultMaxAttempts).
	MaxAttempts int
	// Estimator learns the build timeout (default NewTimeoutEstimator()).
	Estimator *TimeoutEstimator
}

// NewBuilder returns a Builder of circuits through paths from src.
func NewBuilder[C any](src PathSource, build BuildFunc[C], o BuilderOptions) *Builder[C] {
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.Estimator == nil {
		o.Estimator = NewTimeoutEstimator()
	}
	return &Builder[C]{
		src:         src,
		build:       build,
		est:         o.Estimator,
		maxAttempts: o.MaxAttempts,
		log:         logrus.WithField("component", "discovery"),
	}
}

// Timeout returns the current build timeout.
func (b *Builder[C]) Timeout() time.Duration { return b.est.Timeout() }

// Build builds a circuit for req and returns it with its path. It stops at
// the first success, when ctx ends, or when no path can be selected.
func (b *Builder[C]) Build(ctx context.Context, req PathRequest) (C, []*Descriptor, error) {
	var zero C
	var last error
	for attempt := 1; attempt <= b.maxAttempts; attempt++ {
		path, err := b.src.SelectPath(req)
		if err != nil {
			if last != nil {
				err = errors.Join(last, err)
			}
			return zero, nil, fmt.Errorf("%w: select path: %w", ErrBuildFailed, err)
		}
		timeout := attemptTimeout(ctx, b.est.Timeout(), b.maxAttempts-attempt+1)
		bctx, cancel := context.WithTimeout(ctx, timeout)
		start := time.Now()
		c, err := b.build(bctx, path)
		took := time.Since(start)
		timedOut := errors.Is(bctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		if err == nil {
			b.log.WithFields(logrus.Fields{"attempt": attempt, "took": took}).Debug("circuit built")
			b.est.Success(took)
			b.src.ReportSuccess(path)
			return c, path, nil
		}
		if ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				// The caller's deadline ended this attempt: the path
				// still stalled, so its relays are suspect.
				b.src.ReportFailure(path, fmt.Errorf("caller's deadline reached after %v: %w", took, err))
			}
			return zero, nil, fmt.Errorf("build: %w", ctx.Err())
		}
		if _, local := errors.AsType[*LocalError](err); local {
			return zero, nil, fmt.Errorf("%w: %w", ErrBuildFailed, err)
		}
		if timedOut {
			b.est.TimedOut()
			err = fmt.Errorf("timed out after %v: %w", timeout, err)
		}
		b.src.ReportFailure(path, err)
		b.log.WithError(err).WithField("attempt", attempt).Debug("circuit build failed")
		last = err
	}
	return zero, nil, fmt.Errorf("%w after %d attempts: %w", ErrBuildFailed, b.maxAttempts, last)
}

// attemptTimeout bounds one attempt: the learned timeout, but no more than
// an equal share of what is left of ctx's deadline for this attempt and
// the ones after it, so that a stalled attempt ends on its own deadline
// (reported, learned from, retried) rather than on the caller's.
func attemptTimeout(ctx context.Context, learned time.Duration, attemptsLeft int) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok || attemptsLeft <= 0 {
		return learned
	}
	share := time.Until(dl) / time.Duration(attemptsLeft)
	return min(learned, max(share, MinBuildTimeout))
}
