package flow

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestAppendTimeMatchesRFC3339Nano(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC),
		time.Date(2024, 2, 8, 15, 16, 39, 842117000, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2010, 7, 4, 20, 24, 16, 100, time.FixedZone("x", 3600)),
		time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC),
	} {
		got := string(appendTime(nil, tm))
		want := `"` + tm.UTC().Format(time.RFC3339Nano) + `"`
		if got != want {
			t.Errorf("appendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

// A record survives the JSON round trip, and what AppendJSON writes is
// valid JSON that encoding/json reads.
func TestRecordJSONRoundTrip(t *testing.T) {
	r := sampleRecord()
	r.App.DNSQuery = "weird\"name\\with\x01ctl.example"
	r.App.DNSQueries = 3
	r.App.DNSNames = []string{"a.example", "b.example\xff"}
	r.Encap = &Encap{VLANs: []uint16{10, 20}, Tunnel: "vxlan", VNI: 42}
	b := r.AppendJSON(nil)
	if !json.Valid(b) {
		t.Fatalf("invalid JSON: %s", b)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	want := *r
	want.App = &App{DNSRcode: -1, TLSSNI: "testing.com", DNSQuery: r.App.DNSQuery, DNSQueries: 3,
		DNSNames: []string{"a.example", "b.example\ufffd"}}
	if !reflect.DeepEqual(back.App, want.App) {
		t.Errorf("app: got %+v want %+v", back.App, want.App)
	}
	back.App, want.App = nil, nil
	if back.Encap.OuterSrc.IsValid() {
		t.Errorf("outer src should be absent")
	}
	if !reflect.DeepEqual(back, want) {
		t.Errorf("round trip:\n got  %+v\n want %+v", back, want)
	}
}

// appendSeconds writes what strconv.AppendFloat writes for the duration in
// seconds, on either side of its integer shortcut.
func TestAppendSecondsMatchesAppendFloat(t *testing.T) {
	ds := []time.Duration{0, 1, 9, 10, 99, 100, 999_999_999, time.Second, 1500 * time.Millisecond,
		340003 * time.Nanosecond, 59*time.Minute + 1, 24*time.Hour - 1, 1e15 - 1, 1e15, 1e15 + 1,
		1<<53 - 1, 1 << 62, -1, -time.Second}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		ds = append(ds, time.Duration(rng.Int64N(1<<uint(rng.IntN(60)+1))))
	}
	for _, d := range ds {
		got := string(appendSeconds(nil, d))
		want := string(strconv.AppendFloat(nil, d.Seconds(), 'f', -1, 64))
		if got != want {
			t.Fatalf("appendSeconds(%d) = %s, want %s", int64(d), got, want)
		}
	}
}

// appendString escapes exactly what encoding/json needs to read the string
// back, control characters and invalid UTF-8 included.
func TestAppendStringRoundTrip(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "ctl\x00\x1f\x7f", "utf8 é ✓", "bad \xff\xfe", "CMbuSX7inzntvioLv", "1:2oa5ikk9UCdaHgOkTA0gEfIO0L8="} {
		b := appendString(nil, s)
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%q: %s is not a JSON string: %v", s, b, err)
		}
		var want strings.Builder // each invalid byte becomes U+FFFD
		for i, r := range s {
			if r == utf8.RuneError && !strings.HasPrefix(s[i:], "\ufffd") {
				want.WriteRune(utf8.RuneError)
				continue
			}
			want.WriteRune(r)
		}
		if back != want.String() {
			t.Errorf("%q: read back %q, want %q", s, back, want.String())
		}
	}
}

// appendTime's own calendar agrees with the time package from 1970 to 9999
// and around every boundary it has.
func TestAppendTimeCalendar(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	times := []time.Time{
		time.Unix(0, 0), time.Unix(-1, 999999999), time.Unix(951782400, 0), // 2000-02-29
		time.Date(2100, 2, 28, 23, 59, 59, 1, time.UTC), time.Date(2100, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC), time.Date(1600, 2, 29, 12, 0, 0, 0, time.UTC),
	}
	for range 200_000 {
		times = append(times, time.Unix(rng.Int64N(maxUnix9999), rng.Int64N(1e9)))
	}
	for d := int64(0); d < 3*146097; d++ { // every day of three 400-year eras
		times = append(times, time.Unix(d*86400+d%86400, 0))
	}
	for _, tm := range times {
		got := string(appendTime(nil, tm))
		want := `"` + tm.UTC().Format(time.RFC3339Nano) + `"`
		if got != want {
			t.Fatalf("appendTime(%d.%09d) = %s, want %s", tm.Unix(), tm.Nanosecond(), got, want)
		}
	}
}
