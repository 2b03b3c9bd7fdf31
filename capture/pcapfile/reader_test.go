package pcapfile

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
)

type wantPkt struct {
	ts   int64
	data []byte
	wire int
	link LinkType
	ifc  int
}

// wantErr describes the *Error a case ends with; a nil *wantErr means a
// clean io.EOF.
type wantErr struct {
	packet int64
	offset int64
	cause  error  // for errors.Is
	msg    string // Error.Err.Error(), exactly
}

type readerCase struct {
	name string
	data []byte
	pkts []wantPkt
	err  *wantErr
}

const t0 = 1700000000 // 2023-11-14 22:13:20 UTC

func readerCases() []readerCase {
	f60, f100, f1514 := frame(60, 1), frame(100, 2), frame(1514, 3)
	big := frame(200<<10, 4) // larger than the first stream buffer

	// pcapng with three interfaces of different link types and
	// resolutions, interleaved with blocks the reader must skip.
	ngTwoIfaces := func(bo order) []byte {
		return cat(
			ngSHB(bo, 1, 0, ngOpt(bo, 4, []byte("flowhound test")), ngOpt(bo, optEndOfOpt, nil)),
			ngIDB(bo, LinkTypeEthernet, 64),
			ngIDB(bo, LinkTypeRaw, 0,
				ngOpt(bo, optIfTsresol, []byte{9}),
				ngOpt(bo, optIfTsoffset, bo.AppendUint64(nil, 10))),
			ngBlock(bo, 4, []byte{1, 0, 8, 0, 10, 0, 0, 1, 'h', 'o', 's', 't', 0, 0, 0, 0}), // NRB
			ngIDB(bo, LinkTypeLinuxSLL2, 0, ngOpt(bo, optIfTsresol, []byte{0x80 | 20})),
			ngEPB(bo, 0, t0*1e6+123456, 1514, f60),
			ngEPB(bo, 1, t0*1e9+987654321, 0, f100),
			ngBlock(bo, 5, make([]byte, 20)), // ISB
			ngEPB(bo, 2, t0<<20|1<<19, 0, f60),
			ngSPB(bo, 100, f100),                                   // cut to interface 0's snaplen
			ngBlock(bo, 0x40000bad, []byte{0, 0, 0x7e, 0xd9, 'x'}), // custom block
			ngPB(bo, 1, t0*1e9+5, 0, f1514),
		)
	}
	ngTwoIfacesPkts := []wantPkt{
		{ts: t0*1e9 + 123456000, data: f60, wire: 1514, link: LinkTypeEthernet, ifc: 0},
		{ts: (t0+10)*1e9 + 987654321, data: f100, wire: 100, link: LinkTypeRaw, ifc: 1},
		{ts: t0*1e9 + 500000000, data: f60, wire: 60, link: LinkTypeLinuxSLL2, ifc: 2},
		{ts: t0*1e9 + 500000000, data: f100[:64], wire: 100, link: LinkTypeEthernet, ifc: 0},
		{ts: (t0+10)*1e9 + 5, data: f1514, wire: 1514, link: LinkTypeRaw, ifc: 1},
	}

	pcapLE := pcapFile(le, magicMicro, 1, rec{sec: t0, frac: 123456, data: f60}, rec{sec: t0 + 1, frac: 999999, wire: 1514, data: f100})
	pcapLEPkts := []wantPkt{
		{ts: t0*1e9 + 123456000, data: f60, wire: 60, link: LinkTypeEthernet},
		{ts: (t0+1)*1e9 + 999999000, data: f100, wire: 1514, link: LinkTypeEthernet},
	}
	// pcapLE is 24 + 76 + 116 = 216 bytes.

	shb, idb := ngSHB(le, 1, 0), ngIDB(le, LinkTypeEthernet, 0)
	epb := ngEPB(le, 0, t0*1e6, 0, f60) // 92 bytes
	ngHead := cat(shb, idb)             // 28 + 20 = 48 bytes
	ngOnePkt := []wantPkt{{ts: t0 * 1e9, data: f60, wire: 60, link: LinkTypeEthernet}}

	return []readerCase{
		{name: "pcap le usec", data: pcapLE, pkts: pcapLEPkts},
		{
			name: "pcap be usec",
			data: pcapFile(be, magicMicro, 1, rec{sec: t0, frac: 123456, data: f60}, rec{sec: t0 + 1, frac: 999999, wire: 1514, data: f100}),
			pkts: pcapLEPkts,
		},
		{
			name: "pcap le nsec raw",
			data: pcapFile(le, magicNano, 101, rec{sec: t0, frac: 123456789, data: f100}),
			pkts: []wantPkt{{ts: t0*1e9 + 123456789, data: f100, wire: 100, link: LinkTypeRaw}},
		},
		{
			name: "pcap be nsec raw",
			data: pcapFile(be, magicNano, 101, rec{sec: t0, frac: 123456789, data: f100}),
			pkts: []wantPkt{{ts: t0*1e9 + 123456789, data: f100, wire: 100, link: LinkTypeRaw}},
		},
		{
			name: "pcap fcs bits above link type",
			data: pcapFile(le, magicMicro, 2<<28|1<<26|uint32(LinkTypeEthernet), rec{sec: t0, data: f60}),
			pkts: []wantPkt{{ts: t0 * 1e9, data: f60, wire: 60, link: LinkTypeEthernet}},
		},
		{
			name: "pcap 2.2 swapped lengths",
			data: pcapFileV(le, magicMicro, 2, 2, 1, rec{sec: t0, wire: 100, data: f60, swapped: true}),
			pkts: []wantPkt{{ts: t0 * 1e9, data: f60, wire: 100, link: LinkTypeEthernet}},
		},
		{
			name: "pcap 2.3 swaps only when caplen exceeds len",
			data: pcapFileV(be, magicMicro, 2, 3, 1, rec{sec: t0, wire: 100, data: f60}, rec{sec: t0, wire: 100, data: f60, swapped: true}),
			pkts: []wantPkt{
				{ts: t0 * 1e9, data: f60, wire: 100, link: LinkTypeEthernet},
				{ts: t0 * 1e9, data: f60, wire: 100, link: LinkTypeEthernet},
			},
		},
		{
			name: "modified pcap",
			data: pcapFile(le, magicModified, 1, rec{sec: t0, frac: 1, data: f60}, rec{sec: t0, frac: 2, data: f100}),
			pkts: []wantPkt{
				{ts: t0*1e9 + 1000, data: f60, wire: 60, link: LinkTypeEthernet},
				{ts: t0*1e9 + 2000, data: f100, wire: 100, link: LinkTypeEthernet},
			},
		},
		{
			name: "pcap empty and big packets",
			data: pcapFile(le, magicMicro, 1, rec{sec: t0, wire: 60}, rec{sec: t0 + 1, data: big}, rec{sec: t0 + 2, data: f60}),
			pkts: []wantPkt{
				{ts: t0 * 1e9, data: []byte{}, wire: 60, link: LinkTypeEthernet},
				{ts: (t0 + 1) * 1e9, data: big, wire: len(big), link: LinkTypeEthernet},
				{ts: (t0 + 2) * 1e9, data: f60, wire: 60, link: LinkTypeEthernet},
			},
		},
		{name: "pcap without packets", data: pcapFile(le, magicMicro, 1)},
		{
			name: "pcap truncated final record",
			data: cat(pcapLE, pcapRec(le, false, rec{sec: t0 + 2, data: f60})[:16+20]),
			pkts: pcapLEPkts,
			err:  &wantErr{packet: 2, offset: 216, cause: io.ErrUnexpectedEOF, msg: "truncated record: header says 60 bytes, 20 left"},
		},
		{
			name: "pcap truncated record header",
			data: cat(pcapLE, []byte{1, 2, 3, 4, 5}),
			pkts: pcapLEPkts,
			err:  &wantErr{packet: 2, offset: 216, cause: io.ErrUnexpectedEOF, msg: "truncated record header: 5 of 16 bytes"},
		},
		{
			name: "pcap caplen over limit",
			data: put32(le, cat(pcapLE, pcapRec(le, false, rec{sec: t0, data: f60})), 216+8, 300000),
			pkts: pcapLEPkts,
			err:  &wantErr{packet: 2, offset: 216, cause: ErrMalformed, msg: "caplen 300000 exceeds the 262144-byte limit"},
		},
		{
			name: "pcap caplen past end of file",
			data: put32(be, pcapFile(be, magicNano, 1, rec{sec: t0, data: f60}), 24+8, 1000),
			err:  &wantErr{packet: 0, offset: 24, cause: io.ErrUnexpectedEOF, msg: "truncated record: header says 1000 bytes, 60 left"},
		},
		{
			name: "pcap version 1",
			data: pcapFileV(le, magicMicro, 1, 0, 1),
			err:  &wantErr{cause: ErrUnsupported, msg: "unsupported pcap version 1.0"},
		},
		{
			name: "pcap header cut short",
			data: pcapLE[:10],
			err:  &wantErr{cause: io.ErrUnexpectedEOF, msg: "file too short for a pcap header: 10 of 24 bytes"},
		},
		{
			name: "three bytes",
			data: []byte{0xd4, 0xc3, 0xb2},
			err:  &wantErr{cause: io.ErrUnexpectedEOF, msg: "file too short for a capture header: 3 bytes"},
		},
		{name: "empty file", err: &wantErr{cause: ErrNotCapture, msg: "empty file"}},
		{
			name: "text file",
			data: []byte("hello, world: this is not a capture file\n"),
			err:  &wantErr{cause: ErrNotCapture, msg: "unknown magic 68 65 6c 6c"},
		},
		{name: "pcapng le three interfaces", data: ngTwoIfaces(le), pkts: ngTwoIfacesPkts},
		{name: "pcapng be three interfaces", data: ngTwoIfaces(be), pkts: ngTwoIfacesPkts},
		{name: "pcapng without packets", data: ngHead},
		{
			name: "pcapng large skipped block",
			data: cat(ngHead, epb, ngBlock(le, 0x80000001, big), epb, ngBlock(le, 0x80000001, big)),
			pkts: append(ngOnePkt, ngOnePkt[0]),
		},
		{
			name: "pcapng sections of both byte orders",
			data: cat(ngHead, epb, ngSHB(be, 1, 0), ngIDB(be, LinkTypeRaw, 0), ngIDB(be, LinkTypeIPv6, 0), ngEPB(be, 1, t0*1e6+1, 0, f100)),
			pkts: append(ngOnePkt, wantPkt{ts: t0*1e9 + 1000, data: f100, wire: 100, link: LinkTypeIPv6, ifc: 1}),
		},
		{
			name: "pcapng new section forgets interfaces",
			data: cat(shb, idb, idb, ngEPB(le, 1, t0*1e6, 0, f60), shb, idb, ngEPB(le, 1, t0*1e6, 0, f60)),
			pkts: []wantPkt{{ts: t0 * 1e9, data: f60, wire: 60, link: LinkTypeEthernet, ifc: 1}},
			err:  &wantErr{packet: 1, offset: 28 + 20 + 20 + 92 + 28 + 20, cause: ErrMalformed, msg: "packet refers to interface 1 but the section has 1"},
		},
		{
			name: "pcapng packet before any interface",
			data: cat(shb, epb),
			err:  &wantErr{offset: 28, cause: ErrMalformed, msg: "packet refers to interface 0 but the section has 0"},
		},
		{
			name: "pcapng simple packet before any interface",
			data: cat(shb, ngSPB(le, 60, f60)),
			err:  &wantErr{offset: 28, cause: ErrMalformed, msg: "simple packet block but the section has no interface"},
		},
		{
			name: "pcapng unsupported section version after a packet",
			data: cat(ngHead, epb, ngSHB(le, 2, 0), idb, epb),
			pkts: ngOnePkt,
			err:  &wantErr{packet: 1, offset: 140, cause: ErrUnsupported, msg: "unsupported section header version 2.0"},
		},
		{
			name: "pcapng unknown byte-order magic",
			data: cat(ngHead, epb, put32(le, shb, 8, 0x11223344)),
			pkts: ngOnePkt,
			err:  &wantErr{packet: 1, offset: 140, cause: ErrMalformed, msg: "unknown byte-order magic 0x11223344 in section header"},
		},
		{
			name: "pcapng block length not a multiple of 4",
			data: cat(ngHead, put32(le, epb, 4, 90)),
			err:  &wantErr{offset: 48, cause: ErrMalformed, msg: "enhanced packet block length 90 is not a multiple of 4"},
		},
		{
			name: "pcapng packet block below minimum",
			data: cat(ngHead, ngBlock(le, blockEPB, make([]byte, 16))),
			err:  &wantErr{offset: 48, cause: ErrMalformed, msg: "enhanced packet block length 28 is below the 32-byte minimum"},
		},
		{
			name: "pcapng unknown block below minimum",
			data: cat(ngHead, epb, le.AppendUint32(le.AppendUint32(nil, 0x0bad), 8)),
			pkts: ngOnePkt,
			err:  &wantErr{packet: 1, offset: 140, cause: ErrMalformed, msg: "block type 0xbad length 8 is below the 12-byte minimum"},
		},
		{
			name: "pcapng section header below minimum",
			data: put32(le, put32(le, shb, 4, 24), 20, 24)[:24],
			err:  &wantErr{cause: ErrMalformed, msg: "section header block length 24 is below the 28-byte minimum"},
		},
		{
			name: "pcapng block over limit",
			data: cat(ngHead, put32(le, epb, 4, 16<<20)),
			err:  &wantErr{offset: 48, cause: ErrMalformed, msg: "enhanced packet block length 16777216 exceeds the 8388608-byte limit"},
		},
		{
			name: "pcapng trailing length mismatch",
			data: cat(ngHead, put32(le, epb, 88, 96), epb),
			err:  &wantErr{offset: 48, cause: ErrMalformed, msg: "enhanced packet block length 92 does not match its trailing length 96"},
		},
		{
			name: "pcapng option runs past the block",
			data: cat(shb, ngBlock(le, blockIDB, cat(le.AppendUint32(nil, 1), le.AppendUint32(nil, 0), le.AppendUint16(nil, optIfTsresol), le.AppendUint16(nil, 100), []byte{6, 0, 0, 0}))),
			err:  &wantErr{offset: 28, cause: ErrMalformed, msg: "option 9 of 100 bytes runs past the end of the block"},
		},
		{
			name: "pcapng caplen overruns block",
			data: cat(ngHead, put32(le, epb, 20, 61)),
			err:  &wantErr{offset: 48, cause: ErrMalformed, msg: "caplen 61 overruns the 92-byte enhanced packet block"},
		},
		{
			name: "pcapng caplen over limit",
			data: cat(ngHead, epb, put32(le, epb, 20, 300000)),
			pkts: ngOnePkt,
			err:  &wantErr{packet: 1, offset: 140, cause: ErrMalformed, msg: "caplen 300000 exceeds the 262144-byte limit"},
		},
		{
			name: "pcapng truncated final packet",
			data: cat(ngHead, epb, epb[:50]),
			pkts: ngOnePkt,
			err:  &wantErr{packet: 1, offset: 140, cause: io.ErrUnexpectedEOF, msg: "truncated block: header says 92 bytes, 50 left"},
		},
		{
			name: "pcapng truncated skipped block",
			data: cat(ngHead, epb, ngBlock(le, 0xbad, make([]byte, 100))[:60]),
			pkts: ngOnePkt,
			err:  &wantErr{packet: 1, offset: 140, cause: io.ErrUnexpectedEOF, msg: "truncated block: header says 112 bytes, 60 left"},
		},
		{
			name: "pcapng skipped block missing its trailer",
			data: cat(ngHead, epb, ngBlock(le, 0xbad, make([]byte, 100))[:110]),
			pkts: ngOnePkt,
			err:  &wantErr{packet: 1, offset: 140, cause: io.ErrUnexpectedEOF, msg: "truncated block: header says 112 bytes, 110 left"},
		},
		{
			name: "pcapng truncated block header",
			data: cat(ngHead, epb, []byte{6, 0, 0}),
			pkts: ngOnePkt,
			err:  &wantErr{packet: 1, offset: 140, cause: io.ErrUnexpectedEOF, msg: "truncated block header: 3 of 8 bytes"},
		},
		{
			name: "pcapng section header cut short",
			data: shb[:10],
			err:  &wantErr{cause: io.ErrUnexpectedEOF, msg: "truncated section header: 10 of 12 bytes"},
		},
		{
			name: "pcapng section header body cut short",
			data: shb[:20],
			err:  &wantErr{cause: io.ErrUnexpectedEOF, msg: "truncated block: header says 28 bytes, 20 left"},
		},
	}
}

// opener opens data one way for a test.
type opener struct {
	name string
	open func(t testing.TB, data []byte) (*Reader, error)
}

var openers = []opener{
	{"mmap", func(t testing.TB, data []byte) (*Reader, error) { return Open(tempFile(t, "c", data)) }},
	{"file-stream", func(t testing.TB, data []byte) (*Reader, error) { return openFile(tempFile(t, "c", data), false) }},
	{"stream", func(t testing.TB, data []byte) (*Reader, error) { return NewReader(bytes.NewReader(data), "c") }},
	{"one-byte-reads", func(t testing.TB, data []byte) (*Reader, error) {
		return NewReader(iotest.OneByteReader(bytes.NewReader(data)), "c")
	}},
	{"gzip-stream", func(t testing.TB, data []byte) (*Reader, error) {
		return NewReader(bytes.NewReader(gzipped(data)), "c")
	}},
	{"gzip-file", func(t testing.TB, data []byte) (*Reader, error) { return Open(tempFile(t, "c.gz", gzipped(data))) }},
}

func tempFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readAll reads until the first error, copying each packet, and checks
// the invariants every packet must meet.
func readAll(t *testing.T, r *Reader) ([]wantPkt, error) {
	t.Helper()
	var got []wantPkt
	var p Packet
	for {
		err := r.Next(&p)
		if err != nil {
			if again := r.Next(&p); again != err {
				t.Errorf("Next after %v returned %v, want the same error", err, again)
			}
			return got, err
		}
		if p.Index != int64(len(got)) {
			t.Errorf("packet %d has Index %d", len(got), p.Index)
		}
		if cap(p.Data) != len(p.Data) {
			t.Errorf("packet %d: cap(Data) %d != len %d: an append would clobber the next record", len(got), cap(p.Data), len(p.Data))
		}
		got = append(got, wantPkt{ts: p.Timestamp, data: bytes.Clone(p.Data), wire: p.WireLen, link: p.LinkType, ifc: p.Interface})
	}
}

func TestReader(t *testing.T) {
	for _, tc := range readerCases() {
		for _, o := range openers {
			t.Run(tc.name+"/"+o.name, func(t *testing.T) {
				var got []wantPkt
				r, err := o.open(t, tc.data)
				if err == nil {
					got, err = readAll(t, r)
					if cerr := r.Close(); cerr != nil {
						t.Errorf("Close: %v", cerr)
					}
				}
				checkPackets(t, got, tc.pkts)
				checkErr(t, err, tc.err)
			})
		}
	}
}

func checkPackets(t *testing.T, got, want []wantPkt) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("read %d packets, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.ts != w.ts || g.wire != w.wire || g.link != w.link || g.ifc != w.ifc || !bytes.Equal(g.data, w.data) {
			t.Errorf("packet %d: got ts %d len %d wire %d link %v if %d, want ts %d len %d wire %d link %v if %d (data equal: %v)",
				i, g.ts, len(g.data), g.wire, g.link, g.ifc, w.ts, len(w.data), w.wire, w.link, w.ifc, bytes.Equal(g.data, w.data))
		}
	}
}

func checkErr(t *testing.T, err error, want *wantErr) {
	t.Helper()
	if want == nil {
		if err != io.EOF {
			t.Errorf("ended with %v, want io.EOF", err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("ended with %v (%T), want *Error", err, err)
	}
	if e.Packet != want.packet || e.Offset != want.offset || e.Err.Error() != want.msg {
		t.Errorf("got packet %d offset %d %q, want packet %d offset %d %q", e.Packet, e.Offset, e.Err, want.packet, want.offset, want.msg)
	}
	if !errors.Is(err, want.cause) {
		t.Errorf("%v does not wrap %v", err, want.cause)
	}
}

func TestErrorString(t *testing.T) {
	data := cat(pcapFile(le, magicMicro, 1, rec{sec: t0, data: frame(60, 0)}), pcapRec(le, false, rec{sec: t0, data: frame(1514, 0)})[:16+800])
	r, err := NewReader(bytes.NewReader(data), "evidence.pcap")
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	if err := r.Next(&p); err != nil {
		t.Fatal(err)
	}
	err = r.Next(&p)
	const want = "pcapfile: evidence.pcap: packet 1 at byte offset 100: truncated record: header says 1514 bytes, 800 left"
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
}

func TestGzipErrors(t *testing.T) {
	pcap := pcapFile(le, magicMicro, 1, rec{sec: t0, data: frame(1000, 0)}, rec{sec: t0, data: frame(1000, 1)})
	gz := gzipped(pcap)
	corrupt := bytes.Clone(gz)
	corrupt[len(corrupt)-5] ^= 0xff // CRC-32
	tests := []struct {
		name   string
		data   []byte
		pkts   int
		offset int64
		cause  error
	}{
		{"bad gzip header", []byte{0x1f, 0x8b, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0, 0, gzip.ErrHeader},
		{"gzip magic only", []byte{0x1f, 0x8b}, 0, 0, io.ErrUnexpectedEOF},
		{"truncated gzip stream", gz[:len(gz)-20], 1, 1040, io.ErrUnexpectedEOF},
		{"bad checksum", corrupt, 2, 2056, gzip.ErrChecksum},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			r, err := NewReader(bytes.NewReader(tc.data), "x.gz")
			if err == nil {
				var p Packet
				for err = r.Next(&p); err == nil; err = r.Next(&p) {
					n++
				}
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, tc.cause) || e.Offset != tc.offset || n != tc.pkts {
				t.Errorf("after %d packets got %v, want %d packets then an *Error at %d wrapping %v", n, err, tc.pkts, tc.offset, tc.cause)
			}
		})
	}
}

func TestProgress(t *testing.T) {
	data := pcapFile(le, magicMicro, 1, rec{sec: t0, data: frame(60, 0)}, rec{sec: t0, data: frame(100, 0)})
	size := int64(len(data))
	tests := []struct {
		name      string
		open      func(testing.TB, []byte) (*Reader, error)
		wantTotal int64
	}{
		{"mmap", openers[0].open, size},
		{"file-stream", openers[1].open, size},
		{"stream", openers[2].open, -1},
		{"gzip-file", openers[5].open, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.open(t, data)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var reads []int64
			var p Packet
			for done := false; !done; {
				read, total := r.Progress()
				if total != tc.wantTotal {
					t.Errorf("total %d, want %d", total, tc.wantTotal)
				}
				reads = append(reads, read)
				done = r.Next(&p) != nil
			}
			want := []int64{24, 100, size} // before each Next
			if !equalInts(reads, want) {
				t.Errorf("read progress %v, want %v", reads, want)
			}
		})
	}
}

func equalInts(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestClose(t *testing.T) {
	for _, o := range openers {
		t.Run(o.name, func(t *testing.T) {
			r, err := o.open(t, pcapFile(le, magicMicro, 1, rec{sec: t0, data: frame(60, 0)}))
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			var p Packet
			if err := r.Next(&p); err != ErrClosed {
				t.Errorf("Next after Close: %v, want ErrClosed", err)
			}
		})
	}
}

func TestOpenStdin(t *testing.T) {
	path := tempFile(t, "stdin.pcap.gz", gzipped(pcapFile(be, magicNano, 1, rec{sec: t0, frac: 7, data: frame(60, 0)})))
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()

	r, err := Open("-")
	if err != nil {
		t.Fatal(err)
	}
	got, err := readAll(t, r)
	if err != io.EOF || len(got) != 1 || got[0].ts != int64(t0)*1e9+7 {
		t.Errorf("read %v, %v; want one packet at %d then io.EOF", got, err, int64(t0)*1e9+7)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Errorf("stdin was closed by Reader.Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing.pcap")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want os.ErrNotExist", err)
	}
	var e *Error
	if _, err := Open(t.TempDir()); !errors.As(err, &e) || !errors.Is(err, ErrNotCapture) || !strings.Contains(err.Error(), "directory") {
		t.Errorf("directory: %v, want an *Error wrapping ErrNotCapture", err)
	}
}

// A file truncated under its mapping must give an error, not SIGBUS, to
// Next and to NextBatch (which returns what it read first and the error
// at its next call).
func TestMappedFileShrinks(t *testing.T) {
	for _, batch := range []bool{false, true} {
		t.Run(map[bool]string{false: "Next", true: "NextBatch"}[batch], func(t *testing.T) {
			var recs []rec
			for i := range 200 {
				recs = append(recs, rec{sec: t0 + uint32(i), data: frame(1000, byte(i))})
			}
			path := tempFile(t, "shrinks.pcap", pcapFile(le, magicMicro, 1, recs...))
			r, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if r.mapped == nil {
				t.Skip("file is not memory-mapped on this platform")
			}
			var p Packet
			if err := r.Next(&p); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			n := 1
			if batch {
				ps := make([]Packet, 32)
				for {
					k, berr := r.NextBatch(ps)
					n += k
					if berr != nil {
						err = berr
						break
					}
					if k == 0 {
						t.Fatal("NextBatch returned nothing and no error")
					}
				}
			} else {
				for err = r.Next(&p); err == nil; err = r.Next(&p) {
					n++
				}
			}
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, io.ErrUnexpectedEOF) || !strings.Contains(err.Error(), "shrank") {
				t.Errorf("after %d packets got %v, want an *Error about the file shrinking", n, err)
			}
		})
	}
}

func TestTimestampResolution(t *testing.T) {
	const maxInt64 = 1<<63 - 1
	tests := []struct {
		tsresol byte
		ticks   uint64
		offset  int64
		want    int64
	}{
		{6, 1_700_000_000_123_456, 0, 1_700_000_000_123_456_000},
		{9, 1_700_000_000_123_456_789, 0, 1_700_000_000_123_456_789},
		{3, 1_700_000_000_123, 0, 1_700_000_000_123_000_000},
		{0, 1_700_000_000, 0, 1_700_000_000_000_000_000},
		{12, 123_456_789_012, 0, 123_456_789},
		{6, 1_000_000, -1e9, 0},
		{0x80 | 0, 5, 0, 5e9},
		{0x80 | 20, 3 << 19, 0, 1_500_000_000},
		{0x80 | 30, 1 << 29, 0, 500_000_000},
		{0x80 | 127, ^uint64(0), 0, 0},
		{127, ^uint64(0), 0, 0},
		{28, ^uint64(0), 0, 1},
		{29, ^uint64(0), 0, 0},
		{0, ^uint64(0), 0, maxInt64},
		{9, ^uint64(0), 0, maxInt64},
	}
	for _, tc := range tests {
		var f iface
		f.setResolution(tc.tsresol)
		f.offset = tc.offset
		if got := f.nanos(tc.ticks); got != tc.want {
			t.Errorf("tsresol %#x ticks %d: got %d ns, want %d", tc.tsresol, tc.ticks, got, tc.want)
		}
	}
}

// Next must not allocate: a sensor reads millions of packets.
func TestNextDoesNotAllocate(t *testing.T) {
	var recs []rec
	for i := range 64 {
		recs = append(recs, rec{sec: t0, frac: uint32(i), data: frame(60+i*20, byte(i))})
	}
	pcap := pcapFile(le, magicMicro, 1, recs...)
	ng := cat(ngSHB(be, 1, 0), ngIDB(be, LinkTypeEthernet, 0), ngIDB(be, LinkTypeRaw, 0, ngOpt(be, optIfTsresol, []byte{9})))
	for i := range 64 {
		ng = append(ng, ngEPB(be, uint32(i%2), uint64(i), 0, frame(60+i*20, byte(i)))...)
	}
	for _, file := range []struct {
		name string
		data []byte
	}{{"pcap", pcap}, {"pcapng", ng}} {
		for _, o := range openers[:3] {
			t.Run(file.name+"/"+o.name, func(t *testing.T) {
				r, err := o.open(t, file.data)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				var p Packet
				allocs := testing.AllocsPerRun(60, func() {
					if err := r.Next(&p); err != nil {
						t.Fatal(err)
					}
				})
				if allocs != 0 {
					t.Errorf("Next allocates %v times per packet", allocs)
				}
			})
		}
	}
}

func TestLinkTypeString(t *testing.T) {
	for lt, want := range map[LinkType]string{
		LinkTypeNull: "null", LinkTypeEthernet: "ethernet", LinkTypeRaw: "raw", LinkTypeLoop: "loop",
		LinkTypeLinuxSLL: "linux_sll", LinkTypeIPv4: "ipv4", LinkTypeIPv6: "ipv6", LinkTypeLinuxSLL2: "linux_sll2",
		LinkType(147): "linktype(147)",
	} {
		if got := lt.String(); got != want {
			t.Errorf("LinkType(%d).String() = %q, want %q", uint16(lt), got, want)
		}
	}
}
