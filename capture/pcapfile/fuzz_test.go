package pcapfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// fuzzMaxPackets bounds the packets read per input: an input of empty
// records is tiny per packet.
const fuzzMaxPackets = 1 << 16

type fuzzResult struct {
	pkts []wantPkt
	err  error
}

func readForFuzz(t *testing.T, r *Reader, err error, size int) fuzzResult {
	t.Helper()
	if err != nil {
		checkFuzzErr(t, err, size)
		return fuzzResult{err: err}
	}
	defer r.Close()
	var res fuzzResult
	var p Packet
	for len(res.pkts) < fuzzMaxPackets {
		if err := r.Next(&p); err != nil {
			checkFuzzErr(t, err, size)
			if again := r.Next(&p); again != err {
				t.Fatalf("Next after %v returned %v", err, again)
			}
			res.err = err
			break
		}
		if len(p.Data) > MaxSnaplen || cap(p.Data) != len(p.Data) {
			t.Fatalf("packet %d: len %d cap %d", len(res.pkts), len(p.Data), cap(p.Data))
		}
		if p.Index != int64(len(res.pkts)) {
			t.Fatalf("packet %d has Index %d", len(res.pkts), p.Index)
		}
		res.pkts = append(res.pkts, wantPkt{ts: p.Timestamp, data: bytes.Clone(p.Data), wire: p.WireLen, link: p.LinkType, ifc: p.Interface})
	}
	return res
}

// readBatchesForFuzz is readForFuzz through NextBatch, batch packets at a
// time, checking that every packet of a batch is intact when the batch is
// complete (Data of a mapped file must not move under it).
func readBatchesForFuzz(t *testing.T, r *Reader, err error, size, batch int) fuzzResult {
	t.Helper()
	if err != nil {
		checkFuzzErr(t, err, size)
		return fuzzResult{err: err}
	}
	defer r.Close()
	var res fuzzResult
	ps := make([]Packet, batch)
	for len(res.pkts) < fuzzMaxPackets {
		n, err := r.NextBatch(ps)
		if n == 0 {
			if err == nil {
				t.Fatal("NextBatch returned no packets and no error")
			}
			checkFuzzErr(t, err, size)
			if _, again := r.NextBatch(ps); again != err {
				t.Fatalf("NextBatch after %v returned %v", err, again)
			}
			res.err = err
			break
		}
		if err != nil {
			t.Fatalf("NextBatch returned %d packets and error %v", n, err)
		}
		for _, p := range ps[:n] {
			if p.Index != int64(len(res.pkts)) {
				t.Fatalf("packet %d has Index %d", len(res.pkts), p.Index)
			}
			res.pkts = append(res.pkts, wantPkt{ts: p.Timestamp, data: bytes.Clone(p.Data), wire: p.WireLen, link: p.LinkType, ifc: p.Interface})
		}
	}
	return res
}

// checkFuzzErr: io.EOF or an *Error pointing into the data (a gzip input
// decompresses to more than size, so only the sign is checked then).
func checkFuzzErr(t *testing.T, err error, size int) {
	t.Helper()
	if err == io.EOF {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Offset < 0 || e.Packet < 0 || e.Err == nil {
		t.Fatalf("bad error fields: %+v", e)
	}
}

func sameErr(a, b error) bool {
	var ea, eb *Error
	if errors.As(a, &ea) && errors.As(b, &eb) {
		return ea.Packet == eb.Packet && ea.Offset == eb.Offset && ea.Err.Error() == eb.Err.Error()
	}
	return a == b
}

// FuzzReader feeds arbitrary bytes to the streaming reader and, through a
// file, to the mmap reader: neither may panic, and both must read the same.
func FuzzReader(f *testing.F) {
	for _, tc := range readerCases() {
		if len(tc.data) < 64<<10 {
			f.Add(tc.data)
		}
	}
	f.Add(gzipped(pcapFile(le, magicMicro, 1, rec{sec: t0, data: frame(60, 0)})))
	f.Add(gzipped(cat(ngSHB(be, 1, 0), ngIDB(be, LinkTypeEthernet, 0), ngEPB(be, 0, 1, 0, frame(60, 0)))))
	if dir, err := findSharedPcaps(); err == nil {
		for _, name := range []string{"fuzz-2021-10-13.pcap", "le_test901.pcapng", "be_test202.pcapng", "le_test101.pcapng", "http_espn.pcapng", "NTP_sync.pcap"} {
			if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
				f.Add(b[:min(len(b), 4<<10)])
			}
		}
	}
	path := filepath.Join(fuzzTempDir(f), "input")
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data), path)
		streamed := readForFuzz(t, r, err, len(data))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err = Open(path)
		mapped := readForFuzz(t, r, err, len(data))
		if !sameErr(streamed.err, mapped.err) {
			t.Fatalf("stream ended with %v, mmap with %v", streamed.err, mapped.err)
		}
		samePkts(t, "stream", streamed, "mmap", mapped)
		for _, batch := range []int{1, 3, 32} {
			r, err = Open(path)
			batched := readBatchesForFuzz(t, r, err, len(data), batch)
			if !sameErr(batched.err, mapped.err) {
				t.Fatalf("batches of %d ended with %v, Next with %v", batch, batched.err, mapped.err)
			}
			samePkts(t, fmt.Sprintf("batches of %d", batch), batched, "Next", mapped)
		}
	})
}

func samePkts(t *testing.T, aName string, a fuzzResult, bName string, b fuzzResult) {
	t.Helper()
	if len(a.pkts) != len(b.pkts) {
		t.Fatalf("%s read %d packets, %s %d", aName, len(a.pkts), bName, len(b.pkts))
	}
	for i, s := range a.pkts {
		m := b.pkts[i]
		if s.ts != m.ts || s.wire != m.wire || s.link != m.link || s.ifc != m.ifc || !bytes.Equal(s.data, m.data) {
			t.Fatalf("packet %d differs: %s %+v, %s %+v", i, aName, s, bName, m)
		}
	}
}

// findSharedPcaps is sharedPcaps for callers that cannot skip.
func findSharedPcaps() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the package directory")
		}
		dir = parent
	}
	pcaps := filepath.Join(dir, "..", "shared", "pcaps")
	_, err = os.Stat(pcaps)
	return pcaps, err
}

// fuzzTempDir prefers memory-backed /dev/shm: rewriting a file on ext4
// once per input stalls the fuzzer on writeback.
func fuzzTempDir(f *testing.F) string {
	dir, err := os.MkdirTemp("/dev/shm", "pcapfile-fuzz")
	if err != nil {
		return f.TempDir()
	}
	f.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
