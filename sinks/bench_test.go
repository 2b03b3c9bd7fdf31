package sinks

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/flowhound/flowhound/internal/testservers"
)

// BenchmarkKafkaFlows publishes flow records (about 600 bytes of JSON each)
// to a local broker from one process, lz4-compressed, with acks from every
// in-sync replica; it reports records/s including the final flush.
//
//	go test -run '^$' -bench KafkaFlows -benchtime 1000000x ./sinks/
func BenchmarkKafkaFlows(b *testing.B) {
	const topic = "flowhound.flows.v1"
	br := testservers.StartKafka(b, 1, "-partitions", "6", "-topics", topic)
	k := newTestKafka(b, KafkaConfig{Brokers: br.Addrs(), FindingsTopic: DefaultFindingsTopic, FlowsTopic: topic,
		Compression: "lz4", Delivery: Delivery{Buffer: 200_000}})
	records := makeFlows(4096)
	b.SetBytes(int64(len(NewFlowMessage(records[0]).Value)))
	b.ReportAllocs()
	b.ResetTimer()
	full := 0
	for i := range b.N {
		m := NewFlowMessage(records[i%len(records)])
		for errors.Is(k.Send(context.Background(), m), ErrBufferFull) {
			full++ // a benchmark wants every record: wait for room
			time.Sleep(50 * time.Microsecond)
		}
	}
	flush(b, k, 5*time.Minute)
	b.StopTimer()
	s := k.Stats()
	if s.Sent != uint64(b.N) {
		b.Fatalf("stats %+v", s)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(full)/float64(b.N), "full/op")
}

// BenchmarkInfluxPoints writes finding points to InfluxDB 1.8 and reports
// points/s including the final flush.
func BenchmarkInfluxPoints(b *testing.B) {
	server := sharedInflux.URL(b)
	db := testservers.NewDatabase(b, server)
	s := newTestInflux(b, InfluxConfig{URL: server, Bucket: db, Delivery: Delivery{Buffer: 100_000}})
	findings := makeFindings(10_000)
	msgs := findingMessages(b, findings)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m := msgs[i%len(msgs)]
		if i >= len(msgs) { // a new finding each time, not an overwrite
			f := *findings[i%len(findings)]
			f.Time = f.Time.Add(time.Duration(i/len(msgs)) * time.Hour * 24 * 365)
			m, _ = NewFindingMessage(&f)
		}
		for errors.Is(s.Send(context.Background(), m), ErrBufferFull) {
			time.Sleep(50 * time.Microsecond)
		}
	}
	flush(b, s, 5*time.Minute)
	b.StopTimer()
	if st := s.Stats(); st.Sent != uint64(b.N) {
		b.Fatalf("stats %+v", st)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "points/s")
}
