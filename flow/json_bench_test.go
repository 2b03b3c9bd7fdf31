package flow

import (
	"net/netip"
	"testing"
	"time"
)

func sampleRecord() *Record {
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 123456789, time.UTC)
	return &Record{
		Start: t0, End: t0.Add(1500 * time.Millisecond), UID: "CSoUM47CGpdDBb1WF", CommunityID: "1:b7ZGH1GLUHP4xztx9uBJW5FBrJ0=",
		OrigAddr: netip.MustParseAddr("10.1.2.3"), OrigPort: 51234, RespAddr: netip.MustParseAddr("141.193.213.21"), RespPort: 443,
		Proto: ProtoTCP, Service: "tls", OrigBytes: 841, RespBytes: 3903, OrigPkts: 14, RespPkts: 11,
		OrigIPBytes: 1577, RespIPBytes: 4483, OrigFrameBytes: 1773, RespFrameBytes: 4637,
		ConnState: "SF", History: "ShADadFf", LocalOrig: true, Final: true,
		App: &App{DNSRcode: -1, TLSSNI: "testing.com"},
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	r := sampleRecord()
	var buf []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = r.AppendJSON(buf[:0])
	}
}
