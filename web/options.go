package web

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultAddr is where the status server listens by default: loopback,
// port 7080 (config's client.status_listen).
const DefaultAddr = "127.0.0.1:7080"

// DefaultPollInterval is how often the page's script asks for a new
// snapshot when Options.PollInterval is zero.
const DefaultPollInterval = 2 * time.Second

// MinPlainRefresh is the shortest reload interval of the page without
// JavaScript: a whole page every two seconds would be hard to read (and
// keeps a headless browser from ever finishing loading).
const MinPlainRefresh = 10 * time.Second

// Options tunes a handler. The zero value is ready to use: each field
// says its default.
type Options struct {
	// PollInterval is how often the page's script fetches /api/status
	// (default DefaultPollInterval, 2 s). The page without JavaScript
	// reloads itself every PollInterval rounded up to a second, and at
	// most every MinPlainRefresh.
	PollInterval time.Duration
	// Now is the clock the page's relative times ("in 12 d", "3 min ago")
	// are computed against (default time.Now).
	Now func() time.Time
	// Extra are more GET routes ("/api/trust/" and the like, a pattern
	// for http.ServeMux without the method), served behind the same Host
	// and header checks as the page. Default none.
	Extra map[string]http.Handler
	// Metrics is the registry /metrics serves; the handler registers its
	// status collector (the pikcio_* gauges and counters) on it, so one
	// registry serves one handler. Default a new registry.
	Metrics *prometheus.Registry
}

func (o Options) withDefaults() Options {
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
