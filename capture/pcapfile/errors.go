package pcapfile

import (
	"errors"
	"fmt"
	"strconv"
)

// Causes wrapped by *Error, besides io.ErrUnexpectedEOF for a file that
// ends in the middle of a record and the error of the underlying reader.
var (
	// ErrNotCapture means the data starts with no known capture-file magic.
	ErrNotCapture = errors.New("not a capture file")
	// ErrMalformed means a length or field breaks the file format.
	ErrMalformed = errors.New("malformed capture file")
	// ErrUnsupported means a valid file uses a version this package does
	// not read.
	ErrUnsupported = errors.New("unsupported capture file version")
	// ErrClosed is returned by Next after Close.
	ErrClosed = errors.New("pcapfile: reader closed")
)

// Error reports a problem in a capture file and where it is.
type Error struct {
	File   string // path as given ("-" for stdin)
	Packet int64  // index of the packet (record) being read, 0-based
	Offset int64  // byte offset in the (decompressed) file where the bad record or block starts
	Err    error  // cause, e.g. io.ErrUnexpectedEOF
}

func (e *Error) Error() string {
	return "pcapfile: " + e.File + ": packet " + strconv.FormatInt(e.Packet, 10) +
		" at byte offset " + strconv.FormatInt(e.Offset, 10) + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// detail says what exactly is wrong while keeping the sentinel it is a
// case of reachable with errors.Is.
type detail struct {
	msg   string
	cause error
}

func (d *detail) Error() string { return d.msg }
func (d *detail) Unwrap() error { return d.cause }

func newDetail(cause error, format string, args ...any) error {
	return &detail{msg: fmt.Sprintf(format, args...), cause: cause}
}
