package live

import (
	"strings"
	"testing"
	"time"
)

func TestParseFilter(t *testing.T) {
	// tcpdump -ddd -i eth0 'tcp port 80' (abridged to a valid program).
	good := "4\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n"
	f, err := ParseFilter(good)
	if err != nil {
		t.Fatal(err)
	}
	want := Filter{{0x28, 0, 0, 12}, {0x15, 0, 1, 2048}, {0x06, 0, 0, 262144}, {0x06, 0, 0, 0}}
	if len(f) != len(want) {
		t.Fatalf("got %v, want %v", f, want)
	}
	for i := range want {
		if f[i] != want[i] {
			t.Fatalf("instruction %d: got %v, want %v", i, f[i], want[i])
		}
	}
	if back, err := ParseFilter(f.String()); err != nil || back.String() != f.String() {
		t.Errorf("String does not read back: %q, %v", f.String(), err)
	}
	// The comma-separated form of iptables' bpf match reads too.
	if _, err := ParseFilter("2,6 0 0 96,6 0 0 0"); err != nil {
		t.Errorf("comma-separated: %v", err)
	}

	for _, tc := range []struct{ text, err string }{
		{"", "empty"},
		{"x\n6 0 0 0", "instruction count"},
		{"0\n", "instruction count"},
		{"2\n6 0 0 0\n", "says 2 instructions, has 1"},
		{"1\n6 0 0\n", "want 4 numbers"},
		{"1\n6 0 0 4294967296\n", "32-bit"},
		{"1\n6 0 256 0\n", "8-bit"},
		{"2\n21 0 5 1\n6 0 0 0\n", "jumps past the end"},
		{"2\n5 0 0 7\n6 0 0 0\n", "jumps past the end"},
		{"1\n40 0 0 12\n", "does not end with a return"},
	} {
		_, err := ParseFilter(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ParseFilter(%q) = %v, want an error containing %q", tc.text, err, tc.err)
		}
	}
}

func TestFilterSnaplen(t *testing.T) {
	var none Filter
	if got := none.withSnaplen(96); len(got) != 1 || got[0] != (Instruction{Op: bpfRetK, K: 96}) {
		t.Errorf("no filter: got %v, want a single ret #96", got)
	}
	f := Filter{{0x15, 0, 1, 2048}, {bpfRetK, 0, 0, 262144}, {bpfRetK, 0, 0, 0}, {bpfRetK, 0, 0, 64}}
	got := f.withSnaplen(128)
	if got[1].K != 128 || got[2].K != 0 || got[3].K != 64 || got[0].K != 2048 {
		t.Errorf("clamped to 128: %v", got)
	}
	if f[1].K != 262144 {
		t.Error("withSnaplen changed its receiver")
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{Interface: "eth1"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Workers != 1 || c.RingSize != DefaultRingSize || c.Snaplen != DefaultSnaplen || c.BlockTimeout != DefaultBlockTimeout {
		t.Errorf("defaults: %+v", c)
	}
	for _, tc := range []struct {
		c   Config
		err string
	}{
		{Config{}, "not an interface name"},
		{Config{Interface: "a-very-long-interface"}, "not an interface name"},
		{Config{Interface: "eth1", Workers: 300}, "workers must be between 1 and 256, got 300"},
		{Config{Interface: "eth1", RingSize: 1000}, "ring size must be at least 1 MiB"},
		{Config{Interface: "eth1", Snaplen: 10}, "snaplen must be between 64"},
		{Config{Interface: "eth1", BlockTimeout: time.Hour}, "block timeout"},
	} {
		if _, err := tc.c.withDefaults(); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v: got %v, want an error containing %q", tc.c, err, tc.err)
		}
	}
}
