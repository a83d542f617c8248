package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/pikcio/pikcio/config"
	"github.com/pikcio/pikcio/service"
)

// runService runs the subcommands of `pikcio service`.
func runService(e *env, args []string) int {
	fs := newFlagSet("service", "add|remove|list [flags]", `Matryoshka services: local TCP services this node publishes under an
address derived from a key kept in the data directory, reached through
pikcio as ADDRESS.pikcio (and by your contacts as YOURNAME.pikcio for the
first one), never through an exit.

  pikcio service add NAME --target 127.0.0.1:PORT --config FILE
                                 publish a local service (a [[services]] block)
  pikcio service remove NAME --config FILE
                                 stop publishing it
  pikcio service list            list the services' names and addresses

A running node started with the same --config picks up add and remove at
once. Run "pikcio service add --help" and so on for their flags.`)
	return dispatch(e, fs, args, []subcommand{{"add", runServiceAdd}, {"remove", runServiceRemove}, {"list", runServiceList}})
}

func runServiceAdd(e *env, args []string) int {
	fs := newFlagSet("service add", "NAME --target HOST:PORT --config FILE [--contacts-only] [--allow-lan]", `Publish the local TCP service at --target under NAME: adds a [[services]]
block to the configuration file (the rest of the file stays as written; the
file is created if missing) and prints the service's address. Its key is
kept in the data directory, so the address stays the same. The target must
be a loopback address unless --allow-lan: a service of another machine makes
this node a way into your network for anyone who knows the address.`)
	var d dataFlags
	d.register(fs)
	target := fs.String("target", "", "`host:port` the service's streams go to (127.0.0.1:8080)")
	contactsOnly := fs.Bool("contacts-only", false, "only your contacts can reach the service")
	allowLAN := fs.Bool("allow-lan", false, "let --target be an address other than loopback")
	pos, code, done := parseArgs(e, fs, args, 1, 1)
	if done {
		return code
	}
	sc := config.ServiceConfig{Name: pos[0], Target: *target, ContactsOnly: *contactsOnly, AllowLAN: *allowLAN}
	switch err := service.CheckName(sc.Name); {
	case err != nil:
		return usageError(e, fs, "%v", err)
	case sc.Target == "":
		return usageError(e, fs, "--target is required")
	case d.configPath == "":
		return usageError(e, fs, "--config is required: the file the node runs with")
	}
	if err := config.CheckTarget(sc.Target, sc.AllowLAN); err != nil {
		return usageError(e, fs, "--target %s: %v", sc.Target, err)
	}
	data, perm, err := readConfig(d.configPath)
	if err != nil {
		return fail(e, fs, err)
	}
	out, err := config.AppendService(d.configPath, data, sc)
	if err != nil {
		return editError(e, fs, err)
	}
	// The key before the file: a running node that reloads the file
	// finds the key this command prints the address of.
	cfg, err := config.Parse(d.configPath, out, func(c *config.Config) {
		if d.dataDir != "" {
			c.Node.DataDir = d.dataDir
		}
	})
	if err != nil {
		return configError(e, fs.Name(), err)
	}
	dir, err := cfg.Node.ResolveDataDir()
	if err != nil {
		return fail(e, fs, err)
	}
	id, err := service.KeyDirOf(dir).Identity(sc.Name)
	if err != nil {
		return fail(e, fs, err)
	}
	if err := writeConfig(d.configPath, out, perm); err != nil {
		return fail(e, fs, err)
	}
	fmt.Fprintln(e.stdout, id.Address().Host())
	who := "anyone who knows the address"
	if sc.ContactsOnly {
		who = "your contacts only"
	}
	fmt.Fprintf(e.stderr, "%s -> %s, for %s; reached here as %s.pikcio.\n", sc.Name, sc.Target, who, sc.Name)
	return exitOK
}

func runServiceRemove(e *env, args []string) int {
	fs := newFlagSet("service remove", "NAME --config FILE", `Stop publishing service NAME: removes its [[services]] block from the
configuration file (the rest stays as written). A running node closes its
intro circuits at once; its descriptor expires. The key stays in the data
directory, so adding NAME again brings back the same address.`)
	var d dataFlags
	d.register(fs)
	pos, code, done := parseArgs(e, fs, args, 1, 1)
	if done {
		return code
	}
	if d.configPath == "" {
		return usageError(e, fs, "--config is required: the file the node runs with")
	}
	data, perm, err := readConfig(d.configPath)
	if err != nil {
		return fail(e, fs, err)
	}
	out, err := config.RemoveService(d.configPath, data, pos[0])
	if err != nil {
		return editError(e, fs, err)
	}
	if err := writeConfig(d.configPath, out, perm); err != nil {
		return fail(e, fs, err)
	}
	fmt.Fprintf(e.stdout, "removed %s\n", pos[0])
	return exitOK
}

// editError reports a failed edit of the configuration file.
func editError(e *env, fs *flagSet, err error) int {
	if errors.Is(err, config.ErrServiceExists) || errors.Is(err, config.ErrServiceMissing) {
		return fail(e, fs, err)
	}
	return configError(e, fs.Name(), err)
}

// readConfig reads the configuration file to edit (empty if missing) and
// its mode.
func readConfig(path string) ([]byte, fs.FileMode, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0o600, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read config: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, 0, fmt.Errorf("read config: %w", err)
	}
	return data, st.Mode().Perm(), nil
}

// writeConfig replaces the file at path with data through a rename, so a
// watching node never reads half a file.
func writeConfig(path string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write config %s: %w", path, err)
	}
	return nil
}

func runServiceList(e *env, args []string) int {
	fs := newFlagSet("service list", "[flags]", `List the services whose keys the data directory holds: name and address,
and whether the configuration (--config) publishes them.`)
	var d dataFlags
	d.register(fs)
	if code, done := parse(e, fs, args); done {
		return code
	}
	cfg, dir, code, done := d.dir(e, fs)
	if done {
		return code
	}
	list, err := service.KeyDirOf(dir).List()
	if err != nil {
		return fail(e, fs, err)
	}
	if len(list) == 0 {
		fmt.Fprintln(e.stderr, "no services yet: see \"pikcio service add --help\"")
		return exitOK
	}
	targets := map[string]string{}
	for _, s := range cfg.Services {
		targets[s.Name] = s.Target
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tADDRESS\tTARGET")
	for _, s := range list {
		t := targets[s.Name]
		if t == "" {
			t = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.Address.Host(), t)
	}
	if err := tw.Flush(); err != nil {
		return fail(e, fs, err)
	}
	return exitOK
}
