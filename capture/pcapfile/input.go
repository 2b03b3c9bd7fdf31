package pcapfile

import "io"

const (
	// streamBufStart is small so that the many short streams a Source peeks
	// at (and fuzz inputs) stay cheap; a stream longer than that moves to
	// streamBufSize at its first refill.
	streamBufStart = 64 << 10
	streamBufSize  = 1 << 20
	// maxZeroReads bounds the reads returning (0, nil) that fill tolerates
	// from a misbehaving io.Reader.
	maxZeroReads = 100
)

// input is a window onto the capture file. With src == nil, buf holds the
// whole file (an mmap). Otherwise buf is refilled from src, sliding unread
// bytes to its front, so any slice returned by peek is valid only until the
// next peek or skip.
type input struct {
	buf  []byte
	pos  int   // next unread byte
	end  int   // buf[pos:end] is unread data
	base int64 // file offset of buf[0]
	src  io.Reader
	err  error // first error from src, io.EOF at its end
	pf   int   // mapped input: buf[:pf] has been prefetched
	// mapped input: buf[:touched] has been faulted in, by loads summed
	// into sink
	touched int
	sink    byte
}

// prefetchAhead is how far ahead of the read position a mapped file is
// prefetched into the CPU caches. Each record's position depends on the
// previous record's length, so without it every record header is a
// dependent cache miss (a pointer chase through the file); with it the
// loads overlap and reading becomes bandwidth-bound.
const (
	prefetchAhead = 4096
	prefetchStep  = 1024
	faultAhead    = 256 << 10
	faultStep     = 64 << 10
)

// prefetch keeps the prefetched window ahead of pos (mapped input only).
func (in *input) prefetch() {
	want := in.pos + prefetchAhead
	if want-in.pf < prefetchStep {
		return
	}
	want = min(want, in.end)
	if in.pf < in.pos {
		in.pf = in.pos
	}
	if n := want - in.pf; n > 0 {
		// Touch the mapping once per 64 KiB (what the kernel maps around
		// a page fault) well ahead of the prefetches. A prefetch into a
		// page not mapped yet is dropped after a page walk; without this,
		// the lines of each new window are walked and dropped, and then
		// read with demand misses after the fault.
		for lim := min(want+faultAhead, in.end); in.touched < lim; in.touched += faultStep {
			in.sink += in.buf[in.touched]
		}
		prefetchRange(&in.buf[in.pf], n)
		in.pf = want
	}
}

func (in *input) offset() int64 { return in.base + int64(in.pos) }

// peek returns the next n bytes without consuming them. When fewer remain
// it returns those and why: io.EOF at the end of the data, or the error of
// the underlying reader.
func (in *input) peek(n int) ([]byte, error) {
	if n <= in.end-in.pos {
		return in.buf[in.pos : in.pos+n : in.pos+n], nil
	}
	return in.fill(n)
}

// consume advances past n bytes that the last peek returned.
func (in *input) consume(n int) { in.pos += n }

func (in *input) fill(n int) ([]byte, error) {
	zero := 0
	for in.end-in.pos < n && in.src != nil && in.err == nil {
		if in.end == len(in.buf) || in.pos+n > len(in.buf) {
			in.makeRoom()
		}
		m, err := in.src.Read(in.buf[in.end:])
		in.end += m
		switch {
		case err != nil:
			in.err = err
		case m == 0:
			if zero++; zero >= maxZeroReads {
				in.err = io.ErrNoProgress
			}
		}
	}
	if n <= in.end-in.pos {
		return in.buf[in.pos : in.pos+n : in.pos+n], nil
	}
	err := in.err
	if err == nil {
		err = io.EOF
	}
	return in.buf[in.pos:in.end:in.end], err
}

// makeRoom slides the unread bytes to the front of buf. It grows buf to
// streamBufSize the first time, and doubles it when unread data fills it:
// growth follows data actually read, never a length claimed by the file.
func (in *input) makeRoom() {
	unread := in.end - in.pos
	size := max(len(in.buf), streamBufSize)
	if unread == size {
		size *= 2
	}
	if size != len(in.buf) {
		buf := make([]byte, size)
		copy(buf, in.buf[in.pos:in.end])
		in.buf = buf
	} else {
		copy(in.buf, in.buf[in.pos:in.end])
	}
	in.base += int64(in.pos)
	in.pos, in.end = 0, unread
}

// skip consumes n bytes without keeping them, so that blocks we do not
// parse are never buffered whole. It returns how many it skipped and, if
// that is fewer than n, why.
func (in *input) skip(n int64) (int64, error) {
	avail := int64(in.end - in.pos)
	if n <= avail {
		in.pos += int(n)
		return n, nil
	}
	in.pos = in.end
	if in.src == nil {
		return avail, io.EOF
	}
	done := avail
	in.base += int64(in.end)
	in.pos, in.end = 0, 0
	zero := 0
	for done < n && in.err == nil {
		m, err := in.src.Read(in.buf)
		if rest := n - done; int64(m) > rest {
			in.pos, in.end = int(rest), m
			done = n
		} else {
			in.base += int64(m)
			done += int64(m)
		}
		switch {
		case err != nil:
			in.err = err
		case m == 0:
			if zero++; zero >= maxZeroReads {
				in.err = io.ErrNoProgress
			}
		}
	}
	if done < n {
		return done, in.err
	}
	return n, nil
}
