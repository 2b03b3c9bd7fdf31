package pcapfile

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sharedPcaps returns the folder of real captures, which sits beside the
// checkout: ../shared/pcaps from the directory holding go.mod.
func sharedPcaps(t testing.TB) string {
	t.Helper()
	pcaps, err := findSharedPcaps()
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("shared captures not found at %s (they sit beside the checkout)", pcaps)
	} else if err != nil {
		t.Fatal(err)
	}
	return pcaps
}

type manifestRow struct {
	packets int // -1 when the manifest says "?"
	start   time.Time
}

var manifestStart = regexp.MustCompile(`from (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}) `)

// readManifest parses the table of MANIFEST.md: the packets column is
// what capinfos counts, the time span column starts with the first
// packet's time in UTC.
func readManifest(t *testing.T, dir string) map[string]manifestRow {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "MANIFEST.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]manifestRow{}
	col := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case cells[0] == "file":
			for i, c := range cells {
				col[c] = i
			}
			continue
		case strings.HasPrefix(cells[0], "---"):
			continue
		}
		fi, pi, si := col["file"], col["packets"], col["time span"]
		if pi == 0 || si == 0 || len(cells) <= max(pi, si) {
			t.Fatalf("MANIFEST.md: no file/packets/time span columns before %q", line)
		}
		row := manifestRow{packets: -1}
		if cells[pi] != "?" {
			n, err := strconv.Atoi(strings.ReplaceAll(cells[pi], ",", ""))
			if err != nil {
				t.Fatalf("MANIFEST.md: %s: packets %q: %v", cells[fi], cells[pi], err)
			}
			row.packets = n
		}
		if m := manifestStart.FindStringSubmatch(cells[si] + " "); m != nil {
			row.start, err = time.Parse("2006-01-02 15:04:05.000000", m[1])
			if err != nil {
				t.Fatalf("MANIFEST.md: %s: start %q: %v", cells[fi], m[1], err)
			}
		}
		rows[cells[fi]] = row
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("MANIFEST.md has no table rows")
	}
	return rows
}

// sharedBroken lists the captures that end in an error; capinfos reads the
// same packets before failing on the same record.
var sharedBroken = map[string]struct {
	packets int
	offset  int64
	cause   error
	msg     string
}{
	// pcap 2.0, so caplen and len are swapped: one 197-byte record, then 2 stray bytes.
	"fuzz-2021-10-13.pcap": {1, 237, io.ErrUnexpectedEOF, "truncated record header: 2 of 16 bytes"},
	// The third section header claims version 2.0.
	"le_test901.pcapng": {1, 480, ErrUnsupported, "unsupported section header version 2.0"},
}

func TestSharedCaptures(t *testing.T) {
	dir := sharedPcaps(t)
	manifest := readManifest(t, dir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	startsChecked := 0
	for _, e := range ents {
		name := e.Name()
		if name == "MANIFEST.md" || !e.Type().IsRegular() {
			continue
		}
		row, ok := manifest[name]
		if !ok {
			t.Errorf("%s is not in MANIFEST.md", name)
			continue
		}
		broken, isBroken := sharedBroken[name]
		want := row.packets
		if isBroken {
			want = broken.packets
		}
		if want < 0 {
			t.Errorf("%s: MANIFEST.md has no packet count and sharedBroken no entry", name)
			continue
		}
		if !row.start.IsZero() {
			startsChecked++
		}
		for _, o := range []struct {
			name string
			open func(string) (*Reader, error)
		}{
			{"mmap", Open},
			{"stream", func(p string) (*Reader, error) { return openFile(p, false) }},
		} {
			t.Run(name+"/"+o.name, func(t *testing.T) {
				r, err := o.open(filepath.Join(dir, name))
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				n, first := 0, int64(0)
				var p Packet
				for err = r.Next(&p); err == nil; err = r.Next(&p) {
					if n == 0 {
						first = p.Timestamp
					}
					n++
				}
				if n != want {
					t.Errorf("read %d packets, capinfos counts %d", n, want)
				}
				if !row.start.IsZero() && time.Unix(0, first).UTC().Truncate(time.Microsecond) != row.start {
					t.Errorf("first packet at %s, MANIFEST.md says %s", time.Unix(0, first).UTC().Format(time.RFC3339Nano), row.start.Format(time.RFC3339Nano))
				}
				if !isBroken {
					if err != io.EOF {
						t.Errorf("ended with %v, want io.EOF", err)
					}
					return
				}
				var e *Error
				if !errors.As(err, &e) || !errors.Is(err, broken.cause) || e.Packet != int64(broken.packets) || e.Offset != broken.offset || e.Err.Error() != broken.msg {
					t.Errorf("ended with %v, want packet %d at byte offset %d: %s", err, broken.packets, broken.offset, broken.msg)
				}
				if read, total := r.Progress(); total <= 0 || read > total {
					t.Errorf("Progress() = %d, %d", read, total)
				}
			})
		}
	}
	if startsChecked < 40 {
		t.Errorf("only %d start times parsed from MANIFEST.md; has its format changed?", startsChecked)
	}
}

// A few first-packet times spelled out, in case the manifest parsing above
// goes wrong quietly.
func TestSharedFirstTimestamps(t *testing.T) {
	dir := sharedPcaps(t)
	tests := []struct {
		file string
		want time.Time
	}{
		{"test-cc-capture-1.pcap", time.Date(2024, 2, 8, 15, 16, 39, 842117000, time.UTC)},
		{"synscan.pcapng", time.Date(2010, 7, 4, 20, 24, 16, 274870000, time.UTC)},
		{"le_test005.pcapng", time.Date(2012, 6, 29, 7, 28, 25, 298858000, time.UTC)},
		// nanosecond pcap whose fraction field is out of range (1882137472 ns); it is added as is.
		{"fuzz-2021-10-13.pcap", time.Date(2001, 1, 28, 5, 13, 23, 882137472, time.UTC)},
	}
	for _, tc := range tests {
		r, err := Open(filepath.Join(dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		var p Packet
		if err := r.Next(&p); err != nil {
			t.Errorf("%s: %v", tc.file, err)
		} else if got := time.Unix(0, p.Timestamp).UTC(); !got.Equal(tc.want) {
			t.Errorf("%s starts at %s, want %s", tc.file, got.Format(time.RFC3339Nano), tc.want.Format(time.RFC3339Nano))
		}
		r.Close()
	}
}

// The whole folder as one Source: every packet counted, the two broken
// captures and MANIFEST.md reported, files in first-packet order.
func TestSharedSource(t *testing.T) {
	dir := sharedPcaps(t)
	manifest := readManifest(t, dir)
	s, err := OpenSource([]string{dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	counts := map[string]int{}
	var failed []string
	var order []string
	firsts := map[string]int64{}
	var p Packet
	for {
		err := s.Next(&p)
		if err == io.EOF {
			break
		}
		name := filepath.Base(s.File())
		if len(order) == 0 || order[len(order)-1] != name {
			order = append(order, name)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || filepath.Base(e.File) != name {
				t.Errorf("error %v is not an *Error for %s", err, name)
			}
			failed = append(failed, name)
			continue
		}
		if p.Index == 0 {
			firsts[name] = p.Timestamp
		}
		counts[name]++
	}
	sort.Strings(failed)
	if want := []string{"MANIFEST.md", "fuzz-2021-10-13.pcap", "le_test901.pcapng"}; strings.Join(failed, ",") != strings.Join(want, ",") {
		t.Errorf("errors from %v, want %v", failed, want)
	}
	for name, row := range manifest {
		want := row.packets
		if b, ok := sharedBroken[name]; ok {
			want = b.packets
		}
		if counts[name] != want {
			t.Errorf("%s: %d packets through Source, want %d", name, counts[name], want)
		}
	}
	last := int64(-1 << 63)
	for _, name := range order {
		first, ok := firsts[name]
		if !ok {
			continue
		}
		if first < last {
			t.Errorf("%s (first packet %d) read after a file starting at %d", name, first, last)
		}
		last = first
	}
	if read, total := s.Progress(); read != total || total <= 0 {
		t.Errorf("Progress() at the end = %d, %d", read, total)
	}
}
