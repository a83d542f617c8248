package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/pikcio/pikcio/node"
)

// runService runs the subcommands of `pikcio service`.
func runService(e *env, args []string) int {
	fs := newFlagSet("service", "list [flags]", `Matryoshka services: local TCP services this node publishes under an
address derived from a key kept in the data directory, reached through
pikcio as ADDRESS.pikcio (and by your contacts as YOURNAME.pikcio for the
first one), never through an exit.

  pikcio service list    list the services' names and addresses

Run "pikcio service list --help" for its flags.`)
	return dispatch(e, fs, args, []subcommand{{"list", runServiceList}})
}

func runServiceList(e *env, args []string) int {
	fs := newFlagSet("service list", "[flags]", `List the services whose keys the data directory holds: name and address.`)
	var d dataFlags
	d.register(fs)
	if code, done := parse(e, fs, args); done {
		return code
	}
	_, dir, code, done := d.dir(e, fs)
	if done {
		return code
	}
	list, err := node.ListServices(dir)
	if err != nil {
		return fail(e, fs, err)
	}
	if len(list) == 0 {
		fmt.Fprintln(e.stderr, "no services yet")
		return exitOK
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\n", s.Name, s.Address.Host())
	}
	if err := tw.Flush(); err != nil {
		return fail(e, fs, err)
	}
	return exitOK
}
