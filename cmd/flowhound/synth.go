package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flowhound/flowhound/capture/synth"
)

const synthUsage = `usage: flowhound synth <bench|scenario> [flags]

  bench      write the deterministic synthetic benchmark capture
  scenario   write a labelled traffic scenario and its ground truth
`

func cmdSynth(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "bench":
			return cmdSynthBench(args[1:], stderr)
		case "scenario":
			return cmdSynthScenario(args[1:], stdout, stderr)
		}
	}
	fmt.Fprint(stderr, synthUsage)
	return &exitError{2, errUsageShown}
}

func cmdSynthBench(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("synth bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seed := fs.Int64("seed", 1, "random seed; the same seed writes the same bytes")
	packets := fs.Int("packets", 2_000_000, "target number of packets")
	hosts := fs.Int("hosts", 500, "internal client hosts")
	ipv6 := fs.Float64("ipv6", 0.05, "fraction of conversations over IPv6 (negative: none)")
	snaplen := fs.Int("snaplen", 0, "cut frames to this many bytes (0: whole frames)")
	out := fs.String("o", "", "output capture (.pcap, or .pcapng)")
	truth := fs.String("truth", "", "also write the ground truth (every flow with its packets and bytes) as JSON here")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowhound synth bench -o FILE [flags]\n\nWrites the deterministic synthetic benchmark capture: a mixed enterprise network\n(web, TLS, DNS, bulk transfers, long connections, rejected and unanswered attempts, a port scan). Flags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{2, errUsageShown}
	}
	if *out == "" {
		fs.Usage()
		return &exitError{2, fmt.Errorf("synth bench: -o is required")}
	}
	start := time.Now()
	tr, err := synth.WriteBenchFile(*out, synth.BenchConfig{Seed: *seed, Packets: *packets, Hosts: *hosts, IPv6: *ipv6, Snaplen: *snaplen})
	if err != nil {
		return err
	}
	if *truth != "" {
		b, err := json.MarshalIndent(tr, "", " ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*truth, b, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stderr, "wrote %s: %d packets, %d flows, %d bytes on the wire, in %.1fs\n",
		*out, tr.Packets, len(tr.Flows), tr.Bytes, time.Since(start).Seconds())
	return nil
}

func cmdSynthScenario(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("synth scenario", flag.ContinueOnError)
	fs.SetOutput(stderr)
	profile := fs.String("profile", synth.Profiles()[0], "scenario profile (see --list)")
	list := fs.Bool("list", false, "list the profiles and exit")
	seed := fs.Int64("seed", 1, "random seed; the same seed writes the same bytes")
	hosts := fs.Int("hosts", synth.DefaultScenarioHosts, "internal workstations (servers come on top)")
	duration := fs.Duration("duration", synth.DefaultScenarioDuration, "packet time covered (10m to 744h)")
	startAt := fs.String("start", synth.DefaultScenarioStart.Format(time.RFC3339), "packet time of the start (RFC 3339)")
	period := fs.Duration("period", 0, "beacon period for every beacon (0: the profile's)")
	jitter := fs.Float64("jitter", 0, "beacon jitter, ± fraction of the period, 0..0.9 (unset: the profile's)")
	missed := fs.Float64("missed", 0, "fraction of beacon beats skipped, 0..0.5 (unset: the profile's)")
	variant := fs.String("variant", "", "comma-separated capture variants: "+strings.Join(synth.Variants(), ","))
	snaplen := fs.Int("snaplen", synth.DefaultScenarioSnaplen, "cut frames to this many bytes, 0: whole frames (DNS, TLS handshakes and HTTP requests always stay whole)")
	exfil := fs.Int64("exfil-bytes", synth.DefaultExfilBytes, "size of the bulk exfiltration in bytes")
	pcapng := fs.Bool("pcapng", false, "write scenario.pcapng instead of scenario.pcap")
	out := fs.String("o", "", "output directory (gets scenario.pcap and truth.json)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowhound synth scenario -o DIR [flags]\n\nWrites a deterministic labelled traffic scenario, DIR/scenario.pcap, and its exact\nground truth, DIR/truth.json (every attack and every benign trap).\n\nProfiles:")
		printProfiles(stderr)
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return &exitError{2, errUsageShown}
	}
	if *list {
		printProfiles(stdout)
		return nil
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return &exitError{2, fmt.Errorf("synth scenario: unexpected argument %q", fs.Arg(0))}
	}
	if *out == "" {
		fs.Usage()
		return &exitError{2, fmt.Errorf("synth scenario: -o is required")}
	}
	start, err := time.Parse(time.RFC3339, *startAt)
	if err != nil {
		return &exitError{2, fmt.Errorf("synth scenario: -start: %v", err)}
	}
	cfg := synth.ScenarioConfig{
		Profile: *profile, Seed: *seed, Hosts: *hosts, Duration: *duration, Start: start,
		Snaplen: *snaplen, Period: *period, ExfilBytes: *exfil, Pcapng: *pcapng,
	}
	if *snaplen == 0 {
		cfg.Snaplen = -1
	}
	// An explicit 0 means no jitter (or no missed beats); in the config, 0
	// means the profile's default and a negative value means zero.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "jitter":
			cfg.Jitter = orNegative(*jitter)
		case "missed":
			cfg.Missed = orNegative(*missed)
		}
	})
	if *variant != "" {
		cfg.Variants = strings.Split(*variant, ",")
	}
	began := time.Now()
	tr, err := synth.WriteScenarioFiles(*out, cfg)
	if err != nil {
		return err
	}
	name := "scenario.pcap"
	if *pcapng {
		name = "scenario.pcapng"
	}
	size := int64(0)
	if st, err := os.Stat(filepath.Join(*out, name)); err == nil {
		size = st.Size()
	}
	attacks := 0
	for _, a := range tr.Activities {
		if !a.Benign {
			attacks++
		}
	}
	fmt.Fprintf(stdout, "wrote %s: profile %s, %d hosts, %s, %d packets, %d flows, %.1f MB, %d attacks, %d benign traps, %d benign pairs, in %.1fs\n",
		filepath.Join(*out, name), tr.Profile, tr.Hosts, tr.End.Sub(tr.Start).Round(time.Second), tr.Packets, tr.Flows,
		float64(size)/1e6, attacks, len(tr.Activities)-attacks, tr.BenignPairs, time.Since(began).Seconds())
	return nil
}

func orNegative(v float64) float64 {
	if v == 0 {
		return -1
	}
	return v
}

func printProfiles(w io.Writer) {
	for _, p := range synth.Profiles() {
		fmt.Fprintf(w, "  %-11s %s\n", p, synth.ProfileDescription(p))
	}
}
