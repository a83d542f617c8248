package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/libp2p/go-libp2p"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/internal/datadir"
	"github.com/pikcio/pikcio/node"
	"github.com/pikcio/pikcio/service"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/trust/exchange"
)

// acceptTimeout bounds `pikcio contacts accept`.
const acceptTimeout = 30 * time.Second

// Errors of the contacts and trust commands.
var (
	// errNoContact: a NAME|ID argument names no contact.
	errNoContact = errors.New("no such contact")
	// errAmbiguous: a name matches several contacts.
	errAmbiguous = trust.ErrAmbiguousContact
)

// dataFlags are the --config and --data flags of the commands that work
// on a node's data directory.
type dataFlags struct {
	configPath string
	dataDir    string
}

func (d *dataFlags) register(fs *flagSet) {
	fs.StringVar(&d.configPath, "config", "", "configuration `file` (for node.data_dir and tis.root_key)")
	fs.StringVar(&d.dataDir, "data", "", "data `directory` of the node (default node.data_dir of --config, else $XDG_DATA_HOME/pikcio)")
	fs.StringVar(&d.dataDir, "data-dir", "", "the same as --data")
}

// load reads the configuration (the defaults without --config) with
// --data applied. done is true when the command must stop with code.
func (d *dataFlags) load(e *env, fs *flagSet) (cfg *config.Config, code int, done bool) {
	ov := func(c *config.Config) {
		if d.dataDir != "" {
			c.Node.DataDir = d.dataDir
		}
	}
	if d.configPath == "" {
		cfg = config.Default()
		ov(cfg)
		return cfg, 0, false
	}
	cfg, err := config.Load(d.configPath, ov)
	if err != nil {
		return nil, configError(e, fs.Name(), err), true
	}
	return cfg, 0, false
}

// dir loads the configuration and resolves the data directory (created,
// mode 0700, if missing).
func (d *dataFlags) dir(e *env, fs *flagSet) (cfg *config.Config, dir string, code int, done bool) {
	cfg, code, done = d.load(e, fs)
	if done {
		return nil, "", code, true
	}
	dir, err := cfg.Node.ResolveDataDir()
	if err != nil {
		return nil, "", fail(e, fs, err), true
	}
	return cfg, dir, 0, false
}

// root is dir's, with the configuration's pinned TIS root key (nil when
// tis.root_key is not set).
func (d *dataFlags) root(e *env, fs *flagSet) (cfg *config.Config, dir string, root ed25519.PublicKey, code int, done bool) {
	cfg, dir, code, done = d.dir(e, fs)
	if done {
		return nil, "", nil, code, true
	}
	root, err := cfg.TIS.Root()
	if err != nil {
		return nil, "", nil, configError(e, fs.Name(), err), true
	}
	return cfg, dir, root, 0, false
}

// fail reports err and returns exitError.
func fail(e *env, fs *flagSet, err error) int {
	fmt.Fprintf(e.stderr, "%s: %v\n", fs.Name(), err)
	return exitError
}

// failf reports a message and returns exitError.
func failf(e *env, fs *flagSet, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "%s: %s\n", fs.Name(), fmt.Sprintf(format, args...))
	return exitError
}

// parseArgs parses flags placed before, between or after the positional
// arguments, of which it wants min to max (max < 0: no limit); "--" ends
// the flags. done is true when the command must stop with code.
func parseArgs(e *env, fs *flagSet, args []string, min, max int) (pos []string, code int, done bool) {
	for {
		err := fs.Parse(args)
		switch {
		case errors.Is(err, flag.ErrHelp):
			fs.usage(e.stdout)
			return nil, exitOK, true
		case err != nil:
			return nil, usageError(e, fs, "%v", err), true
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" && !takesValue(fs, args, used-1) {
			pos = append(pos, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	switch {
	case len(pos) < min:
		return nil, usageError(e, fs, "want %s", wantArgs(fs)), true
	case max >= 0 && len(pos) > max:
		return nil, usageError(e, fs, "unexpected argument %q", pos[max]), true
	}
	return pos, 0, false
}

// takesValue reports whether args[i] is the value of the flag before it
// ("--name --").
func takesValue(fs *flagSet, args []string, i int) bool {
	if i == 0 {
		return false
	}
	prev := args[i-1]
	if !strings.HasPrefix(prev, "-") || strings.Contains(prev, "=") {
		return false
	}
	f := fs.Lookup(strings.TrimLeft(prev, "-"))
	if f == nil {
		return false
	}
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return false
	}
	return true
}

func wantArgs(fs *flagSet) string {
	return "arguments: " + fs.synopsis
}

// shortID is the start of an ID, enough to tell contacts apart.
func shortID(id tis.ID) string { return id.String()[:16] }

// resolveContact turns a NAME|ID argument into a Matryoshka ID: a hex ID
// (a contact or not), or the name of a contact, compared without regard
// to case. name is the contact's name, "" for an ID that is no contact.
func resolveContact(c *trust.Contacts, q string) (id tis.ID, name string, err error) {
	ct, err := c.Find(q)
	switch {
	case err == nil:
		return ct.ID, ct.Name, nil
	case errors.Is(err, trust.ErrNotFound):
		if id, perr := tis.ParseID(strings.ToLower(strings.TrimSpace(q))); perr == nil {
			return id, "", nil // an ID that is no contact
		}
		return id, "", fmt.Errorf("%q: %w", strings.TrimSpace(q), errNoContact)
	}
	return id, "", err
}

// who names a contact in messages: "Name (0123456789abcdef)", or the ID.
func who(id tis.ID, name string) string {
	if name == "" {
		return id.String()
	}
	return fmt.Sprintf("%s (%s)", name, shortID(id))
}

// enrollment loads the node's enrollment with a clear error when the node
// never enrolled.
func enrollment(dir string) (*tis.Enrollment, ed25519.PrivateKey, error) {
	en, mkey, err := tis.LoadEnrollment(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("%s is not enrolled: run \"pikcio enroll\" first", dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load enrollment: %w", err)
	}
	return en, mkey, nil
}

// runContacts runs the subcommands of `pikcio contacts`.
func runContacts(e *env, args []string) int {
	fs := newFlagSet("contacts", "invite|accept|list|remove [flags]", `Manage your contacts: people whose Matryoshka identity you exchanged
directly, node to node, under a name that you choose and that never leaves
this device.

  pikcio contacts invite --name NAME       make a one-time invite code
  pikcio contacts accept CODE --name NAME  accept a friend's invite code
  pikcio contacts list                     list your contacts
  pikcio contacts remove NAME|ID           forget a contact

Run "pikcio contacts invite --help" and so on for their flags.`)
	return dispatch(e, fs, args, []subcommand{{"invite", runContactsInvite}, {"accept", runContactsAccept}, {"list", runContactsList}, {"remove", runContactsRemove}})
}

func runContactsInvite(e *env, args []string) int {
	fs := newFlagSet("contacts invite", "--name NAME [--lifetime 48h] [flags]", `Make a one-time invite code for a friend, to be accepted with "pikcio contacts
accept CODE" within its lifetime while your node runs. NAME is what you call
the friend; it stays on this device. The code holds your node's addresses:
give it only to the person you invite.`)
	var d dataFlags
	d.register(fs)
	name := fs.String("name", "", "your `name` for the friend (kept on this device only)")
	lifetime := fs.Duration("lifetime", trust.DefaultInviteLifetime, "how long the code stays valid (at most 720h)")
	if code, done := parse(e, fs, args); done {
		return code
	}
	norm, err := tis.NormalizeName(*name)
	switch {
	case *name == "":
		return usageError(e, fs, "--name is required")
	case err != nil:
		return usageError(e, fs, "--name: %v", err)
	case *lifetime <= 0 || *lifetime > exchange.MaxLifetime:
		return usageError(e, fs, "--lifetime %v: want more than 0 and at most %v", *lifetime, exchange.MaxLifetime)
	}
	cfg, dir, code, done := d.dir(e, fs)
	if done {
		return code
	}
	if _, _, err := enrollment(dir); err != nil {
		return fail(e, fs, err)
	}
	if cfg.TIS.RootKey == "" {
		fmt.Fprintln(e.stderr, "Note: tis.root_key is not set here; your node answers the friend only if its configuration sets it.")
	}
	addrs, err := readAddrs(dir)
	if err != nil {
		return fail(e, fs, err)
	}
	inv, err := exchange.CreateInvite(dir, addrs, norm, *lifetime, time.Now())
	if err != nil {
		if errors.Is(err, exchange.ErrTooManyInvites) {
			return failf(e, fs, "%d invites are already waiting: let some be used or expire first", exchange.MaxPending)
		}
		return fail(e, fs, err)
	}
	fmt.Fprintln(e.stdout, inv.String())
	fmt.Fprintf(e.stderr, "Give this code only to %s (it lets them reach your node); it works once, while your node runs, until %s.\n",
		norm, inv.Expires.Local().Format(time.DateTime))
	return exitOK
}

// readAddrs reads the running node's addresses (datadir.ReadAddrs).
func readAddrs(dir string) ([]ma.Multiaddr, error) {
	return datadir.ReadAddrs(dir, trust.MaxInviteAddrs)
}

func runContactsAccept(e *env, args []string) int {
	fs := newFlagSet("contacts accept", "CODE --name NAME [flags]", `Accept a friend's invite code: this node and the friend's exchange their
certificates directly, and each adds the other to its contacts. NAME is what
you call the friend; it stays on this device. Needs tis.root_key in the
configuration; your node need not be running.`)
	var d dataFlags
	d.register(fs)
	name := fs.String("name", "", "your `name` for the friend (kept on this device only)")
	pos, code, done := parseArgs(e, fs, args, 1, 1)
	if done {
		return code
	}
	norm, err := tis.NormalizeName(*name)
	switch {
	case *name == "":
		return usageError(e, fs, "--name is required")
	case err != nil:
		return usageError(e, fs, "--name: %v", err)
	}
	inv, err := trust.ParseInvite(pos[0])
	if err != nil {
		return usageError(e, fs, "not an invite code: %v", err)
	}
	if inv.Expired(time.Now()) {
		return failf(e, fs, "the invite expired at %s: ask for a new one", inv.Expires.Local().Format(time.DateTime))
	}
	cfg, dir, root, code, done := d.root(e, fs)
	if done {
		return code
	}
	if root == nil {
		return usageError(e, fs, "tis.root_key is not set in the configuration (--config): the exchange checks certificates against it")
	}
	en, mkey, err := enrollment(dir)
	if err != nil {
		return fail(e, fs, err)
	}
	nodeKey, err := datadir.LoadOrCreateIdentity(dir)
	if err != nil {
		return fail(e, fs, err)
	}
	contacts, err := trust.OpenContacts(dir, root)
	if err != nil {
		return fail(e, fs, err)
	}
	opts := []libp2p.Option{libp2p.DisableRelay(), libp2p.DisableMetrics()}
	if allLoopback(inv.Addrs) {
		opts = append(opts, libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	} else {
		opts = append(opts, libp2p.NoListenAddrs)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return failf(e, fs, "start libp2p host: %v", err)
	}
	defer h.Close()
	ctx, cancel := signalContext(e, acceptTimeout)
	defer cancel()
	// The card the running node would present: its first service and its
	// client key, so the inviter can reach it by name and admit it to
	// contacts-only services.
	first := ""
	if len(cfg.Services) > 0 {
		first = cfg.Services[0].Name
	}
	card, err := service.KeyDirOf(dir).Card(first)
	if err != nil {
		return fail(e, fs, err)
	}
	self := exchange.Self{MatryoshkaCert: en.MatryoshkaCert, NodeCert: en.NodeCert, MatryoshkaKey: mkey, NodeKey: nodeKey,
		Service: func() *trust.ServiceCard { return node.TrustCard(card) }}
	c, err := exchange.Accept(ctx, h, inv, self, root, contacts, norm)
	if err != nil {
		return failf(e, fs, "%s", acceptMessage(err))
	}
	fmt.Fprintf(e.stdout, "added %s\n", who(c.ID, c.Name))
	return exitOK
}

// signalContext is a context that ends after timeout or at SIGINT or
// SIGTERM. cancel stops the goroutine that watches the signals and waits
// for it.
func signalContext(e *env, timeout time.Duration) (ctx context.Context, cancel func()) {
	ctx, stop := context.WithTimeout(context.Background(), timeout)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case s := <-e.signals:
				if s == syscall.SIGINT || s == syscall.SIGTERM {
					stop()
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return ctx, func() {
		stop()
		<-done
	}
}

// allLoopback reports whether every address is a loopback one.
func allLoopback(addrs []ma.Multiaddr) bool {
	for _, a := range addrs {
		if !manet.IsIPLoopback(a) {
			return false
		}
	}
	return len(addrs) > 0
}

// acceptMessage is a one-line explanation of a failed exchange.
func acceptMessage(err error) string {
	switch {
	case errors.Is(err, exchange.ErrInviteUnknown):
		return "the inviter's node does not know this code: it was already used, mistyped or withdrawn; ask for a new one"
	case errors.Is(err, exchange.ErrInviteExpired):
		return "the invite expired: ask for a new one"
	case errors.Is(err, exchange.ErrOwnInvite):
		return "this invite is your own: give it to your friend instead"
	case errors.Is(err, exchange.ErrCertificate):
		return "a certificate in the exchange is not valid for your TIS (another TIS, expired or revoked)"
	case errors.Is(err, exchange.ErrBadProof):
		return "a proof in the exchange did not verify: the other side is not who its certificates say"
	case errors.Is(err, exchange.ErrRateLimited):
		return "the inviter's node is getting too many attempts: try again in a minute"
	case errors.Is(err, exchange.ErrRefused):
		return "the inviter's node refused the exchange (a problem on its side): ask them to check their node"
	case errors.Is(err, exchange.ErrMalformed):
		return "the inviter's node answered something that is not a contact exchange"
	case errors.Is(err, exchange.ErrSelf):
		return "your enrollment is incomplete: run \"pikcio enroll\" again"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer from the inviter's node within %v: is it running and reachable?", acceptTimeout)
	}
	return fmt.Sprintf("could not reach the inviter's node (is it running?): %s", oneLine(err.Error()))
}

// oneLine folds a message of several lines (libp2p's dial errors) into one.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func runContactsList(e *env, args []string) int {
	fs := newFlagSet("contacts list", "[flags]", `List your contacts: name, Matryoshka ID, the peer ID of their node ("-" if
unknown) and the date they were added.`)
	var d dataFlags
	d.register(fs)
	if code, done := parse(e, fs, args); done {
		return code
	}
	_, dir, root, code, done := d.root(e, fs)
	if done {
		return code
	}
	contacts, err := trust.OpenContacts(dir, root)
	if err != nil {
		return fail(e, fs, err)
	}
	list := contacts.List()
	if len(list) == 0 {
		fmt.Fprintln(e.stderr, "no contacts yet: see \"pikcio contacts invite --help\"")
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMATRYOSHKA ID\tNODE\tADDED\tSERVICE")
	for _, c := range list {
		nodeID := "-"
		if c.Node != "" {
			nodeID = c.Node.String()
		}
		svc := "-"
		if c.Service != nil && c.Service.Address != ([32]byte{}) {
			svc = service.Label(c.Name) + ".pikcio"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Name, c.ID, nodeID, c.AddedAt.Local().Format(time.DateOnly), svc)
	}
	if err := tw.Flush(); err != nil {
		return fail(e, fs, err)
	}
	return exitOK
}

func runContactsRemove(e *env, args []string) int {
	fs := newFlagSet("contacts remove", "NAME|ID [flags]", `Forget a contact, named by its name (any case) or its Matryoshka ID. Your
vouch for them, if any, stays until "pikcio trust withdraw".`)
	var d dataFlags
	d.register(fs)
	pos, code, done := parseArgs(e, fs, args, 1, 1)
	if done {
		return code
	}
	_, dir, root, code, done := d.root(e, fs)
	if done {
		return code
	}
	contacts, err := trust.OpenContacts(dir, root)
	if err != nil {
		return fail(e, fs, err)
	}
	id, name, err := resolveContact(contacts, pos[0])
	if err == nil && name == "" {
		err = fmt.Errorf("%s: %w", id, errNoContact)
	}
	if err == nil {
		err = contacts.Remove(id)
	}
	if err != nil {
		return fail(e, fs, err)
	}
	fmt.Fprintf(e.stdout, "removed %s\n", who(id, name))
	return exitOK
}
