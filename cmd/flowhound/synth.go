package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/flowhound/flowhound/capture/synth"
)

func cmdSynth(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "bench" {
		fmt.Fprintln(stderr, "usage: flowhound synth bench [flags]")
		return &exitError{2, errUsageShown}
	}
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
	if err := fs.Parse(args[1:]); err != nil {
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
