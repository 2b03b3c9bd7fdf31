package pcapfile

import (
	"cmp"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// Source reads several capture files one after another as one stream of
// packets. Packet.Index counts within each file.
type Source struct {
	files []sourceFile
	next  int // index into files of the next file to open
	cur   *Reader
	file  string
	done  int64 // bytes of the files already finished
	total int64
}

type sourceFile struct {
	path string
	size int64 // -1 if unknown
}

// OpenSource prepares to read paths in order. A path is a capture file,
// "-" for stdin (at most once), or a directory, which stands for its
// regular files (not recursively) ordered by the timestamp of their first
// packet, then by name; files in which no packet can be read come first.
//
// OpenSource fails only if a path does not exist or a directory cannot be
// listed. Files are opened one at a time by Next, so a file that is not a
// capture, or is damaged, is reported by Next and skipped.
func OpenSource(paths []string) (*Source, error) {
	if len(paths) == 0 {
		return nil, errors.New("pcapfile: no capture files given")
	}
	s := &Source{}
	stdin := false
	for _, p := range paths {
		if p == "-" {
			if stdin {
				return nil, errors.New(`pcapfile: stdin ("-") given twice`)
			}
			stdin = true
			s.files = append(s.files, sourceFile{path: p, size: -1})
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			s.files = append(s.files, sourceFile{path: p, size: sizeOf(fi)})
			continue
		}
		files, err := scanDir(p)
		if err != nil {
			return nil, err
		}
		s.files = append(s.files, files...)
	}
	for _, f := range s.files {
		if f.size < 0 {
			s.total = -1
			break
		}
		s.total += f.size
	}
	return s, nil
}

func sizeOf(fi os.FileInfo) int64 {
	if fi.Mode().IsRegular() {
		return fi.Size()
	}
	return -1
}

// scanDir lists dir's regular files in the order of their first packets.
func scanDir(dir string) ([]sourceFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type candidate struct {
		sourceFile
		first int64
		ok    bool // first is set
	}
	var cands []candidate
	for _, e := range ents {
		path := filepath.Join(dir, e.Name())
		c := candidate{sourceFile: sourceFile{path: path, size: -1}}
		fi, err := os.Stat(path) // follows symlinks
		switch {
		case err != nil:
			// keep it: Next reports why it cannot be read
		case !fi.Mode().IsRegular():
			continue
		default:
			c.size = fi.Size()
			c.first, c.ok = firstTimestamp(path)
		}
		cands = append(cands, c)
	}
	slices.SortStableFunc(cands, func(a, b candidate) int {
		if a.ok != b.ok {
			if a.ok {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.first, b.first), cmp.Compare(a.path, b.path))
	})
	files := make([]sourceFile, len(cands))
	for i, c := range cands {
		files[i] = c.sourceFile
	}
	return files, nil
}

func firstTimestamp(path string) (int64, bool) {
	r, err := Open(path)
	if err != nil {
		return 0, false
	}
	defer r.Close()
	var p Packet
	if r.Next(&p) != nil {
		return 0, false
	}
	return p.Timestamp, true
}

// Next reads the next packet into p. It returns io.EOF when every file is
// done. When a file cannot be opened or fails part-way, Next returns its
// *Error once and the following call continues with the next file, so the
// caller can record the error and keep what it has read.
func (s *Source) Next(p *Packet) error {
	for {
		if s.cur == nil {
			if err := s.open(); err != nil {
				return err
			}
		}
		err := s.cur.Next(p)
		if err == nil {
			return nil
		}
		s.finish()
		if err != io.EOF {
			return err
		}
	}
}

// NextBatch is Next for up to len(ps) packets, with the lifetime of
// Reader.NextBatch: every packet returned stays valid until the next call.
// A batch never spans two files. It returns 0 and io.EOF when every file
// is done, and 0 and a file's *Error once, as Next does.
func (s *Source) NextBatch(ps []Packet) (int, error) {
	for {
		if s.cur == nil {
			if err := s.open(); err != nil {
				return 0, err
			}
		}
		n, err := s.cur.NextBatch(ps)
		if n > 0 {
			return n, nil
		}
		s.finish()
		if err != io.EOF {
			return 0, err
		}
	}
}

// open opens the next file: io.EOF when there is none, its *Error when it
// cannot be read.
func (s *Source) open() error {
	if s.next >= len(s.files) {
		return io.EOF
	}
	f := s.files[s.next]
	s.next++
	s.file = f.path
	r, err := Open(f.path)
	if err != nil {
		s.done += max(f.size, 0)
		var perr *Error
		if !errors.As(err, &perr) {
			err = &Error{File: f.path, Err: err}
		}
		return err
	}
	s.cur = r
	return nil
}

func (s *Source) finish() {
	f := s.files[s.next-1]
	if f.size >= 0 {
		s.done += f.size
	} else {
		s.done += s.cur.rawRead()
	}
	s.cur.Close()
	s.cur = nil
}

// Close closes the file being read; Next then returns io.EOF.
func (s *Source) Close() error {
	s.next = len(s.files)
	if s.cur == nil {
		return nil
	}
	err := s.cur.Close()
	s.cur = nil
	return err
}

// Progress returns the bytes of all files read so far and their total
// size, -1 if unknown (stdin among them). For gzip files both count
// compressed bytes.
func (s *Source) Progress() (read, total int64) {
	read = s.done
	if s.cur != nil {
		read += s.cur.rawRead()
	}
	return read, s.total
}

// File returns the path of the file being read: the one the last packet or
// error returned by Next came from.
func (s *Source) File() string { return s.file }
