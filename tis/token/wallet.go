package token

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/sirupsen/logrus"

	"github.com/pikcio/pikcio/internal/privfile"
	"github.com/pikcio/pikcio/internal/wire"
	"github.com/pikcio/pikcio/tis"
)

// Source gives a wallet new tokens; *Client is one.
type Source interface {
	Issue(ctx context.Context, guard peer.ID, n int) (*Batch, error)
}

var _ Source = (*Client)(nil)

const (
	walletVersion = 1
	// MaxWalletTokens caps the tokens of a wallet file.
	MaxWalletTokens = 4096
	maxWalletSize   = 1 + 4 + MaxWalletTokens*(2+maxGuard+8+2+MaxTokenSize)
)

// Wallet is the client's store of unspent tokens, per guard, kept in a
// file (0600) so that tokens outlive a restart. Take hands out the oldest
// token for a guard and starts a background refill for that guard when
// fewer than Low remain; a token is removed from the file before it is
// handed out, so a crash loses it rather than spending it twice. Tokens
// are dropped when their key's period ends, or with Forget when the
// client gives up a guard.
type Wallet struct {
	path string
	src  Source
	opts WalletOptions
	log  *logrus.Entry

	ctx    context.Context // canceled by Close; bounds background refills
	cancel context.CancelFunc
	wg     sync.WaitGroup

	refillMu    sync.Mutex // guards refillLocks
	refillLocks map[peer.ID]*guardRefill
	save        chan struct{} // a Take left the file behind (buffered: one)
	fileMu      sync.Mutex    // one write of the file at a time

	mu        sync.Mutex
	tokens    map[peer.ID][]walletToken // per guard, oldest first
	refilling map[peer.ID]bool
	retryAt   time.Time
	lastErr   error
	remaining int // from the last batch; -1 before one
	closed    bool
}

type walletToken struct {
	guard   peer.ID
	expires time.Time
	enc     []byte
}

// WalletState is a wallet's state, for a status page.
type WalletState struct {
	Tokens    int       // unspent tokens held, for all guards
	Guards    int       // guards they are for
	Remaining int       // more the TIS allows this period, -1 if not known yet
	Refilling bool      // a refill is under way
	RetryAt   time.Time // after a failed refill, when the next may start
	LastError error     // of the last refill, nil if it worked
}

// OpenWallet opens the wallet file at path (created on the first save)
// that src refills.
func OpenWallet(path string, src Source, opts WalletOptions) (*Wallet, error) {
	w := &Wallet{path: path, src: src, opts: opts.withDefaults(), log: logrus.WithField("component", "token-wallet"),
		tokens: make(map[peer.ID][]walletToken), refilling: make(map[peer.ID]bool), refillLocks: make(map[peer.ID]*guardRefill), remaining: -1}
	b, err := readWalletFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		ts, err := decodeWallet(b)
		if err != nil {
			return nil, fmt.Errorf("wallet %s: %w", path, err)
		}
		for _, t := range ts {
			w.tokens[t.guard] = append(w.tokens[t.guard], t)
		}
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.save = make(chan struct{}, 1)
	w.wg.Add(1)
	go w.saver()
	return w, nil
}

// saver writes the file after Takes until Close, and once more then.
func (w *Wallet) saver() {
	defer w.wg.Done()
	for {
		select {
		case <-w.save:
		case <-w.ctx.Done():
			select {
			case <-w.save:
			default:
				return
			}
		}
		if err := w.flush(); err != nil {
			w.log.WithError(err).Warn("save wallet")
		}
	}
}

func readWalletFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("wallet %s: %w", path, tis.ErrPermissions)
	}
	if fi.Size() > maxWalletSize {
		return nil, fmt.Errorf("wallet %s of %d bytes: %w", path, fi.Size(), ErrMalformed)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wallet: %w", err)
	}
	return b, nil
}

func encodeWallet(ts []walletToken) []byte {
	b := []byte{walletVersion}
	b = binary.BigEndian.AppendUint32(b, uint32(len(ts)))
	for _, t := range ts {
		b = wire.AppendBytes16(b, []byte(t.guard))
		b = binary.BigEndian.AppendUint64(b, uint64(t.expires.Unix()))
		b = wire.AppendBytes16(b, t.enc)
	}
	return b
}

func decodeWallet(b []byte) ([]walletToken, error) {
	r := wire.NewReader(b, ErrMalformed)
	if v := r.U8("wallet version"); r.Err() == nil && v != walletVersion {
		r.Fail("wallet version %d", v)
	}
	n := r.U32("token count")
	if r.Err() == nil && n > MaxWalletTokens {
		r.Fail("%d tokens", n)
	}
	var ts []walletToken
	for i := uint32(0); i < n && r.Err() == nil; i++ {
		guard := peer.ID(r.Bytes16("guard", maxGuard))
		exp := r.Time("expiry")
		enc := r.Bytes16("token", MaxTokenSize)
		if r.Err() != nil {
			break
		}
		if len(guard) == 0 {
			return nil, fmt.Errorf("wallet token without a guard: %w", ErrMalformed)
		}
		if _, err := DecodeToken(enc); err != nil {
			return nil, err
		}
		ts = append(ts, walletToken{guard: guard, expires: exp, enc: enc})
	}
	r.End("wallet")
	if r.Err() != nil {
		return nil, r.Err()
	}
	return ts, nil
}

// dropExpiredLocked removes the tokens whose period is over.
func (w *Wallet) dropExpiredLocked(now time.Time) {
	for g, ts := range w.tokens {
		kept := ts[:0]
		for _, t := range ts {
			if now.Before(t.expires) {
				kept = append(kept, t)
			}
		}
		clear(ts[len(kept):])
		if len(kept) == 0 {
			delete(w.tokens, g)
		} else {
			w.tokens[g] = kept
		}
	}
}

// countLocked returns the number of tokens held.
func (w *Wallet) countLocked() int {
	n := 0
	for _, ts := range w.tokens {
		n += len(ts)
	}
	return n
}

// flush writes the tokens held to the file. The synced write runs
// outside mu, so that Take never waits for the disk; fileMu keeps the
// writes in the order of their snapshots.
func (w *Wallet) flush() error {
	w.fileMu.Lock()
	defer w.fileMu.Unlock()
	w.mu.Lock()
	all := make([]walletToken, 0, w.countLocked())
	for _, ts := range w.tokens {
		all = append(all, ts...)
	}
	w.mu.Unlock()
	return privfile.Replace(w.path, encodeWallet(all))
}

// Forget drops the tokens for guard, e.g. when the client stops using it.
func (w *Wallet) Forget(guard peer.ID) error {
	w.mu.Lock()
	if _, ok := w.tokens[guard]; !ok {
		w.mu.Unlock()
		return nil
	}
	delete(w.tokens, guard)
	w.mu.Unlock()
	return w.flush()
}

// Take returns an encoded token to present to guard. Without one for
// guard it refills first (within ctx); when that fails, or a failed
// refill is less than RetryDelay ago, Take returns ErrNoTokens wrapping
// the cause.
func (w *Wallet) Take(ctx context.Context, guard peer.ID) ([]byte, error) {
	w.mu.Lock()
	w.dropExpiredLocked(w.opts.Now())
	if len(w.tokens[guard]) == 0 {
		retry, last := w.retryAt, w.lastErr
		w.mu.Unlock()
		if w.opts.Now().Before(retry) {
			return nil, fmt.Errorf("%w: last refill: %w", ErrNoTokens, last)
		}
		// A refill under way when this one began may have filled the
		// wallet even if this one failed. Only a few tokens are asked for
		// on the build's path; the background refill below gets the rest.
		err := w.refillUpTo(ctx, guard, min(firstBatch, w.opts.Target))
		w.mu.Lock()
		w.dropExpiredLocked(w.opts.Now())
		if len(w.tokens[guard]) == 0 {
			w.mu.Unlock()
			if err == nil {
				err = errors.New("the TIS gave none")
			}
			return nil, fmt.Errorf("%w: refill: %w", ErrNoTokens, err)
		}
	}
	defer w.mu.Unlock()
	ts := w.tokens[guard]
	t := ts[0]
	ts[0] = walletToken{}
	if ts = ts[1:]; len(ts) == 0 {
		delete(w.tokens, guard)
	} else {
		w.tokens[guard] = ts
	}
	// Saved in the background, off the circuit build's path (a synced
	// write costs milliseconds): should the node stop before that, the
	// file keeps the token and a guard refuses it as spent later, which
	// costs one build.
	select {
	case w.save <- struct{}{}:
	default: // a save is already due
	}
	if len(ts) < w.opts.Low {
		w.startRefillLocked(guard)
	}
	return t.enc, nil
}

// startRefillLocked starts a background refill for guard unless one
// runs, the wallet is closed, or the last refill failed less than
// RetryDelay ago.
func (w *Wallet) startRefillLocked(guard peer.ID) {
	if w.closed || w.refilling[guard] || w.opts.Now().Before(w.retryAt) {
		return
	}
	w.refilling[guard] = true
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		err := w.Refill(w.ctx, guard)
		if err != nil && w.ctx.Err() == nil {
			w.log.WithError(err).Debug("refill token wallet")
		}
		w.mu.Lock()
		delete(w.refilling, guard)
		w.mu.Unlock()
	}()
}

// Refill asks the source for tokens for guard until the wallet holds
// Target of them or the TIS allows no more this period. A failure is kept
// for State and delays the next background refill by RetryDelay.
func (w *Wallet) Refill(ctx context.Context, guard peer.ID) error {
	return w.refillUpTo(ctx, guard, w.opts.Target)
}

// firstBatch is how many tokens a Take that finds none asks for before
// it returns: the TIS signs each in milliseconds, and a circuit build
// waits for them.
const firstBatch = 4

// guardRefill serializes the refills for one guard; users counts the
// refills holding or waiting for it, so that it is dropped after the last.
type guardRefill struct {
	mu    sync.Mutex
	users int
}

// lockRefill waits until no other refill for guard runs. Refills for
// different guards run side by side: a build through a new guard (the
// client's guard died) takes its first tokens without waiting for a
// background refill of the old guard's batch, which under load takes
// long (blind signatures, at the TIS and here).
func (w *Wallet) lockRefill(guard peer.ID) (unlock func()) {
	w.refillMu.Lock()
	l := w.refillLocks[guard]
	if l == nil {
		l = &guardRefill{}
		w.refillLocks[guard] = l
	}
	l.users++
	w.refillMu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		w.refillMu.Lock()
		if l.users--; l.users == 0 {
			delete(w.refillLocks, guard)
		}
		w.refillMu.Unlock()
	}
}

// refillUpTo is Refill up to target tokens.
func (w *Wallet) refillUpTo(ctx context.Context, guard peer.ID, target int) error {
	defer w.lockRefill(guard)()
	err := w.refill(ctx, guard, target)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil && ctx.Err() != nil {
		return err // given up by the caller, not refused
	}
	w.lastErr = err
	if err != nil {
		w.retryAt = w.opts.Now().Add(w.opts.RetryDelay)
	} else {
		w.retryAt = time.Time{}
	}
	return err
}

func (w *Wallet) refill(ctx context.Context, guard peer.ID, target int) error {
	for {
		w.mu.Lock()
		w.dropExpiredLocked(w.opts.Now())
		need := target - len(w.tokens[guard])
		room := MaxWalletTokens - w.countLocked()
		w.mu.Unlock()
		if need <= 0 {
			return nil
		}
		if room < need {
			return fmt.Errorf("wallet holds %d tokens, room for %d: forget unused guards", MaxWalletTokens-room, room)
		}
		batch, err := w.src.Issue(ctx, guard, min(need, MaxBatch))
		if err != nil {
			return err
		}
		w.mu.Lock()
		// Refills for other guards may have filled the room meanwhile:
		// the file never holds more than MaxWalletTokens.
		room = MaxWalletTokens - w.countLocked()
		for _, t := range batch.Tokens[:min(len(batch.Tokens), max(room, 0))] {
			enc, err := t.Encode()
			if err != nil {
				w.mu.Unlock()
				return err
			}
			w.tokens[guard] = append(w.tokens[guard], walletToken{guard: guard, expires: batch.Key.End, enc: enc})
		}
		w.remaining = batch.Remaining
		w.mu.Unlock()
		if err := w.flush(); err != nil {
			return fmt.Errorf("save wallet: %w", err)
		}
		if batch.Remaining == 0 {
			return nil
		}
	}
}

// State returns the wallet's state.
func (w *Wallet) State() WalletState {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.dropExpiredLocked(w.opts.Now())
	return WalletState{Tokens: w.countLocked(), Guards: len(w.tokens), Remaining: w.remaining, Refilling: len(w.refilling) > 0, RetryAt: w.retryAt, LastError: w.lastErr}
}

// Close stops a background refill and waits for it. It is idempotent;
// Take still hands out the tokens held but no longer refills in the
// background.
func (w *Wallet) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
	return nil
}
