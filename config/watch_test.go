package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/pikcio/pikcio/internal/testutil"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"
)

// waitFor polls cond until it holds, failing the test after 15 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 15*time.Second, what, cond)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// saveByRename saves like many editors: a temporary file in the same
// directory renamed over the original.
func saveByRename(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".pikcio.toml.swp")
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type applyCall struct{ prev, next *Config }

type watcherFixture struct {
	w     *Watcher
	path  string
	hook  *test.Hook
	calls chan applyCall
}

// newWatcherFixture writes content to a config file in a fresh directory
// and makes a started Watcher for it. applyErr is returned by apply.
func newWatcherFixture(t *testing.T, content string, override Override, applyErr error) *watcherFixture {
	t.Helper()
	f := &watcherFixture{
		path:  filepath.Join(t.TempDir(), "pikcio.toml"),
		calls: make(chan applyCall, 16),
	}
	writeFile(t, f.path, content)
	logger, hook := test.NewNullLogger()
	logger.SetLevel(logrus.DebugLevel)
	f.hook = hook
	apply := func(prev, next *Config) error {
		f.calls <- applyCall{prev, next}
		return applyErr
	}
	w, err := NewWatcher(f.path, override, apply, logger)
	if err != nil {
		t.Fatal(err)
	}
	f.w = w
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *watcherFixture) nextApply(t *testing.T) applyCall {
	t.Helper()
	select {
	case c := <-f.calls:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("timed out waiting for apply")
		return applyCall{}
	}
}

// logged returns the entries at level whose message contains s.
func (f *watcherFixture) logged(level logrus.Level, s string) []*logrus.Entry {
	var out []*logrus.Entry
	for _, e := range f.hook.AllEntries() {
		if e.Level == level && strings.Contains(e.Message, s) {
			out = append(out, e)
		}
	}
	return out
}

func TestWatcherPicksUpSaves(t *testing.T) {
	tests := []struct {
		name string
		save func(t *testing.T, path, content string)
	}{
		{"write in place", writeFile},
		{"write temp and rename", saveByRename},
		{"delete and create", func(t *testing.T, path, content string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, content)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWatcherFixture(t, "[client]\nhops = 3\n", nil, nil)
			tt.save(t, f.path, "[client]\nhops = 5\n")
			c := f.nextApply(t)
			if c.prev.Client.Hops != 3 || c.next.Client.Hops != 5 {
				t.Errorf("apply(prev hops %d, next hops %d), want 3, 5", c.prev.Client.Hops, c.next.Client.Hops)
			}
			waitFor(t, "Current to change", func() bool { return f.w.Current().Client.Hops == 5 })
			waitFor(t, "the reload to be logged", func() bool {
				return len(f.logged(logrus.InfoLevel, "config reloaded: client.hops changed")) == 1
			})

			// And again, so that the watch survived the save.
			tt.save(t, f.path, "[client]\nhops = 6\n")
			if c := f.nextApply(t); c.next.Client.Hops != 6 {
				t.Errorf("second apply: hops %d, want 6", c.next.Client.Hops)
			}
		})
	}
}

func TestWatcherRejectsBrokenEdit(t *testing.T) {
	f := newWatcherFixture(t, "[client]\nhops = 3\n", nil, nil)
	writeFile(t, f.path, "[client]\nhops = 9\n")
	waitFor(t, "the error to be logged", func() bool { return len(f.logged(logrus.ErrorLevel, "")) > 0 })
	e := f.logged(logrus.ErrorLevel, "")[0]
	if want := f.path + ":2: client.hops: must be between 1 and 8"; !strings.Contains(e.Message, want) {
		t.Errorf("logged %q, want it to contain %q", e.Message, want)
	}
	if e.Data["line"] != 2 || e.Data["key"] != "client.hops" || e.Data["file"] != f.path {
		t.Errorf("log fields %v", e.Data)
	}
	if got := f.w.Current().Client.Hops; got != 3 {
		t.Errorf("Current hops = %d after a broken edit, want 3", got)
	}

	// The next good save goes through, and is the first apply.
	writeFile(t, f.path, "[client]\nhops = 4\n")
	if c := f.nextApply(t); c.next.Client.Hops != 4 {
		t.Errorf("apply after fix: hops %d, want 4", c.next.Client.Hops)
	}
}

func TestWatcherRollsBackWhenApplyFails(t *testing.T) {
	errApply := errors.New("cannot apply")
	f := newWatcherFixture(t, "[client]\nhops = 3\n", nil, errApply)
	saveByRename(t, f.path, "[client]\nhops = 5\n")
	if c := f.nextApply(t); c.next.Client.Hops != 5 {
		t.Fatalf("apply got hops %d, want 5", c.next.Client.Hops)
	}
	waitFor(t, "the failure to be logged", func() bool {
		return len(f.logged(logrus.ErrorLevel, "applying client.hops failed")) == 1
	})
	if got := f.w.Current().Client.Hops; got != 3 {
		t.Errorf("Current hops = %d after a failed apply, want 3", got)
	}
	if err := f.w.Reload(); !errors.Is(err, errApply) {
		t.Errorf("Reload = %v, want %v", err, errApply)
	}
	if got := f.w.Current().Client.Hops; got != 3 {
		t.Errorf("Current hops = %d after a failed Reload, want 3", got)
	}
}

func TestWatcherReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pikcio.toml")
	writeFile(t, path, "[client]\nhops = 3\n")
	logger, hook := test.NewNullLogger()
	var applied []*Config
	w, err := NewWatcher(path, nil, func(_, next *Config) error {
		applied = append(applied, next)
		return nil
	}, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })

	// Not started: only Reload reads the file.
	writeFile(t, path, "[client]\nhops = 4\n")
	if err := w.Reload(); err != nil {
		t.Fatal(err)
	}
	if len(applied) != 1 || w.Current().Client.Hops != 4 {
		t.Errorf("after Reload: %d applies, hops %d", len(applied), w.Current().Client.Hops)
	}

	// Unchanged file: apply is not called.
	if err := w.Reload(); err != nil || len(applied) != 1 {
		t.Errorf("Reload of an unchanged file: %v, %d applies", err, len(applied))
	}

	writeFile(t, path, "[client]\nhops = 4\nhopz = 5\n")
	err = w.Reload()
	var e *Error
	if !errors.As(err, &e) || e.Line != 3 || e.Key != "client.hopz" || !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Reload of a bad file = %v", err)
	}
	if len(applied) != 1 || w.Current().Client.Hops != 4 {
		t.Errorf("after a bad Reload: %d applies, hops %d", len(applied), w.Current().Client.Hops)
	}
	if last := hook.LastEntry(); last == nil || last.Level != logrus.ErrorLevel || !strings.Contains(last.Message, path+":3: unknown key client.hopz") {
		t.Errorf("last log entry %+v", last)
	}

	// Current returns a copy.
	w.Current().Node.Listen[0] = "changed"
	if w.Current().Node.Listen[0] == "changed" {
		t.Error("Current shares memory with the Watcher")
	}

	// A missing file is an error, and the config stays.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Reload of a missing file = %v", err)
	}
	if w.Current().Client.Hops != 4 {
		t.Error("config lost after Reload of a missing file")
	}
}

func TestWatcherOverrideAfterReload(t *testing.T) {
	override := func(c *Config) { c.Client.Hops = 7 }
	f := newWatcherFixture(t, "[client]\nhops = 3\n", override, nil)
	if got := f.w.Current().Client.Hops; got != 7 {
		t.Fatalf("initial hops = %d, want the override's 7", got)
	}
	writeFile(t, f.path, "[client]\nhops = 5\n[log]\nlevel = \"debug\"\n")
	c := f.nextApply(t)
	if c.next.Client.Hops != 7 || c.next.Log.Level != "debug" {
		t.Errorf("after reload: hops %d level %s, want 7 debug", c.next.Client.Hops, c.next.Log.Level)
	}
	if d := Diff(c.prev, c.next); len(d) != 1 || d[0] != "log.level" {
		t.Errorf("changed %v, want only log.level", d)
	}
}

func TestWatcherRelevantEvents(t *testing.T) {
	dir := "/etc/pikcio"
	tests := []struct {
		ev   fsnotify.Event
		want bool
	}{
		{fsnotify.Event{Name: dir + "/pikcio.toml", Op: fsnotify.Write}, true},
		{fsnotify.Event{Name: dir + "/pikcio.toml", Op: fsnotify.Create}, true},
		{fsnotify.Event{Name: dir + "/pikcio.toml", Op: fsnotify.Create | fsnotify.Chmod}, true},
		{fsnotify.Event{Name: dir + "/pikcio.toml", Op: fsnotify.Remove}, false},
		{fsnotify.Event{Name: dir + "/pikcio.toml", Op: fsnotify.Rename}, false},
		{fsnotify.Event{Name: dir + "/pikcio.toml", Op: fsnotify.Chmod}, false},
		{fsnotify.Event{Name: dir + "/other.toml", Op: fsnotify.Write}, false},
		{fsnotify.Event{Name: dir + "/.pikcio.toml.swp", Op: fsnotify.Create}, false},
		{fsnotify.Event{Name: dir + "/pikcio.toml~", Op: fsnotify.Write}, false},
	}
	w := &Watcher{path: dir + "/pikcio.toml"}
	for _, tt := range tests {
		t.Run(tt.ev.String(), func(t *testing.T) {
			if got := w.relevant(tt.ev); got != tt.want {
				t.Errorf("relevant = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWatcherClose(t *testing.T) {
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	path := filepath.Join(dir, "pikcio.toml")
	writeFile(t, path, "")
	for range 5 {
		w, err := NewWatcher(path, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		if err := w.Start(); err == nil {
			t.Error("second Start succeeded")
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-w.exited:
		default:
			t.Fatal("Close returned before the goroutine ended")
		}
		if err := w.Close(); err != nil {
			t.Errorf("second Close = %v", err)
		}
		if err := w.Start(); !errors.Is(err, ErrClosed) {
			t.Errorf("Start after Close = %v, want ErrClosed", err)
		}
	}
	waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })

	// Close without Start.
	w, err := NewWatcher(path, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("Close before Start = %v", err)
	}
}

func TestNewWatcherRejectsBadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pikcio.toml")
	writeFile(t, path, "[log]\nlevel = \"loud\"\n")
	_, err := NewWatcher(path, nil, nil, nil)
	var e *Error
	if !errors.As(err, &e) || e.Line != 2 || e.Key != "log.level" {
		t.Errorf("NewWatcher = %v", err)
	}
}
