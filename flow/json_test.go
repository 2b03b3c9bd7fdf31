package flow

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
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
