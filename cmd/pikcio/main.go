// Command pikcio runs a pikcio node: the local proxy (client), a relay, an
// exit relay, or a whole demonstration network in one process. See
// "pikcio --help" and the README.
package main

import (
	"os"

	"github.com/pikcio/pikcio/node/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
