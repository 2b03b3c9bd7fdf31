package detect

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/flow"
)

// replayRecords reads captures through the sensor and returns a copy of
// every record it emitted, in order.
func beaconReplay(t testing.TB, homeNets *flow.Networks, paths ...string) []flow.Record {
	t.Helper()
	src, err := pcapfile.OpenSource(paths)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var recs []flow.Record
	tcfg := capture.DefaultTableConfig()
	tcfg.HomeNets = homeNets
	tcfg.Seed = 1
	sensor := capture.NewSensor(capture.Config{Table: tcfg}, func(r *flow.Record) {
		c := *r
		c.Encap = nil
		if r.App != nil {
			app := *r.App
			app.DNSAnswers = slices.Clone(r.App.DNSAnswers)
			app.DNSNames = slices.Clone(r.App.DNSNames)
			c.App = &app
		}
		recs = append(recs, c)
	})
	if err := sensor.Run(context.Background(), src); err != nil {
		var inc *capture.IncompleteError
		if !errors.As(err, &inc) {
			t.Fatal(err)
		}
	}
	return recs
}

// runDetector feeds records to a fresh engine with one detector and returns
// every emission (copied), in order.
func beaconRun(d Detector, recs []flow.Record) []Finding {
	var out []Finding
	e := NewEngine("test", func(f *Finding) {
		c := *f
		c.SubScores = slices.Clone(f.SubScores)
		c.MITRE = slices.Clone(f.MITRE)
		out = append(out, c)
	}, d)
	for i := range recs {
		e.Record(&recs[i])
	}
	if len(recs) > 0 {
		e.Tick(recs[len(recs)-1].End)
	}
	return out
}

// latest keeps the last emission of every UID, in order of first emission.
func beaconLatest(fs []Finding) []Finding {
	var out []Finding
	pos := map[string]int{}
	for _, f := range fs {
		if i, ok := pos[f.UID]; ok {
			out[i] = f
			continue
		}
		pos[f.UID] = len(out)
		out = append(out, f)
	}
	return out
}

// beaconPcapDir is the directory of the shared real captures, or "" when it
// is absent.
func beaconPcapDir(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "shared", "pcaps")
	if _, err := os.Stat(dir); err != nil {
		return ""
	}
	return dir
}

func beaconNets(t testing.TB, s string) *flow.Networks {
	t.Helper()
	n, err := flow.ParseNetworks(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
