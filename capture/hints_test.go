package capture

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestInternSharesAndStaysBounded(t *testing.T) {
	var h hintParsers
	a := h.intern([]byte("example.com"))
	b := h.intern([]byte("example.com"))
	if a != "example.com" || unsafe.StringData(a) != unsafe.StringData(b) {
		t.Fatalf("intern: %q and %q do not share their bytes", a, b)
	}
	if s := h.intern(nil); s != "" {
		t.Fatalf("intern(nil) = %q", s)
	}
	long := strings.Repeat("x", maxInternLen+1)
	if s := h.intern([]byte(long)); s != long {
		t.Fatalf("intern of a long string = %q", s)
	}
	if _, ok := h.names[long]; ok {
		t.Fatal("a string longer than maxInternLen was kept")
	}
	for i := range 3 * maxInternNames {
		name := strconv.Itoa(i) + ".example"
		if s := h.intern([]byte(name)); s != name {
			t.Fatalf("intern(%q) = %q", name, s)
		}
		if len(h.names) > maxInternNames {
			t.Fatalf("%d names kept, more than %d", len(h.names), maxInternNames)
		}
	}
}
