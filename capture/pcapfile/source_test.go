package pcapfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// event is what one Source.Next call produced, as text: "file#index" for a
// packet, "file!cause" for an error.
func sourceEvents(t *testing.T, s *Source) []string {
	t.Helper()
	var events []string
	var p Packet
	for range 1000 {
		err := s.Next(&p)
		name := filepath.Base(s.File())
		switch {
		case err == io.EOF:
			return events
		case err == nil:
			events = append(events, fmt.Sprintf("%s#%d", name, p.Index))
		default:
			var e *Error
			if !errors.As(err, &e) || filepath.Base(e.File) != name {
				t.Errorf("error %v is not an *Error for %s", err, name)
			}
			cause := "other"
			for _, c := range []error{io.ErrUnexpectedEOF, ErrNotCapture, ErrMalformed, os.ErrNotExist} {
				if errors.Is(err, c) {
					cause = c.Error()
				}
			}
			events = append(events, fmt.Sprintf("%s!%s@%d/%d", name, cause, e.Packet, e.Offset))
		}
	}
	t.Fatal("Source never returned io.EOF")
	return nil
}

func TestSourceDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pkt := func(sec uint32) rec { return rec{sec: sec, data: frame(60, byte(sec))} }
	// Names sort opposite to first-packet times.
	write("a.pcap", pcapFile(le, magicMicro, 1, pkt(300), pkt(301)))
	write("b.pcapng", cat(ngSHB(be, 1, 0), ngIDB(be, LinkTypeRaw, 0),
		ngEPB(be, 0, 100e6, 0, frame(60, 0)), ngEPB(be, 0, 101e6, 0, frame(60, 0))))
	// Starts at 200 but breaks after two packets: its error must come
	// between them and a.pcap.
	broken := cat(pcapFile(le, magicNano, 1, pkt(200), pkt(201)), pcapRec(le, false, pkt(202))[:30])
	write("c.pcap.gz", gzipped(broken))
	write("d.txt", []byte("not a capture, and a few more bytes"))
	write("e.pcapng", cat(ngSHB(le, 1, 0), ngIDB(le, LinkTypeEthernet, 0))) // no packets
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {      // not descended into
		t.Fatal(err)
	}
	write("sub/z.pcap", pcapFile(le, magicMicro, 1, pkt(1)))
	if err := os.Symlink("missing.pcap", filepath.Join(dir, "f.pcap")); err != nil {
		t.Fatal(err)
	}

	s, err := OpenSource([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, total := s.Progress(); total != -1 {
		// the dangling symlink has no size
		t.Errorf("total %d, want -1", total)
	}
	got := sourceEvents(t, s)
	want := []string{
		"d.txt!not a capture file@0/0",
		"f.pcap!file does not exist@0/0",
		"b.pcapng#0", "b.pcapng#1",
		"c.pcap.gz#0", "c.pcap.gz#1",
		"c.pcap.gz!unexpected EOF@2/176",
		"a.pcap#0", "a.pcap#1",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestSourcePaths(t *testing.T) {
	dir := t.TempDir()
	late := filepath.Join(dir, "late.pcap")
	early := filepath.Join(dir, "early.pcap")
	os.WriteFile(late, pcapFile(le, magicMicro, 1, rec{sec: 9, data: frame(60, 0)}), 0o600)
	os.WriteFile(early, pcapFile(le, magicMicro, 1, rec{sec: 1, data: frame(60, 0)}, rec{sec: 2, data: frame(70, 0)}), 0o600)

	stdin, err := os.Open(early)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	old := os.Stdin
	os.Stdin = stdin
	defer func() { os.Stdin = old }()

	// Files named one by one are read in the order given.
	s, err := OpenSource([]string{late, "-", early})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := sourceEvents(t, s)
	want := "late.pcap#0 -#0 -#1 early.pcap#0 early.pcap#1"
	if strings.Join(got, " ") != want {
		t.Errorf("got  %v\nwant %v", got, want)
	}
	if read, total := s.Progress(); total != -1 || read != 2*int64(24+16+60+16+70)+24+16+60 {
		t.Errorf("Progress() = %d, %d", read, total)
	}
}

func TestOpenSourceErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name  string
		paths []string
	}{
		{"no paths", nil},
		{"missing", []string{filepath.Join(dir, "missing.pcap")}},
		{"stdin twice", []string{"-", "-"}},
	}
	for _, tc := range tests {
		if _, err := OpenSource(tc.paths); err == nil {
			t.Errorf("%s: OpenSource(%q) succeeded", tc.name, tc.paths)
		}
	}
}

func TestSourceClose(t *testing.T) {
	path := tempFile(t, "one.pcap", pcapFile(le, magicMicro, 1, rec{sec: 1, data: frame(60, 0)}, rec{sec: 2, data: frame(60, 0)}))
	s, err := OpenSource([]string{path, path})
	if err != nil {
		t.Fatal(err)
	}
	var p Packet
	if err := s.Next(&p); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Next(&p); err != io.EOF {
		t.Errorf("Next after Close: %v, want io.EOF", err)
	}
}
