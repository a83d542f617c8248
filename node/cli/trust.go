package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/web"
)

const (
	// showTimeout bounds `pikcio trust show`.
	showTimeout = 10 * time.Second
	// maxReportSize caps the answer of a trust query.
	maxReportSize = 1 << 20
	// publishNote ends the commands that change trust.json.
	publishNote = "The running node publishes it within seconds."
)

// runTrust runs the subcommands of `pikcio trust`.
func runTrust(e *env, args []string) int {
	fs := newFlagSet("trust", "vouch|withdraw|attestation|show [flags]", `Manage what you publish in the trust network, and see trust scores:

  pikcio trust vouch NAME|ID [--weight 50]   vouch for a contact or an identity
  pikcio trust withdraw NAME|ID              withdraw your vouch
  pikcio trust attestation add CODE          add an attestation made about you
  pikcio trust show NAME|ID|PEERID           a score and what makes it up

Vouches, withdrawals and attestations are kept in trust.json in the data
directory; the running node publishes them. Run "pikcio trust vouch --help"
and so on for their flags.`)
	return dispatch(e, fs, args, []subcommand{{"vouch", runTrustVouch}, {"withdraw", runTrustWithdraw}, {"attestation", runTrustAttestation}, {"show", runTrustShow}})
}

// ownTarget is what vouch and withdraw work with: the user's identity and
// key, their records, and the identity named on the command line.
type ownTarget struct {
	dir     string
	self    tis.ID
	key     ed25519.PrivateKey
	own     *trust.Own
	id      tis.ID
	name    string
	contact bool
}

// loadTarget resolves the NAME|ID argument and loads the user's records.
func loadTarget(e *env, fs *flagSet, d *dataFlags, q string) (*ownTarget, int, bool) {
	_, dir, root, code, done := d.root(e, fs)
	if done {
		return nil, code, true
	}
	en, mkey, err := enrollment(dir)
	if err != nil {
		return nil, fail(e, fs, err), true
	}
	contacts, err := trust.OpenContacts(dir, root)
	if err != nil {
		return nil, fail(e, fs, err), true
	}
	id, name, err := resolveContact(contacts, q)
	if err != nil {
		return nil, fail(e, fs, err), true
	}
	own, err := trust.LoadOwn(dir)
	if err != nil {
		return nil, fail(e, fs, err), true
	}
	return &ownTarget{dir: dir, self: en.MatryoshkaCert.ID, key: mkey, own: own, id: id, name: name, contact: name != ""}, 0, false
}

func runTrustVouch(e *env, args []string) int {
	fs := newFlagSet("trust vouch", "NAME|ID [--weight 50] [--lifetime 8760h] [flags]", `Vouch that a person is who they claim: a contact, by name (any case), or
any Matryoshka ID. The weight (1 to 100) says how much of your own trust
goes to them, relative to your other vouches. Signed with your Matryoshka
key and kept in trust.json; vouching again replaces the earlier vouch.`)
	var d dataFlags
	d.register(fs)
	weight := fs.Int("weight", 50, fmt.Sprintf("`weight` of the vouch, %d to %d", trust.MinWeight, trust.MaxWeight))
	lifetime := fs.Duration("lifetime", trust.DefaultVouchLifetime, "how long the vouch stays valid")
	pos, code, done := parseArgs(e, fs, args, 1, 1)
	if done {
		return code
	}
	switch {
	case *weight < trust.MinWeight || *weight > trust.MaxWeight:
		return usageError(e, fs, "--weight %d: want %d to %d", *weight, trust.MinWeight, trust.MaxWeight)
	case *lifetime < time.Second:
		return usageError(e, fs, "--lifetime %v: want at least 1s", *lifetime)
	}
	t, code, done := loadTarget(e, fs, &d, pos[0])
	if done {
		return code
	}
	if t.id == t.self {
		return usageError(e, fs, "%s is your own identity: nobody vouches for themselves", pos[0])
	}
	v, err := t.own.Vouch(t.key, t.self, t.id, *weight, *lifetime, time.Now())
	if err == nil {
		err = t.own.Save(t.dir)
	}
	if err != nil {
		return fail(e, fs, err)
	}
	fmt.Fprintf(e.stdout, "vouched for %s with weight %d, until %s\n", who(t.id, t.name), v.Weight, v.Expires.Local().Format(time.DateOnly))
	if !t.contact {
		fmt.Fprintln(e.stderr, "Note: this identity is not one of your contacts.")
	}
	fmt.Fprintln(e.stderr, publishNote)
	return exitOK
}

func runTrustWithdraw(e *env, args []string) int {
	fs := newFlagSet("trust withdraw", "NAME|ID [flags]", `Withdraw your vouch for a contact (by name, any case) or a Matryoshka ID:
a signed withdrawal replaces it in trust.json.`)
	var d dataFlags
	d.register(fs)
	pos, code, done := parseArgs(e, fs, args, 1, 1)
	if done {
		return code
	}
	t, code, done := loadTarget(e, fs, &d, pos[0])
	if done {
		return code
	}
	_, err := t.own.Withdraw(t.key, t.self, t.id, time.Now())
	if errors.Is(err, trust.ErrNotFound) {
		return failf(e, fs, "you have not vouched for %s", who(t.id, t.name))
	}
	if err == nil {
		err = t.own.Save(t.dir)
	}
	if err != nil {
		return fail(e, fs, err)
	}
	fmt.Fprintf(e.stdout, "withdrew your vouch for %s\n", who(t.id, t.name))
	fmt.Fprintln(e.stderr, publishNote)
	return exitOK
}

func runTrustAttestation(e *env, args []string) int {
	fs := newFlagSet("trust attestation", "add CODE [flags]", `Manage the attestations made about you (by the TIS or an attester):

  pikcio trust attestation add CODE   add one, as "pikcio tis attest" printed it`)
	return dispatch(e, fs, args, []subcommand{{"add", runTrustAttestationAdd}})
}

func runTrustAttestationAdd(e *env, args []string) int {
	fs := newFlagSet("trust attestation add", "CODE [flags]", `Add an attestation about you (a code starting with "pikcio-attestation:")
to trust.json, replacing one of the same kind by the same issuer. With
tis.root_key set, it is checked against the TIS root and trust.attesters.`)
	var d dataFlags
	d.register(fs)
	pos, code, done := parseArgs(e, fs, args, 1, 1)
	if done {
		return code
	}
	a, err := trust.ParseAttestation(pos[0])
	if err != nil {
		return usageError(e, fs, "not an attestation code: %v", err)
	}
	cfg, dir, root, code, done := d.root(e, fs)
	if done {
		return code
	}
	en, _, err := enrollment(dir)
	if err != nil {
		return fail(e, fs, err)
	}
	if root != nil {
		keys, err := cfg.Trust.AttesterKeys()
		if err != nil {
			return configError(e, fs.Name(), err)
		}
		keys = append([]ed25519.PublicKey{root}, keys...)
		switch err := a.Verify(keys, time.Now()); {
		case errors.Is(err, trust.ErrUnknownAttester):
			fmt.Fprintln(e.stderr, "Note: neither your TIS nor an attester of trust.attesters signed it: only nodes that list its key count it.")
		case errors.Is(err, trust.ErrExpired):
			return failf(e, fs, "the attestation expired at %s", a.Expires.Local().Format(time.DateTime))
		case err != nil:
			return failf(e, fs, "the attestation does not verify: %v", err)
		}
	}
	own, err := trust.LoadOwn(dir)
	if err != nil {
		return fail(e, fs, err)
	}
	if err := own.AddAttestation(a, en.MatryoshkaCert.ID); err != nil {
		if errors.Is(err, trust.ErrWrongIdentity) {
			return failf(e, fs, "the attestation is about %s, not about you (%s)", shortID(a.Subject), shortID(en.MatryoshkaCert.ID))
		}
		return fail(e, fs, err)
	}
	if err := own.Save(dir); err != nil {
		return fail(e, fs, err)
	}
	fmt.Fprintf(e.stdout, "added attestation %q by %s, valid until %s\n", a.Kind, a.Issuer, a.Expires.Local().Format(time.DateOnly))
	fmt.Fprintln(e.stderr, publishNote)
	return exitOK
}

func runTrustShow(e *env, args []string) int {
	fs := newFlagSet("trust show", "NAME|ID|PEERID [--status ADDR] [--json] [flags]", `Show the trust score of a contact (by name), a Matryoshka ID, or the band
of a relay (by peer ID), as your running node computes it, and what makes
it up. It asks the node's status server (client.status_listen).`)
	var d dataFlags
	d.register(fs)
	status := fs.String("status", "", "status server `address` host:port of the running node (default client.status_listen)")
	raw := fs.Bool("json", false, "print the node's JSON answer")
	pos, code, done := parseArgs(e, fs, args, 1, 1)
	if done {
		return code
	}
	addr := *status
	if addr == "" {
		cfg, code, done := d.load(e, fs)
		if done {
			return code
		}
		addr = cfg.Client.StatusListen
	}
	if addr == "" {
		return usageError(e, fs, "no status server: set client.status_listen or --status")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return usageError(e, fs, "status address %q: want host:port", addr)
	}
	ctx, cancel := signalContext(e, showTimeout)
	defer cancel()
	body, err := fetchReport(ctx, addr, pos[0])
	if err != nil {
		return fail(e, fs, err)
	}
	if *raw {
		_, _ = e.stdout.Write(body)
		return exitOK
	}
	var r web.TrustReport
	if err := json.Unmarshal(body, &r); err != nil {
		return failf(e, fs, "the node's answer is not a trust report: %v", err)
	}
	if err := printReport(e.stdout, &r); err != nil {
		return fail(e, fs, err)
	}
	return exitOK
}

// errNodeAnswer is an error the node answered to a trust query.
var errNodeAnswer = errors.New("the node answered")

// fetchReport asks the status server at addr about q and returns the JSON
// report.
func fetchReport(ctx context.Context, addr, q string) ([]byte, error) {
	u := "http://" + addr + web.TrustPath + url.PathEscape(q)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("trust query: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("no node is running with its status server on %s: start it first, or give its address with --status", addr)
	}
	if err != nil {
		return nil, fmt.Errorf("trust query to %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReportSize+1))
	if err != nil {
		return nil, fmt.Errorf("trust query to %s: %w", addr, err)
	}
	if len(body) > maxReportSize {
		return nil, fmt.Errorf("trust query to %s: answer over %d bytes", addr, maxReportSize)
	}
	if resp.StatusCode != http.StatusOK {
		var msg struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &msg) == nil && msg.Error != "" {
			return nil, fmt.Errorf("%w: %s", errNodeAnswer, msg.Error)
		}
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("%w: %s: this node has no trust queries (an older version?)", errNodeAnswer, resp.Status)
		}
		return nil, fmt.Errorf("%w: %s", errNodeAnswer, resp.Status)
	}
	return body, nil
}

// printReport writes a trust report for people.
func printReport(w io.Writer, r *web.TrustReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, format string, args ...any) {
		fmt.Fprintf(tw, "%s:\t%s\n", k, clean(fmt.Sprintf(format, args...)))
	}
	switch r.Kind {
	case "relay":
		line("relay", "%s", r.ID)
	case "identity":
		line("identity", "%s", r.ID)
	default:
		line(orDash(clean(r.Kind)), "%s", r.ID)
	}
	if r.Contact != "" {
		line("contact", "%s", r.Contact)
	}
	computed := "not yet"
	if !r.Computed.IsZero() {
		computed = fmt.Sprintf("%s, over %d identities", r.Computed.Local().Format(time.DateTime), r.Identities)
	}
	line("scores computed", "%s", computed)
	if r.Kind == "relay" {
		if r.Band == nil {
			line("band", "no valid statement from the TIS")
		} else {
			exp := ""
			if !r.BandExpires.IsZero() {
				exp = ", stated until " + r.BandExpires.Local().Format(time.DateTime)
			}
			line("band", "operator's score %d to %d%s", r.Band.Min, r.Band.Max, exp)
		}
		return tw.Flush()
	}
	switch {
	case r.Score == nil:
		line("score", "not computed yet")
	case !r.Known:
		line("score", "%d (no record names this identity)", *r.Score)
	default:
		line("score", "%d of 100", *r.Score)
	}
	line("seed", "%s", yesNo(r.Seed))
	if len(r.Attestations) > 0 {
		line("attestations", "%s", strings.Join(r.Attestations, ", "))
	} else {
		line("attestations", "none")
	}
	line("base", "%.2f points", r.BasePoints)
	line("from vouches", "%.2f points", r.VouchPoints)
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Vouchers) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nvouchers (%d of %d, largest share first):\n", len(r.Vouchers), max(r.NumVouchers, len(r.Vouchers)))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  VOUCHER\tCONTACT\tSCORE\tWEIGHT\tPOINTS")
	for _, v := range r.Vouchers {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d/%d\t%.2f\n", clean(v.ID), orDash(clean(v.Contact)), v.Score, v.Weight, v.OutOf, v.Points)
	}
	return tw.Flush()
}

// clean drops control characters (a report comes from the network).
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return -1
		}
		return r
	}, s)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
