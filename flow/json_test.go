package flow

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"sync"
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

// appendTimeRaw writes the same whether or not the day it last formatted
// (in lastDay) is the current one: times on the same day and on others, in
// and out of its fast range, in any order.
func TestAppendTimeDayCache(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	prev := time.Unix(1767603600, 0)
	for i := range 300_000 {
		var tm time.Time
		switch rng.IntN(6) {
		case 0: // another day
			tm = time.Unix(rng.Int64N(maxUnix9999), rng.Int64N(1e9))
		case 1: // out of the fast range
			tm = time.Unix(-rng.Int64N(1e11), rng.Int64N(1e9))
		case 2: // across midnight
			tm = prev.Add(time.Duration(rng.Int64N(2*86400e9) - 86400e9))
		default: // within a few seconds
			tm = prev.Add(time.Duration(rng.Int64N(10e9)))
		}
		if i%7 == 0 {
			tm = tm.In(time.FixedZone("x", 3600))
		}
		if i%5 == 0 {
			lastDay.Store(0)
		}
		got := string(appendTimeRaw(nil, tm))
		if want := tm.UTC().Format(time.RFC3339Nano); got != want {
			t.Fatalf("after %v: appendTimeRaw(%v) = %s, want %s", prev, tm, got, want)
		}
		prev = tm
	}
}

// Concurrent use of the day cache gives every goroutine its own day right.
func TestAppendTimeDayCacheConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 17))
			for range 20_000 {
				tm := time.Unix(rng.Int64N(maxUnix9999), 0)
				got := string(appendTimeRaw(nil, tm))
				if want := tm.UTC().Format(time.RFC3339Nano); got != want {
					t.Errorf("appendTimeRaw(%v) = %s, want %s", tm, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestAppendUintMatchesStrconv(t *testing.T) {
	vs := []uint64{0, 9, 10, 99, 100, 101, 999, 1000, 9999, 10000, 1<<64 - 1, 1e19 - 1, 1e19, 1<<63 - 1}
	for p := uint64(1); p <= 1e19 && p != 0; p *= 10 {
		vs = append(vs, p-1, p, p+1)
		if p == 1e19 {
			break
		}
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for range 200_000 {
		vs = append(vs, rng.Uint64()>>uint(rng.IntN(64)))
	}
	for _, v := range vs {
		for _, pre := range [][]byte{nil, []byte("x"), make([]byte, 3, 3)} {
			got := string(appendUint(pre, v))
			if want := string(strconv.AppendUint(pre, v, 10)); got != want {
				t.Fatalf("appendUint(%q, %d) = %s, want %s", pre, v, got, want)
			}
		}
	}
}

func TestAppendAddrMatchesAppendTo(t *testing.T) {
	addrs := []netip.Addr{{}, netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("255.255.255.255"),
		netip.MustParseAddr("::ffff:1.2.3.4"), netip.MustParseAddr("fe80::1%eth0"), netip.MustParseAddr("::")}
	for i := range 256 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{byte(i), 0, byte(i), 9}))
	}
	rng := rand.New(rand.NewPCG(13, 14))
	for range 100_000 {
		addrs = append(addrs, netip.AddrFrom4([4]byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32())}))
	}
	for _, a := range addrs {
		if got, want := string(appendAddr([]byte("x"), a)), string(a.AppendTo([]byte("x"))); got != want {
			t.Fatalf("appendAddr(%v) = %s, want %s", a, got, want)
		}
	}
}

func TestAppendFrac(t *testing.T) {
	var ns []int
	for p := 1; p < 1e9; p *= 10 {
		for _, k := range []int{1, 2, 9, 10, 11, 99, 12345} {
			if v := k * p; v < 1e9 {
				ns = append(ns, v, v+1, v-1+boolInt(v == 1))
			}
		}
	}
	ns = append(ns, 999_999_999, 100_000_001, 100_010_000, 10_000, 100_000, 123_450_000)
	rng := rand.New(rand.NewPCG(17, 18))
	for range 200_000 {
		v := 1 + rng.IntN(1e9-1)
		for range rng.IntN(9) {
			if v/10*10 == v || rng.IntN(2) == 0 {
				v = v / 10 * 10
			}
		}
		if v == 0 {
			v = 1
		}
		ns = append(ns, v)
	}
	for _, v := range ns {
		var d [9]byte
		n := appendFrac(&d, v)
		if want := strings.TrimRight(strconv.Itoa(1e9 + v)[1:], "0"); string(d[:n]) != want {
			t.Fatalf("appendFrac(%d) = %s, want %s", v, d[:n], want)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
