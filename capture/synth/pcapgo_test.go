//go:build pcapgo

// gopacket's pcapgo imports golang.org/x/net/bpf and golang.org/x/sys, whose
// checksums go.sum does not hold yet, so these read-backs sit behind the
// pcapgo build tag: go test -tags pcapgo ./capture/synth/ once
// `go get github.com/google/gopacket/pcapgo@v1.1.19` has recorded them.

package synth

import (
	"bytes"
	"io"
	"testing"

	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func readWithPcapgo(t *testing.T, b []byte, ng bool) []record {
	t.Helper()
	var next func() ([]byte, error, record)
	if ng {
		r, err := pcapgo.NewNgReader(bytes.NewReader(b), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatal(err)
		}
		if r.LinkType() != layers.LinkTypeEthernet {
			t.Fatalf("link type %v", r.LinkType())
		}
		next = func() ([]byte, error, record) {
			data, ci, err := r.ReadPacketData()
			return data, err, record{ts: ci.Timestamp, wire: ci.Length}
		}
	} else {
		r, err := pcapgo.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if r.LinkType() != layers.LinkTypeEthernet {
			t.Fatalf("link type %v", r.LinkType())
		}
		next = func() ([]byte, error, record) {
			data, ci, err := r.ReadPacketData()
			return data, err, record{ts: ci.Timestamp, wire: ci.Length}
		}
	}
	var recs []record
	for {
		data, err, rec := next()
		if err == io.EOF {
			return recs
		}
		if err != nil {
			t.Fatalf("record %d: %v", len(recs), err)
		}
		rec.data = data
		recs = append(recs, rec)
	}
}

// TestPcapgoReadsWhatWeRead: pcapgo and the test's own readers see the same
// records in every file the writers produce.
func TestPcapgoReadsWhatWeRead(t *testing.T) {
	for _, ng := range []bool{false, true} {
		for _, snap := range []int{0, 96} {
			cfg := smallBench
			cfg.Snaplen = snap
			truth, file := writeBench(t, cfg, ng)
			got := readWithPcapgo(t, file, ng)
			var own []record
			if ng {
				own = readPcapng(t, file)
			} else {
				own = readPcap(t, file)
			}
			if len(got) != len(own) {
				t.Fatalf("pcapgo reads %d records, we read %d", len(got), len(own))
			}
			for i := range got {
				if !got[i].ts.Equal(own[i].ts) || got[i].wire != own[i].wire || !bytes.Equal(got[i].data, own[i].data) {
					t.Fatalf("record %d differs", i)
				}
			}
			compareTruth(t, truth, analyze(t, got, snap > 0))
		}
	}
}
