package web

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"
)

// pageTemplate is the server-rendered page: complete without JavaScript.
var pageTemplate = template.Must(template.New("index.html").Funcs(template.FuncMap{
	"bytes":    humanBytes,
	"rate":     func(n uint64) string { return humanBytes(n) + "/s" },
	"age":      func(s float64) string { return humanDuration(time.Duration(s * float64(time.Second))) },
	"short":    shortID,
	"band":     bandText,
	"bandAttr": bandAttr,
	"roles":    func(r []string) string { return strings.Join(r, " + ") },
}).ParseFS(assets, "assets/index.html"))

// pageData is what the template shows.
type pageData struct {
	S            Status
	Title        string
	Token        string
	PollMillis   int64
	Refresh      int
	Destinations bool
	Graph        graph
	// Relative times, computed against Options.Now.
	NodeCertExpires       string
	MatryoshkaCertExpires string
	ErrorAges             []string
}

func (h *handler) pageData(s Status, dest bool) pageData {
	now := h.opts.Now()
	d := pageData{
		S:            s,
		Title:        "pikcio " + strings.Join(s.Roles, " + "),
		Token:        string(h.token),
		PollMillis:   h.opts.PollInterval.Milliseconds(),
		Refresh:      h.refreshSeconds(),
		Destinations: dest,
		Graph:        makeGraph(s.Throughput),
	}
	if id := s.Identity; id != nil {
		d.NodeCertExpires = expiry(id.NodeCertExpires, now)
		d.MatryoshkaCertExpires = expiry(id.MatryoshkaCertExpires, now)
	}
	for _, e := range s.Errors {
		d.ErrorAges = append(d.ErrorAges, humanDuration(now.Sub(e.Time))+" ago")
	}
	return d
}

// shortIDLen is how many trailing characters of an ID the page shows.
const shortIDLen = 8

// shortID is the last shortIDLen characters of id.
func shortID(id string) string {
	if len(id) <= shortIDLen {
		return id
	}
	return id[len(id)-shortIDLen:]
}

func bandText(b *Band) string {
	if b == nil {
		return "no TCI"
	}
	return fmt.Sprintf("TCI %d–%d", b.Min, b.Max)
}

// bandAttr is a band in the page's data-tci attributes: "60-79", or
// "none".
func bandAttr(b *Band) string {
	if b == nil {
		return "none"
	}
	return fmt.Sprintf("%d-%d", b.Min, b.Max)
}

// humanBytes is n in B, KiB, MiB... with one decimal above bytes.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// humanDuration is d in its two largest units: "42 s", "3 min 5 s",
// "2 h 5 min", "3 d 4 h".
func humanDuration(d time.Duration) string {
	s := int64(d / time.Second)
	if s < 0 {
		s = 0
	}
	switch {
	case s < 60:
		return fmt.Sprintf("%d s", s)
	case s < 3600:
		return fmt.Sprintf("%d min %d s", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%d h %d min", s/3600, s/60%60)
	default:
		return fmt.Sprintf("%d d %d h", s/86400, s/3600%24)
	}
}

// expiry is a certificate's end: its date and how far it is from now.
func expiry(t, now time.Time) string {
	if t.IsZero() {
		return "—"
	}
	date := t.UTC().Format("2006-01-02 15:04 UTC")
	if t.Before(now) {
		return date + " (expired " + humanDuration(now.Sub(t)) + " ago)"
	}
	return date + " (in " + humanDuration(t.Sub(now)) + ")"
}

// The throughput graph: one SVG polyline per direction over
// ThroughputWindow, newest sample at the right edge. app.js draws the
// same geometry.
const (
	graphW = 600
	graphH = 120
)

type graph struct {
	W, H     int
	Up, Down string // polyline points
	Peak     string // the highest rate, per second
	LastUp   string
	LastDown string
	Empty    bool
}

func makeGraph(samples []Sample) graph {
	g := graph{W: graphW, H: graphH, Empty: len(samples) == 0, Peak: rateText(0), LastUp: rateText(0), LastDown: rateText(0)}
	if g.Empty {
		return g
	}
	var peak uint64 = 1
	for _, s := range samples {
		peak = max(peak, s.Up, s.Down)
	}
	last := samples[len(samples)-1]
	window := ThroughputWindow.Seconds()
	var up, down strings.Builder
	for i, s := range samples {
		x := graphW - float64(last.Time-s.Time)/window*graphW
		if x < 0 {
			continue
		}
		if i > 0 && up.Len() > 0 {
			up.WriteByte(' ')
			down.WriteByte(' ')
		}
		fmt.Fprintf(&up, "%.1f,%.1f", x, y(s.Up, peak))
		fmt.Fprintf(&down, "%.1f,%.1f", x, y(s.Down, peak))
	}
	g.Up, g.Down = up.String(), down.String()
	if peak > 1 {
		g.Peak = rateText(peak)
	}
	g.LastUp, g.LastDown = rateText(last.Up), rateText(last.Down)
	return g
}

// y maps a rate to the graph's height, 2 px from either edge.
func y(v, peak uint64) float64 {
	return graphH - 2 - float64(v)/float64(peak)*(graphH-4)
}

func rateText(n uint64) string { return humanBytes(n) + "/s" }
