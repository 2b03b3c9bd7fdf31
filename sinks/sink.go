// Package sinks delivers flowhound's output — findings, flow records and
// sensor counters — to where analysts and other programs read it: JSON lines
// on standard output or in rotated files, Kafka topics, and InfluxDB.
//
// Every sink has the same shape: Send puts a message into a bounded buffer
// and returns at once; one goroutine per sink takes batches from the buffer
// and delivers them, retrying transient failures with exponential backoff
// and jitter. When a server is slow or away the buffer fills, and messages
// that find it full are dropped and counted rather than slowing the packet
// path. Failures that retrying cannot fix (a message larger than the broker
// accepts, bad credentials) drop the messages concerned at once; they are
// counted and logged once per cause. Stats tells what happened to every
// message.
//
// Shutdown is Flush with a deadline, which waits until everything buffered is
// delivered, then Close.
package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/flow"
)

// Sink delivers messages somewhere. Implementations in this package are safe
// for concurrent use.
type Sink interface {
	// Send queues m for delivery and returns without waiting for I/O. It
	// returns ErrBufferFull when the sink's buffer is full (m is dropped
	// and counted) and ErrClosed after Close. The sink owns m.Value (and
	// m.Finding, m.Counters) from then on: the caller must not modify them.
	Send(ctx context.Context, m Message) error
	// Flush waits until every message sent before it was delivered or
	// dropped, or until ctx is done.
	Flush(ctx context.Context) error
	// Close stops accepting messages, delivers what is buffered within the
	// sink's close timeout, drops and counts the rest, and releases
	// connections. Call Flush first to choose the deadline yourself.
	Close() error
	// Stats returns the sink's counters so far.
	Stats() SinkStats
}

// Topic says what a message carries; each sink decides where a topic goes
// (a Kafka topic, an InfluxDB measurement) or whether it takes it at all.
type Topic uint8

// Topics.
const (
	TopicFinding Topic = iota + 1
	TopicFlow
	TopicCounters
)

var topicNames = [...]string{TopicFinding: "finding", TopicFlow: "flow", TopicCounters: "counters"}

// String returns "finding", "flow" or "counters".
func (t Topic) String() string {
	if int(t) < len(topicNames) && topicNames[t] != "" {
		return topicNames[t]
	}
	return fmt.Sprintf("topic(%d)", uint8(t))
}

// ParseTopic is the inverse of Topic.String.
func ParseTopic(s string) (Topic, error) {
	for t, name := range topicNames {
		if name != "" && name == s {
			return Topic(t), nil
		}
	}
	return 0, fmt.Errorf("unknown topic %q (want finding, flow or counters)", s)
}

// Schema names, sent as the "schema" header of Kafka messages so that
// consumers can tell shapes apart without parsing.
const (
	SchemaFinding  = "flowhound.finding.v1"
	SchemaFlow     = "flowhound.flow.v1"
	SchemaCounters = "flowhound.counters.v1"
)

// Schema returns the schema name of the topic's JSON values.
func (t Topic) Schema() string {
	switch t {
	case TopicFinding:
		return SchemaFinding
	case TopicFlow:
		return SchemaFlow
	case TopicCounters:
		return SchemaCounters
	}
	return ""
}

// Message is one unit of output. Value is a single JSON object without a
// trailing newline. Finding and Counters, when set, are the values Value
// was encoded from; sinks that need structure (InfluxDB) use them instead of
// parsing Value. Build messages with NewFindingMessage, NewFlowMessage and
// NewCountersMessage.
type Message struct {
	Topic Topic
	// Key partitions Kafka topics: the source host for findings, the host
	// pair for flows, the sensor for counters.
	Key   []byte
	Value []byte
	// Time is the event time (Kafka record timestamp, InfluxDB point time).
	Time time.Time

	Finding  *detect.Finding
	Counters *Counters
}

// NewFindingMessage encodes f. The message keeps f: do not modify it after
// Send.
func NewFindingMessage(f *detect.Finding) (Message, error) {
	v, err := f.MarshalJSON()
	if err != nil {
		return Message{}, fmt.Errorf("sinks: encode finding %s: %w", f.UID, err)
	}
	return Message{Topic: TopicFinding, Key: []byte(f.Src.String()), Value: v, Time: f.Time, Finding: f}, nil
}

// NewFlowMessage encodes r with flow.Record.AppendJSON; the key is the host
// pair (HostPairKey), so one Kafka partition, and so one `flowhound detect`
// instance, sees every flow between two hosts.
func NewFlowMessage(r *flow.Record) Message {
	// Key and value share one allocation.
	buf := make([]byte, 0, 1024)
	buf = AppendHostPairKey(buf, r.OrigAddr, r.RespAddr)
	k := len(buf)
	buf = r.AppendJSON(buf)
	return Message{Topic: TopicFlow, Key: buf[:k:k], Value: buf[k:], Time: r.End}
}

// AppendHostPairKey appends the canonical key of the pair {a, b} to dst: the
// lower address, a comma, the higher one. It is the same for both
// directions.
func AppendHostPairKey(dst []byte, a, b netip.Addr) []byte {
	if b.Less(a) {
		a, b = b, a
	}
	dst = a.AppendTo(dst)
	dst = append(dst, ',')
	return b.AppendTo(dst)
}

// Counters are the sensor's own counters, written periodically. The caller
// fills them; every count is cumulative since the sensor started, except
// FlowsActive, which is the current number of open flows.
type Counters struct {
	Time         time.Time `json:"time"`
	Sensor       string    `json:"sensor,omitempty"`
	Packets      uint64    `json:"packets"`
	Bytes        uint64    `json:"bytes"`
	FlowsActive  uint64    `json:"flows_active"`
	DecodeErrors uint64    `json:"decode_errors"`
	// Drops counts packets lost before decoding (kernel ring, capture
	// buffer).
	Drops uint64 `json:"drops"`
	// Findings counts findings emitted by kind.
	Findings map[detect.Kind]uint64 `json:"findings,omitempty"`
}

// NewCountersMessage encodes c. The message keeps c: do not modify it after
// Send.
func NewCountersMessage(c *Counters) (Message, error) {
	v, err := json.Marshal(c)
	if err != nil {
		return Message{}, fmt.Errorf("sinks: encode counters: %w", err)
	}
	return Message{Topic: TopicCounters, Key: []byte(c.Sensor), Value: v, Time: c.Time, Counters: c}, nil
}

// SinkStats counts what happened to the messages given to a sink. Every
// message sent is eventually either Sent or Dropped; until then it is
// Buffered.
type SinkStats struct {
	Name string
	// Sent counts messages the destination acknowledged.
	Sent uint64
	// Retried counts message deliveries attempted again after a transient
	// failure (a message retried three times counts three).
	Retried uint64
	// Dropped counts messages given up on: the buffer was full, the failure
	// was permanent (also counted in Permanent), retries ran out, or Close
	// ran out of time.
	Dropped   uint64
	Permanent uint64
	// Buffered is the number of messages queued, in flight or waiting for
	// a retry now.
	Buffered int
	// Errors counts failed delivery attempts; LastError describes the most
	// recent one.
	Errors        uint64
	LastError     string
	LastErrorTime time.Time
}

// Errors returned by sinks.
var (
	// ErrClosed is returned by Send after Close.
	ErrClosed = errors.New("sink closed")
	// ErrBufferFull is returned by Send when the message was dropped
	// because the sink's buffer is full.
	ErrBufferFull = errors.New("sink buffer full, message dropped")
	// ErrBadConfig is wrapped by every construction error caused by a
	// setting; the message names the setting.
	ErrBadConfig = errors.New("bad sink setting")
	// ErrTopicMissing is wrapped by errors about a Kafka topic that does
	// not exist.
	ErrTopicMissing = errors.New("kafka topic does not exist")
)

// settingError is a construction error that names the sink and the setting
// at fault, in the config file's spelling.
type settingError struct {
	sink, setting, msg string
	err                error
}

func (e *settingError) Error() string {
	s := e.sink + ": " + e.setting + ": " + e.msg
	if e.err != nil {
		s += ": " + e.err.Error()
	}
	return s
}

func (e *settingError) Is(target error) bool { return target == ErrBadConfig }
func (e *settingError) Unwrap() error        { return e.err }

func badSetting(sink, setting, format string, args ...any) error {
	return &settingError{sink: sink, setting: setting, msg: fmt.Sprintf(format, args...)}
}

func badSettingErr(sink, setting string, err error, format string, args ...any) error {
	return &settingError{sink: sink, setting: setting, msg: fmt.Sprintf(format, args...), err: err}
}
