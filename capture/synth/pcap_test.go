package synth

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

type testFrame struct {
	ts   int64
	data []byte
	wire int
}

func testFrames() []testFrame {
	base := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC).UnixNano()
	var fs []testFrame
	for i, n := range []int{60, 61, 62, 63, 64, 100, 1514, 1518} {
		d := make([]byte, n)
		for j := range d {
			d[j] = byte(i*31 + j)
		}
		fs = append(fs, testFrame{ts: base + int64(i)*1_234_567_891 + int64(i), data: d, wire: n + i%2*100})
	}
	return fs
}

func TestPcapRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ng      bool
		nanos   bool
		snaplen int
	}{
		{"pcap-us", false, false, 0},
		{"pcap-ns", false, true, 0},
		{"pcap-ns-snap96", false, true, 96},
		{"pcapng", true, true, 0},
		{"pcapng-snap61", true, true, 61},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			var w interface {
				PacketWriter
				Close() error
			}
			var err error
			if tc.ng {
				w, err = NewPcapngWriter(&buf, LinkTypeEthernet, tc.snaplen)
			} else {
				w, err = NewPcapWriter(&buf, LinkTypeEthernet, tc.snaplen, tc.nanos)
			}
			if err != nil {
				t.Fatal(err)
			}
			frames := testFrames()
			for _, f := range frames {
				if err := w.WritePacket(f.ts, f.data, f.wire); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := w.WritePacket(frames[0].ts, frames[0].data, frames[0].wire); !errors.Is(err, ErrClosed) {
				t.Fatalf("write after Close: %v", err)
			}
			var recs []record
			if tc.ng {
				recs = readPcapng(t, buf.Bytes())
			} else {
				recs = readPcap(t, buf.Bytes())
			}
			if len(recs) != len(frames) {
				t.Fatalf("read %d records, wrote %d", len(recs), len(frames))
			}
			for i, f := range frames {
				want := f.data
				if tc.snaplen > 0 && len(want) > tc.snaplen {
					want = want[:tc.snaplen]
				}
				wantTS := f.ts
				if !tc.nanos {
					wantTS -= wantTS % 1000
				}
				r := recs[i]
				if !bytes.Equal(r.data, want) || r.wire != f.wire || r.ts.UnixNano() != wantTS {
					t.Fatalf("record %d: %d bytes of %d at %d, want %d of %d at %d",
						i, len(r.data), r.wire, r.ts.UnixNano(), len(want), f.wire, wantTS)
				}
			}
		})
	}
}

func TestPcapWriterErrors(t *testing.T) {
	if _, err := NewPcapWriter(&bytes.Buffer{}, LinkTypeEthernet, -1, true); err == nil {
		t.Error("negative snaplen accepted")
	}
	if _, err := NewPcapngWriter(&bytes.Buffer{}, LinkTypeEthernet, -1); err == nil {
		t.Error("negative snaplen accepted by pcapng")
	}
	w, err := NewPcapWriter(&bytes.Buffer{}, LinkTypeEthernet, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []testFrame{
		{ts: -1, data: make([]byte, 60), wire: 60},
		{ts: 1 << 62, data: make([]byte, 60), wire: 60},
		{ts: 0, data: make([]byte, 60), wire: 59},
	} {
		if err := w.WritePacket(bad.ts, bad.data, bad.wire); err == nil {
			t.Errorf("accepted ts %d, %d bytes of %d", bad.ts, len(bad.data), bad.wire)
		}
	}
	// a bad argument does not poison the writer
	if err := w.WritePacket(0, make([]byte, 60), 60); err != nil {
		t.Fatal(err)
	}

	// write errors are sticky
	fw, err := NewPcapWriter(failWriter{}, LinkTypeEthernet, 0, true)
	if err != nil {
		t.Fatal(err) // the header is still buffered
	}
	big := make([]byte, writeBufSize)
	if err := fw.WritePacket(0, big, len(big)); err == nil {
		t.Fatal("write through a failing writer succeeded")
	}
	if err := fw.Flush(); err == nil {
		t.Fatal("flush after a failed write succeeded")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
