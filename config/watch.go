package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/sirupsen/logrus"
)

// Debounce is how long a Watcher waits after the last change to the file
// before it reloads, so that an editor's several writes make one reload.
const Debounce = 100 * time.Millisecond

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("config watcher closed")

// ApplyFunc makes a new configuration take effect. prev is the running
// configuration and next the new one; both are copies the function may
// keep. If it returns an error it must leave the running system as it was:
// the Watcher keeps prev as current.
type ApplyFunc func(prev, next *Config) error

// Watcher holds the current configuration of one file and reloads it when
// the file changes (Start) or when asked (Reload, for SIGHUP). Reloads are
// serialized. A new file is rejected if it does not load (the problems are
// logged and the running configuration stays) or if apply fails.
type Watcher struct {
	path     string
	override Override
	apply    ApplyFunc
	log      logrus.FieldLogger

	reloadMu sync.Mutex // serializes Reload
	cur      atomic.Pointer[Config]

	mu      sync.Mutex // guards started, closed, fsw
	started bool
	closed  bool
	fsw     *fsnotify.Watcher

	stop     chan struct{} // closed by Close
	exited   chan struct{} // closed by the loop goroutine
	stopOnce sync.Once
	closeErr error
}

// NewWatcher loads path (with override applied after the file, as on every
// reload) and returns a Watcher holding it; it does not call apply for this
// first configuration. apply may be nil (new configurations are then just
// stored), log may be nil (the standard logger). Call Start to watch the
// file and Close when done.
func NewWatcher(path string, override Override, apply ApplyFunc, log logrus.FieldLogger) (*Watcher, error) {
	cfg, err := Load(path, override)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = logrus.StandardLogger()
	}
	w := &Watcher{
		path:     path,
		override: override,
		apply:    apply,
		log:      log.WithField("component", "config"),
		stop:     make(chan struct{}),
		exited:   make(chan struct{}),
	}
	w.cur.Store(cfg)
	return w, nil
}

// Start watches the file's directory, so that a save that writes a
// temporary file and renames it over the config is seen, and reloads
// Debounce after the last change to the file. Changes to other files are
// ignored. A file that is removed is reloaded when it is created again.
func (w *Watcher) Start() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.started {
		return errors.New("config watcher already started")
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config: %w", err)
	}
	dir := filepath.Dir(w.path)
	if err := fsw.Add(dir); err != nil {
		_ = fsw.Close()
		return fmt.Errorf("watch config directory %s: %w", dir, err)
	}
	w.fsw = fsw
	w.started = true
	go w.loop(fsw)
	return nil
}

func (w *Watcher) loop(fsw *fsnotify.Watcher) {
	defer close(w.exited)
	timer := time.NewTimer(Debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-w.stop:
			return
		case ev, ok := <-fsw.Events:
			if !ok {
				return
			}
			if w.relevant(ev) {
				timer.Reset(Debounce)
			}
		case err, ok := <-fsw.Errors:
			if !ok {
				return
			}
			w.log.WithError(err).Warn("watching config file")
		case <-timer.C:
			_ = w.Reload() // Reload logs what went wrong
		}
	}
}

// relevant reports whether ev may have changed the file's content: a write
// to it, or its creation (which a rename over it also is). Its removal is
// not: the file is read again when it is back.
func (w *Watcher) relevant(ev fsnotify.Event) bool {
	return filepath.Base(ev.Name) == filepath.Base(w.path) && ev.Has(fsnotify.Write|fsnotify.Create)
}

// Reload reads the file again now. If it does not load, the problems are
// logged at error level (one line each, with file:line: key) and returned,
// and the current configuration stays. If no setting changed, nothing else
// happens. Otherwise apply is called and, if it succeeds, the new
// configuration becomes current and the changed keys (never their values)
// are logged.
func (w *Watcher) Reload() error {
	w.reloadMu.Lock()
	defer w.reloadMu.Unlock()
	next, err := Load(w.path, w.override)
	if err != nil {
		w.logRejected(err)
		return err
	}
	prev := w.cur.Load()
	changed := Diff(prev, next)
	if len(changed) == 0 {
		w.log.Debug("config file changed, no setting changed")
		return nil
	}
	keys := strings.Join(changed, ", ")
	if w.apply != nil {
		if err := w.apply(prev.Clone(), next.Clone()); err != nil {
			w.log.WithError(err).Errorf("config reload: applying %s failed, keeping the running config", keys)
			return fmt.Errorf("apply config: %w", err)
		}
	}
	w.cur.Store(next)
	w.log.Infof("config reloaded: %s changed", keys)
	return nil
}

func (w *Watcher) logRejected(err error) {
	problems := Problems(err)
	if len(problems) == 0 {
		w.log.WithError(err).Error("config reload rejected, keeping the running config")
		return
	}
	for _, p := range problems {
		w.log.WithFields(logrus.Fields{"file": p.File, "line": p.Line, "key": p.Key}).
			Errorf("config reload rejected, keeping the running config: %v", p)
	}
}

// Current returns a copy of the current configuration.
func (w *Watcher) Current() *Config {
	return w.cur.Load().Clone()
}

// Close stops watching and waits for the watching goroutine to end. It is
// idempotent; every call waits.
func (w *Watcher) Close() error {
	w.mu.Lock()
	w.closed = true
	fsw := w.fsw
	w.mu.Unlock()
	if fsw == nil {
		return nil
	}
	w.stopOnce.Do(func() {
		close(w.stop)
		w.closeErr = fsw.Close()
	})
	<-w.exited
	return w.closeErr
}
