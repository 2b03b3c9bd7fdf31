package pcapfile

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"os"
	"runtime/debug"
)

// MaxSnaplen is the largest captured length accepted for one packet
// (Wireshark's limit for ordinary link types). A longer record is an
// *Error wrapping ErrMalformed.
const MaxSnaplen = 256 << 10

// Packet is one captured frame.
type Packet struct {
	// Data aliases the reader's memory (an mmap of the file, or its
	// internal buffer) and is valid only until the next call to Next or
	// Close.
	Data      []byte
	Timestamp int64    // nanoseconds since the Unix epoch
	WireLen   int      // original length on the wire (>= len(Data) normally)
	LinkType  LinkType // how to decode Data
	Interface int      // pcapng interface id; 0 for pcap
	Index     int64    // 0-based index of the packet within its file
}

// set fills p field by field. Assigning a composite literal instead builds
// it on the stack and copies it with wide loads that cannot be served from
// the narrower stores just made: a store-forwarding stall on every packet
// (~2 % of a pass over a large capture).
func (p *Packet) set(data []byte, ts int64, wire int, link LinkType, iface int, index int64) {
	p.Data = data
	p.Timestamp = ts
	p.WireLen = wire
	p.LinkType = link
	p.Interface = iface
	p.Index = index
}

// Reader reads the packets of one capture file in order.
type Reader struct {
	name  string
	in    input
	ng    bool // pcapng, else pcap
	be    bool // big-endian file (pcapng: current section)
	index int64
	err   error // sticky: io.EOF, *Error or ErrClosed

	// pcap
	recLen  int   // record header length: 16, or 24 for the modified format
	fracMul int64 // ns per unit of the fractional timestamp field
	swap    swapMode
	link    LinkType

	// pcapng
	ifaces []iface // of the current section
	lastTS int64   // for Simple Packet Blocks

	mapped []byte   // the mmap, nil when streaming
	file   *os.File // closed by Close; nil for stdin and NewReader
	gz     *gzip.Reader
	raw    *countingReader // compressed bytes read, for a Source's progress
	size   int64           // file size, -1 if unknown
}

// Open opens a capture file (pcap or pcapng, optionally gzip-compressed),
// or stdin for "-". A regular uncompressed file is memory-mapped; anything
// else is streamed. Format problems are reported as *Error, and failures
// to open the file as the *os.PathError from os.
func Open(path string) (*Reader, error) {
	if path == "-" {
		return NewReader(os.Stdin, "-")
	}
	return openFile(path, true)
}

func openFile(path string, useMmap bool) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if fi.IsDir() {
		f.Close()
		return nil, &Error{File: path, Err: newDetail(ErrNotCapture, "is a directory")}
	}
	size := int64(-1)
	if fi.Mode().IsRegular() {
		size = fi.Size()
	}
	if useMmap && size > 0 && size <= math.MaxInt && !isGzip(f) {
		if data, err := mmapFile(f, size); err == nil {
			f.Close() // the mapping outlives the descriptor
			r := &Reader{name: path, size: size, mapped: data}
			r.in = input{buf: data, end: len(data)}
			if err := r.start(); err != nil {
				munmap(data)
				return nil, err
			}
			return r, nil
		}
	}
	r := newStream(f, path)
	r.file = f
	if err := r.start(); err != nil {
		f.Close()
		return nil, err
	}
	if r.gz == nil {
		r.size = size
	}
	return r, nil
}

func isGzip(f *os.File) bool {
	var m [2]byte
	n, _ := f.ReadAt(m[:], 0)
	return n == 2 && m[0] == 0x1f && m[1] == 0x8b
}

// NewReader reads a capture from a stream, through one internal buffer
// (no mmap). name is used in errors only. Close does not close src.
func NewReader(src io.Reader, name string) (*Reader, error) {
	r := newStream(src, name)
	if err := r.start(); err != nil {
		return nil, err
	}
	return r, nil
}

func newStream(src io.Reader, name string) *Reader {
	r := &Reader{name: name, size: -1}
	r.in = input{buf: make([]byte, streamBufStart), src: src}
	return r
}

// start identifies the format and reads the file header.
func (r *Reader) start() error {
	m, err := r.in.peek(4)
	if len(m) >= 2 && m[0] == 0x1f && m[1] == 0x8b {
		if err := r.unwrapGzip(); err != nil {
			return err
		}
		m, err = r.in.peek(4)
	}
	if err != nil {
		if len(m) == 0 && err == io.EOF {
			return r.fail(0, ErrNotCapture, "empty file")
		}
		return r.short(0, err, "file too short for a capture header: %d bytes", len(m))
	}
	if binary.LittleEndian.Uint32(m) == blockSHB {
		r.ng = true
		return r.readSHB()
	}
	return r.readPcapHeader()
}

func (r *Reader) unwrapGzip() error {
	var rest io.Reader = bytes.NewReader(append([]byte(nil), r.in.buf[r.in.pos:r.in.end]...))
	if r.in.src != nil {
		rest = io.MultiReader(rest, r.in.src)
	}
	r.raw = &countingReader{r: rest}
	gz, err := gzip.NewReader(bufio.NewReaderSize(r.raw, 64<<10))
	if err != nil {
		return r.fail(0, err, "%v", err)
	}
	r.gz = gz
	buf := r.in.buf
	if r.in.src == nil {
		buf = make([]byte, streamBufStart) // never write into a mapping
	}
	r.in = input{buf: buf, src: gz}
	return nil
}

// Next reads the next packet into p. It returns io.EOF at the clean end of
// the file and an *Error for anything wrong with it; after either, every
// call returns the same error. On error p is left unchanged.
func (r *Reader) Next(p *Packet) error {
	if r.err != nil {
		return r.err
	}
	if r.mapped != nil {
		return r.nextMapped(p)
	}
	return r.next(p)
}

// NextBatch reads up to len(ps) packets into ps and returns how many it
// read. The Data of every packet it returns stays valid until the next call
// to Next, NextBatch or Close, so a caller can look ahead within a batch. A
// mapped file fills the batch; a stream returns one packet per call (its
// buffer may slide under earlier packets when it refills). It returns n > 0
// with a nil error while packets remain, and 0 with the error Next would
// return after the last one: an error part-way through a batch is reported
// by the following call.
func (r *Reader) NextBatch(ps []Packet) (int, error) {
	if r.err != nil || len(ps) == 0 {
		return 0, r.err
	}
	if r.mapped != nil {
		return r.nextMappedBatch(ps)
	}
	if err := r.next(&ps[0]); err != nil {
		return 0, err
	}
	return 1, nil
}

func (r *Reader) next(p *Packet) error {
	if r.ng {
		return r.nextBlock(p)
	}
	return r.nextRecord(p)
}

// endFaultGuard, deferred right after debug.SetPanicOnFault(true) (whose
// result is old), restores the setting and turns a fault on the mapping
// into an *Error in *err. With packets already returned (*n > 0) the error
// is kept for the next call. It must be the deferred call itself, for
// recover to see the panic.
func (r *Reader) endFaultGuard(old bool, err *error, n *int) {
	debug.SetPanicOnFault(old)
	v := recover()
	if v == nil {
		return
	}
	if _, fault := v.(interface{ Addr() uintptr }); !fault {
		panic(v)
	}
	*err = r.fail(r.in.offset(), io.ErrUnexpectedEOF, "file shrank while mapped")
	if n != nil && *n > 0 {
		*err = nil // reported by the next call
	}
}

// nextMapped turns the SIGBUS of a file truncated under its mapping into an
// *Error rather than a crash of the whole sensor.
func (r *Reader) nextMapped(p *Packet) (err error) {
	defer r.endFaultGuard(debug.SetPanicOnFault(true), &err, nil)
	r.in.prefetch()
	return r.next(p)
}

// nextMappedBatch is nextMapped for a batch: one fault guard for all of it.
func (r *Reader) nextMappedBatch(ps []Packet) (n int, err error) {
	defer r.endFaultGuard(debug.SetPanicOnFault(true), &err, &n)
	for n < len(ps) {
		if !r.ng {
			if n += r.nextRecordsMapped(ps[n:]); n == len(ps) {
				break
			}
		}
		r.in.prefetch()
		if err := r.next(&ps[n]); err != nil {
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		n++
	}
	return n, nil
}

// Close releases the file. Packet.Data from this Reader must not be used
// afterwards.
func (r *Reader) Close() error {
	if r.err == ErrClosed {
		return nil
	}
	r.err = ErrClosed
	var errs []error
	if r.gz != nil {
		errs = append(errs, r.gz.Close())
	}
	if r.mapped != nil {
		errs = append(errs, munmap(r.mapped))
		r.mapped = nil
	}
	r.in.buf, r.in.src = nil, nil // keep the offset for Progress
	if r.file != nil {
		errs = append(errs, r.file.Close())
	}
	return errors.Join(errs...)
}

// Progress returns the bytes consumed so far and the file size. total is
// -1 when unknown (stdin, NewReader, gzip); read then counts decompressed
// bytes.
func (r *Reader) Progress() (read, total int64) {
	if r.gz != nil {
		return r.in.offset(), -1
	}
	return r.in.offset(), r.size
}

// rawRead returns how much of the file itself has been read: compressed
// bytes for gzip.
func (r *Reader) rawRead() int64 {
	if r.raw != nil {
		return r.raw.n
	}
	return r.in.offset()
}

func (r *Reader) end() error {
	r.err = io.EOF
	return io.EOF
}

// fail records and returns an *Error at file offset off.
func (r *Reader) fail(off int64, cause error, format string, args ...any) error {
	r.err = &Error{File: r.name, Packet: r.index, Offset: off, Err: newDetail(cause, format, args...)}
	return r.err
}

// short reports data missing at off; err is what input returned.
func (r *Reader) short(off int64, err error, format string, args ...any) error {
	switch {
	case err == io.EOF:
		return r.fail(off, io.ErrUnexpectedEOF, format, args...)
	case r.gz != nil && errors.Is(err, io.ErrUnexpectedEOF):
		return r.fail(off, err, "truncated gzip stream")
	}
	r.err = &Error{File: r.name, Packet: r.index, Offset: off, Err: err}
	return r.err
}

func (r *Reader) u16(b []byte) uint16 {
	if r.be {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *Reader) u32(b []byte) uint32 {
	if r.be {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

func (r *Reader) u64(b []byte) uint64 {
	if r.be {
		return binary.BigEndian.Uint64(b)
	}
	return binary.LittleEndian.Uint64(b)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
