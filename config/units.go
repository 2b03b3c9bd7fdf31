package config

import (
	"errors"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
	"time"
)

// ByteSize is a number of bytes. In the file it is a plain integer or a
// number with a unit: B, kB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB,
// TiB (powers of 1024), case-insensitive, optionally with a space and a
// fraction ("1.5GiB") as long as the result is a whole number of bytes.
type ByteSize uint64

var byteUnits = []struct {
	name string
	mult uint64
}{
	{"tib", 1 << 40}, {"tb", 1e12},
	{"gib", 1 << 30}, {"gb", 1e9},
	{"mib", 1 << 20}, {"mb", 1e6},
	{"kib", 1 << 10}, {"kb", 1e3},
	{"b", 1},
}

// ParseByteSize parses a size such as "100MB", "20MiB" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	in := strings.TrimSpace(s)
	lower := strings.ToLower(in)
	mult := uint64(1)
	num := lower
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(lower, u.name); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	num = strings.ReplaceAll(num, "_", "")
	if num == "" || strings.Trim(num, "0123456789.") != "" || strings.Count(num, ".") > 1 || num == "." {
		return 0, fmt.Errorf("want a byte size such as 100MB, 20MiB or 1048576, got %q", s)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("want a byte size such as 100MB, 20MiB or 1048576, got %q", s)
	}
	r.Mul(r, new(big.Rat).SetUint64(mult))
	if !r.IsInt() {
		return 0, fmt.Errorf("%q is not a whole number of bytes", s)
	}
	n := r.Num()
	if !n.IsUint64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return ByteSize(n.Uint64()), nil
}

// String formats the size with the largest unit that divides it exactly, in
// a form ParseByteSize reads back: 104857600 is "100MiB", 100000000 is
// "100MB", 1023 is "1023".
func (b ByteSize) String() string {
	n := uint64(b)
	if n == 0 {
		return "0"
	}
	for _, u := range byteUnits {
		if u.mult > 1 && n%u.mult == 0 {
			return strconv.FormatUint(n/u.mult, 10) + unitName(u.name)
		}
	}
	return strconv.FormatUint(n, 10)
}

func unitName(lower string) string {
	switch lower {
	case "kb":
		return "kB"
	case "kib":
		return "KiB"
	}
	if strings.HasSuffix(lower, "ib") {
		return strings.ToUpper(lower[:1]) + "iB"
	}
	return strings.ToUpper(lower)
}

// formatDuration writes d the way people write it in a file: "5m", "1h30m",
// "1500ms", not time.Duration.String's "5m0s". time.ParseDuration reads it
// back.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// parseDuration reads a Go duration ("30s", "10m", "1h30m"); a bare 0 is
// accepted, other bare numbers are not (no unit to guess).
func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("want a duration such as 30s, 10m or 1h30m, got %q", s)
	}
	return d, nil
}

// Redacted is what String prints in place of a secret.
const Redacted = "<redacted>"

// Secret is a string that is never printed: String, GoString and
// MarshalJSON give Redacted (or "" when unset). Convert with string(s) to
// use it.
type Secret string

// String returns Redacted for a set secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the secret.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// MarshalJSON keeps encoding/json from printing the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(strconv.Quote(s.String())), nil }

// readSecret returns inline, or the contents of file (without trailing
// newlines) when file is set.
func readSecret(inline Secret, file string) (string, error) {
	if file == "" {
		return string(inline), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", readError(file, err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", file)
	}
	return s, nil
}

// readError describes a file that could not be read without repeating the
// operation os adds ("open x: ...").
func readError(name string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("cannot read %s: %v", name, err)
}
