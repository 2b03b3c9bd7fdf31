package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/flowhound/flowhound/config"
)

// cmdCheckConfig validates a configuration file, with the FLOWHOUND_
// environment overrides applied, and prints the effective configuration
// with secrets masked. An invalid file exits with status 1 and every
// problem found, one per line.
func cmdCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	quiet := fs.Bool("q", false, "print nothing when the configuration is valid")
	noEnv := fs.Bool("no-env", false, "ignore FLOWHOUND_ environment variables")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowhound check-config [flags] FILE\n\nValidates the configuration FILE after applying FLOWHOUND_* environment overrides and\nprints the effective configuration, secrets masked. Exits 1 if it is not valid. Flags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{2, errUsageShown}
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return &exitError{2, errUsageShown}
	}
	name := fs.Arg(0)
	var environ []string
	if !*noEnv {
		environ = os.Environ()
	}
	cfg, err := config.LoadWithEnv(name, environ)
	if err != nil {
		return &exitError{1, fmt.Errorf("%s is not valid:\n%w", name, err)}
	}
	if *quiet {
		return nil
	}
	_, err = fmt.Fprintf(stdout, "# Effective configuration of %s; secrets are shown as %s.\n%s", name, config.Redacted, cfg)
	return err
}
