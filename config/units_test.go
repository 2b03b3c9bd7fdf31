package config

import (
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want ByteSize
		err  string
	}{
		{"0", 0, ""},
		{"1048576", 1 << 20, ""},
		{"1_000", 1000, ""},
		{"100MB", 100e6, ""},
		{"100 MB", 100e6, ""},
		{"20MiB", 20 << 20, ""},
		{"20mib", 20 << 20, ""},
		{"1.5GiB", 3 << 29, ""},
		{"2kB", 2000, ""},
		{"2KB", 2000, ""},
		{"2KiB", 2048, ""},
		{"3TB", 3e12, ""},
		{"512B", 512, ""},
		{"16EiB", 0, `want a byte size such as 100MB, 20MiB or 1048576, got "16EiB"`},
		{"20000000TiB", 0, `"20000000TiB" is too large`},
		{"0.5B", 0, `"0.5B" is not a whole number of bytes`},
		{"-1", 0, `want a byte size such as 100MB, 20MiB or 1048576, got "-1"`},
		{"MB", 0, `want a byte size such as 100MB, 20MiB or 1048576, got "MB"`},
		{"1.2.3MB", 0, `want a byte size such as 100MB, 20MiB or 1048576, got "1.2.3MB"`},
		{"", 0, `want a byte size such as 100MB, 20MiB or 1048576, got ""`},
	}
	for _, tt := range tests {
		got, err := ParseByteSize(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseByteSize(%q) = %d, %v; want error %s", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	tests := []struct {
		in   ByteSize
		want string
	}{
		{0, "0"}, {1, "1"}, {1023, "1023"}, {1024, "1KiB"}, {1000, "1kB"}, {100 << 20, "100MiB"},
		{100e6, "100MB"}, {1536, "1536"}, {3 << 29, "1536MiB"}, {1 << 40, "1TiB"}, {5e12, "5TB"},
	}
	for _, tt := range tests {
		s := tt.in.String()
		if s != tt.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", uint64(tt.in), s, tt.want)
		}
		if back, err := ParseByteSize(s); err != nil || back != tt.in {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", s, back, err, uint64(tt.in))
		}
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{0, "0s"}, {5 * time.Millisecond, "5ms"}, {30 * time.Second, "30s"}, {5 * time.Minute, "5m"},
		{time.Hour, "1h"}, {90 * time.Minute, "1h30m"}, {time.Hour + time.Second, "1h0m1s"},
		{1500 * time.Second, "25m"}, {24 * time.Hour, "24h"}, {-time.Minute, "-1m"}, {1500 * time.Millisecond, "1.5s"},
	}
	for _, tt := range tests {
		s := formatDuration(tt.in)
		if s != tt.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tt.in, s, tt.want)
		}
		if back, err := time.ParseDuration(s); err != nil || back != tt.in {
			t.Errorf("ParseDuration(%q) = %v, %v", s, back, err)
		}
	}
}
