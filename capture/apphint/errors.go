package apphint

import (
	"errors"
	"strconv"
)

// Sentinel errors that every parse error wraps, so callers can count failures
// by kind with errors.Is.
var (
	// ErrTruncated means the input ended before a length or field it
	// announced; more bytes might have made it valid.
	ErrTruncated = errors.New("truncated")
	// ErrMalformed means the input contradicts the protocol no matter what
	// follows (a bad label type, a forward compression pointer, a name
	// longer than 255 octets, ...).
	ErrMalformed = errors.New("malformed")
)

// ParseError describes why and where parsing failed.
type ParseError struct {
	Kind   error  // ErrTruncated or ErrMalformed
	Proto  string // "dns"
	Field  string // what was being parsed, e.g. "question name"
	Reason string // what was wrong with it
	Offset int    // byte offset in the input where the problem was found
}

// Error formats the error; the message is built only when asked for, so that
// failing a parse stays allocation-free.
func (e *ParseError) Error() string {
	return "apphint: " + e.Proto + " " + e.Field + ": " + e.Reason + " at offset " + strconv.Itoa(e.Offset) + ": " + e.Kind.Error()
}

// Unwrap returns the sentinel (ErrTruncated or ErrMalformed).
func (e *ParseError) Unwrap() error { return e.Kind }
