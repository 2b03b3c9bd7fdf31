package capture

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/flow"
)

// recordLines runs a capture through run and returns its records as sorted
// JSON lines.
func recordLines(t *testing.T, path string, run func(emit func(*flow.Record), src *pcapfile.Source) error) []string {
	t.Helper()
	src, err := pcapfile.OpenSource([]string{path})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var lines []string
	emit := func(r *flow.Record) { lines = append(lines, string(r.AppendJSON(nil))) }
	if err := run(emit, src); err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	return lines
}

func TestParallelMatchesSensor(t *testing.T) {
	files := []string{"../testdata/test-cc-capture-1.pcap.gz", "../testdata/erspan.pcap", "../testdata/http-qinq-0.pcap"}
	for _, name := range []string{"smb2.pcap", "evidence04.pcap", "ipv6_fragments.pcapng", "fragmented-3.pcap", "2020-06-03-Dridex-infection-traffic.pcap"} {
		p := filepath.Join("..", "..", "shared", "pcaps", name)
		if _, err := os.Stat(p); err == nil {
			files = append(files, p)
		}
	}
	cfg := Config{Table: TableConfig{Seed: 7}}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := recordLines(t, f, func(emit func(*flow.Record), src *pcapfile.Source) error {
				return NewSensor(cfg, emit).Run(context.Background(), src)
			})
			for _, n := range []int{2, 3} {
				got := recordLines(t, f, func(emit func(*flow.Record), src *pcapfile.Source) error {
					return NewParallel(cfg, n, emit).Run(context.Background(), src)
				})
				if !slices.Equal(got, want) {
					t.Fatalf("%d workers: %d records differ from the single sensor's %d", n, len(got), len(want))
				}
			}
			if len(want) == 0 {
				t.Fatal("no records")
			}
		})
	}
}
