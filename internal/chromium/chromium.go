// Package chromium runs a headless Chromium for tests: it finds the
// binary, loads one URL with JavaScript on or off, and returns the DOM
// after the page settled (--dump-dom) or writes a screenshot.
//
// Every run gets a fresh, temporary profile that is removed afterwards, and
// the whole process group is killed when the run ends or its context is
// done, so no renderer outlives a test. Without a ProxyServer, Chromium's
// host resolver is told to resolve nothing but localhost, so a run never
// queries the machine's DNS resolver.
package chromium

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// ErrNotFound is returned by Find when no Chromium binary is installed.
var ErrNotFound = errors.New("chromium: no browser binary found")

// EnvBinary names the environment variable that, when set, is the path of
// the browser to use.
const EnvBinary = "PIKCIO_CHROMIUM"

// candidates are the names looked up in PATH, in order.
var candidates = []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"}

// VirtualTimeBudget is how much virtual time a page gets to run its
// scripts before the DOM is dumped or the screenshot taken.
const VirtualTimeBudget = 5 * time.Second

// WindowSize is the viewport of a screenshot.
const WindowSize = "1280,1000"

// Options says how to run the browser. The zero value runs with
// JavaScript off and no proxy.
type Options struct {
	// JS enables JavaScript. When false, the run's profile blocks
	// JavaScript for every site (the content setting of chrome://settings);
	// --blink-settings=scriptEnabled=false is not used because it also
	// stops --dump-dom, which reads the DOM through a script.
	JS bool
	// ProxyServer, when set, is passed as --proxy-server (for example
	// "socks5://127.0.0.1:1080"). Chromium still bypasses loopback
	// addresses unless ExtraArgs holds --proxy-bypass-list=<-loopback>.
	ProxyServer string
	// ExtraArgs are appended after the built-in flags.
	ExtraArgs []string
}

// Find returns the path of the Chromium binary: $PIKCIO_CHROMIUM when
// set, otherwise the first of chromium, chromium-browser,
// google-chrome-stable, google-chrome found in PATH.
func Find() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", EnvBinary, p, err)
		}
		return p, nil
	}
	for _, name := range candidates {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNotFound
}

// DumpDOM loads url and returns the serialized DOM once the page has used
// its virtual time budget.
func DumpDOM(ctx context.Context, url string, opts Options) (string, error) {
	out, err := run(ctx, opts, "--dump-dom", url)
	if err != nil {
		return "", fmt.Errorf("dump dom of %s: %w", url, err)
	}
	return out, nil
}

// Screenshot loads url and writes a PNG of the first WindowSize pixels to
// path.
func Screenshot(ctx context.Context, url, path string, opts Options) error {
	if _, err := run(ctx, opts, "--screenshot="+path, "--window-size="+WindowSize, url); err != nil {
		return fmt.Errorf("screenshot of %s: %w", url, err)
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("screenshot of %s: %w", url, err)
	}
	return nil
}

// noDNS maps every name but the loopback ones to "not found", so that a
// run never asks the machine's resolver. IP literals go through the rules
// too, hence the loopback addresses.
const noDNS = "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]"

// ErrLoadFailed is returned when Chromium reports that the page did not
// load (it exits 0 all the same).
var ErrLoadFailed = errors.New("chromium: page load failed")

// args are the flags of every run, before the action.
func args(profile string, opts Options) []string {
	a := []string{
		"--headless",
		"--no-sandbox",
		"--disable-gpu",
		"--no-first-run",
		"--no-default-browser-check",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-extensions",
		"--disable-dev-shm-usage",
		"--mute-audio",
		"--user-data-dir=" + profile,
		fmt.Sprintf("--virtual-time-budget=%d", VirtualTimeBudget.Milliseconds()),
	}
	if opts.ProxyServer != "" {
		a = append(a, "--proxy-server="+opts.ProxyServer)
	} else {
		a = append(a, "--host-resolver-rules="+noDNS)
	}
	return append(a, opts.ExtraArgs...)
}

func run(ctx context.Context, opts Options, action ...string) (string, error) {
	bin, err := Find()
	if err != nil {
		return "", err
	}
	profile, err := os.MkdirTemp("", "pikcio-chromium-")
	if err != nil {
		return "", fmt.Errorf("profile dir: %w", err)
	}
	defer os.RemoveAll(profile)
	if !opts.JS {
		if err := blockScripts(profile); err != nil {
			return "", err
		}
	}

	cmd := exec.CommandContext(ctx, bin, append(args(profile, opts), action...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "HOME="+profile)
	setGroup(cmd)
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	killGroup(cmd)
	if ctxErr := ctx.Err(); ctxErr != nil {
		return "", fmt.Errorf("run %s: %w (stderr: %s)", bin, ctxErr, tail(stderr.String()))
	}
	if err != nil {
		return "", fmt.Errorf("run %s: %w (stderr: %s)", bin, err, tail(stderr.String()))
	}
	const failed = "Page load failed: "
	if i := strings.Index(stderr.String(), failed); i >= 0 {
		reason, _, _ := strings.Cut(stderr.String()[i+len(failed):], "\n")
		return "", fmt.Errorf("%w: %s", ErrLoadFailed, reason)
	}
	return stdout.String(), nil
}

// tail is the end of Chromium's stderr, which is mostly noise but ends
// with the reason of a failure.
func tail(s string) string {
	s = strings.TrimSpace(s)
	const max = 2000
	if len(s) > max {
		s = "…" + s[len(s)-max:]
	}
	return s
}

// noScriptPrefs is a profile's Preferences file that blocks JavaScript on
// every site.
const noScriptPrefs = `{"profile":{"default_content_setting_values":{"javascript":2}}}`

func blockScripts(profile string) error {
	dir := filepath.Join(profile, "Default")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("block scripts: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Preferences"), []byte(noScriptPrefs), 0o600); err != nil {
		return fmt.Errorf("block scripts: %w", err)
	}
	return nil
}
