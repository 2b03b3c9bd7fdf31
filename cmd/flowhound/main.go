// Command flowhound is a network sensor that turns mirrored traffic into flow
// records and findings (C2 beaconing, lateral movement, exfiltration).
//
// Subcommands:
//
//	flowhound flows [flags] [file|dir|-]...    capture files to JSON flow records
//	flowhound replay [flags] [file|dir|-]...   capture files to JSON findings
//	flowhound synth bench|scenario [flags]    write synthetic captures with ground truth
//	flowhound sense [flags]                   capture live interfaces, write JSON findings
//	flowhound eval [DIR...|sweep|real|suite]  score the detectors against ground truth
//	flowhound check-config FILE               validate a configuration file
//	flowhound healthcheck -config FILE        ask a running sensor's /healthz
//	flowhound version
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

// exitError carries an exit status through run.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

const usage = `usage: flowhound <command> [flags] [args]

commands:
  flows [file|dir|-]...   read captures, write one JSON flow record per line
  replay [file|dir|-]...  read captures, run the detectors, write one JSON finding per line
  sense -i IFACE[,IFACE]  capture live interfaces (AF_PACKET), run the detectors, write JSON findings
  synth bench|scenario    write synthetic captures (benchmark; labelled scenarios with truth.json)
  eval [sweep|real|suite] score detectors on labelled scenarios (DIR...), sweeps, real captures
  check-config FILE       validate a configuration file and print the effective configuration
  healthcheck -config F   ask a running sensor's /healthz (exit 0 healthy, 1 not); for container health checks
  version                 print the version

Run 'flowhound <command> -h' for the flags of a command.
`

func main() {
	err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	if err == nil {
		return
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if !errors.Is(err, errUsageShown) {
		fmt.Fprintln(os.Stderr, "flowhound:", err)
	}
	os.Exit(code)
}

// errUsageShown means the flag package already told the user.
var errUsageShown = errors.New("usage")

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return &exitError{2, errUsageShown}
	}
	switch args[0] {
	case "flows":
		return cmdFlows(args[1:], stdin, stdout, stderr)
	case "replay":
		return cmdReplay(args[1:], stdin, stdout, stderr)
	case "sense":
		return cmdSense(args[1:], stdout, stderr)
	case "synth":
		return cmdSynth(args[1:], stdout, stderr)
	case "eval":
		return cmdEval(args[1:], stdout, stderr)
	case "check-config":
		return cmdCheckConfig(args[1:], stdout, stderr)
	case "healthcheck":
		return cmdHealthcheck(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "flowhound", version())
		return nil
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &exitError{2, fmt.Errorf("unknown command %q", args[0])}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
		return v
	}
	return "unknown"
}
