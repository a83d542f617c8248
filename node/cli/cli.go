// Package cli is the pikcio command: its subcommands, their flags, and
// running nodes until a signal stops them. cmd/pikcio only calls Main.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/pikcio/pikcio/internal/version"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // bad command line or configuration
)

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(e *env, args []string) int
}

// env is what a command talks to.
type env struct {
	// stdin answers prompts (the enrollment code); nil in tests.
	stdin          io.Reader
	stdout, stderr io.Writer
	// signals delivers SIGINT, SIGTERM, SIGHUP and SIGUSR1 (new identity)
	// while a command runs.
	signals <-chan os.Signal
}

func commands() []command {
	return []command{
		{"demo", "run a whole network on this machine, in one process", runDemo},
		{"client", "run the local proxies (SOCKS5 and HTTP) over circuits", runClient},
		{"relay", "run a relay (--exit: an exit relay)", runRelay},
		{"tis", "run a Trusted Identification System (init, serve, attest, seed)", runTIS},
		{"enroll", "enroll this node with a TIS", runEnroll},
		{"contacts", "exchange contacts with friends (invite, accept, list, remove)", runContacts},
		{"trust", "vouch for contacts, add attestations, show trust scores", runTrust},
		{"service", "publish, stop and list the Matryoshka services of this node", runService},
		{"version", "print the version", runVersion},
	}
}

const usageHead = `pikcio is a privacy proxy: your browser talks to a local SOCKS5 or HTTP
proxy, which carries each connection through a 3-hop onion circuit of
libp2p relays to an exit relay and on to the destination.

Usage:
  pikcio COMMAND [flags]

Commands:
`

func usage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nRun \"pikcio COMMAND --help\" for a command's flags.\n")
}

// Main runs the pikcio command with args (without the program name) and
// returns the process exit code: 0 on success, 1 when the command failed,
// 2 for a usage error (unknown command or flag, stray argument, bad
// configuration).
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(rest) > 0 {
			return Main([]string{rest[0], "--help"}, stdout, stderr)
		}
		usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		sigs := make(chan os.Signal, 4)
		if c.name != "version" {
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1)
			defer signal.Stop(sigs)
		}
		return c.run(&env{stdin: os.Stdin, stdout: stdout, stderr: stderr, signals: sigs}, rest)
	}
	fmt.Fprintf(stderr, "pikcio: unknown command %q\n\n", name)
	usage(stderr)
	return exitUsage
}

func runVersion(e *env, args []string) int {
	fs := newFlagSet("version", "", "Print pikcio's version.")
	if code, done := parse(e, fs, args); done {
		return code
	}
	fmt.Fprintf(e.stdout, "pikcio %s (%s, %s/%s)\n", version.String(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

// flagSet is a flag.FlagSet with the text of its --help.
type flagSet struct {
	*flag.FlagSet
	synopsis string
	about    string
	hidden   map[string]bool // aliases left out of --help
}

// dataFlag defines --data, the data directory every command spells the
// same way, with --dir as a hidden alias (the TIS commands and enroll
// once took --dir).
func (fs *flagSet) dataFlag(usage string) *string {
	p := new(string)
	fs.StringVar(p, "data", "", usage)
	fs.StringVar(p, "dir", "", "")
	if fs.hidden == nil {
		fs.hidden = map[string]bool{}
	}
	fs.hidden["dir"] = true
	return p
}

func newFlagSet(name, synopsis, about string) *flagSet {
	fs := flag.NewFlagSet("pikcio "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return &flagSet{FlagSet: fs, synopsis: synopsis, about: about}
}

func (fs *flagSet) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s %s\n\n%s\n", fs.Name(), fs.synopsis, fs.about)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		if fs.hidden[f.Name] {
			return
		}
		if first {
			fmt.Fprint(w, "\nFlags:\n")
			first = false
		}
		name, text := flag.UnquoteUsage(f)
		if name != "" {
			name = " " + name
		}
		fmt.Fprintf(w, "  --%s%s\n      %s", f.Name, name, text)
		if def := f.DefValue; def != "" && def != "false" && def != "0" && !strings.Contains(text, "(default") {
			fmt.Fprintf(w, " (default %s)", def)
		}
		fmt.Fprintln(w)
	})
}

// parse parses args; done is true when the command must stop with code
// (--help, or a usage error, which it reports).
func parse(e *env, fs *flagSet, args []string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.usage(e.stdout)
		return exitOK, true
	case err != nil:
		return usageError(e, fs, "%v", err), true
	case fs.NArg() > 0:
		return usageError(e, fs, "unexpected argument %q", fs.Arg(0)), true
	}
	return 0, false
}

func usageError(e *env, fs *flagSet, format string, args ...any) int {
	fmt.Fprintf(e.stderr, "%s: %s\nRun \"%s --help\" for usage.\n", fs.Name(), fmt.Sprintf(format, args...), fs.Name())
	return exitUsage
}

// listFlag is a flag that may be repeated and takes comma-separated
// values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// subcommand is one subcommand of a command with subcommands.
type subcommand struct {
	name string
	run  func(e *env, args []string) int
}

// dispatch runs the subcommand args[0] of fs's command, prints fs's help
// for -h/--help/help, and is a usage error otherwise.
func dispatch(e *env, fs *flagSet, args []string, subs []subcommand) int {
	names := make([]string, len(subs))
	for i, s := range subs {
		names[i] = s.name
	}
	want := names[len(names)-1]
	if len(names) > 1 {
		want = strings.Join(names[:len(names)-1], ", ") + " or " + want
	}
	if len(args) == 0 {
		return usageError(e, fs, "want a subcommand: %s", want)
	}
	for _, s := range subs {
		if s.name == args[0] {
			return s.run(e, args[1:])
		}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fs.usage(e.stdout)
		return exitOK
	}
	return usageError(e, fs, "unknown subcommand %q: want %s", args[0], want)
}
