package capture

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/flow"
)

// Config configures a Sensor.
type Config struct {
	Table TableConfig
	// Dedup, when positive, drops frames identical to one seen within this
	// much packet time (SPAN sessions mirroring both directions).
	Dedup time.Duration
}

// Stats summarises a sensor run.
type Stats struct {
	Packets    uint64 // frames read
	Bytes      uint64 // their wire length
	Duplicates uint64 // frames dropped by de-duplication
	// DecodeErrors counts frames by decode problem; frames with a problem
	// are still counted into a flow when their IP header was readable.
	DecodeErrors [numErrorKinds]uint64
	Table        TableStats
	// FileErrors are the capture files that ended early, in order.
	FileErrors []error
	First      time.Time // first packet time
	Last       time.Time // last packet time
}

// DecodeErrorTotal is the sum of DecodeErrors.
func (s *Stats) DecodeErrorTotal() uint64 {
	var n uint64
	for _, c := range s.DecodeErrors {
		n += c
	}
	return n
}

// DecodeErrorsByKind returns the non-zero decode error counts by kind name.
func (s *Stats) DecodeErrorsByKind() map[string]uint64 {
	m := map[string]uint64{}
	for k, c := range s.DecodeErrors {
		if c > 0 {
			m[ErrorKind(k).String()] = c
		}
	}
	return m
}

// PacketSource yields captured packets; *pcapfile.Source is one. Next
// returns io.EOF at the end; a *pcapfile.Error ends one file, and reading
// goes on with the next.
type PacketSource interface {
	Next(*pcapfile.Packet) error
}

// Sensor is the single-threaded packet path: decode, optional
// de-duplication, flow table. It is not safe for concurrent use.
type Sensor struct {
	dec   *Decoder
	table *Table
	dd    *dedup
	batch *readBatch // Run's read-ahead, allocated on first use
	// prefetchMin is the table size from which Run prefetches flow state
	// (prefetchFlows; tests lower it).
	prefetchMin int
	noFused     bool // tests: no fusedPackets
	stats       Stats
	first       int64
	last        int64
}

// NewSensor returns a sensor that calls emit for every flow record (the
// record and its App are reused after emit returns; see NewTable).
func NewSensor(cfg Config, emit func(*flow.Record)) *Sensor {
	s := &Sensor{dec: NewDecoder(), table: NewTable(cfg.Table, emit), prefetchMin: prefetchFlows}
	if cfg.Dedup > 0 {
		s.dd = newDedup(int64(cfg.Dedup))
	}
	return s
}

// Packet processes one captured frame. It does not allocate in the steady
// state (packets of known flows).
func (s *Sensor) Packet(p *pcapfile.Packet) {
	d, err := s.dec.Decode(p.Data, uint16(p.LinkType), p.WireLen)
	if s.account(p, d, err) && d.HasIP {
		s.table.Add(d, p.Timestamp, p.WireLen)
	}
}

// account counts a decoded frame into the sensor's statistics and reports
// whether it goes on to the flow table (false for a duplicate).
func (s *Sensor) account(p *pcapfile.Packet, d *Decoded, err error) bool {
	st := &s.stats
	st.Packets++
	st.Bytes += uint64(p.WireLen)
	if s.first == 0 || p.Timestamp < s.first {
		s.first = p.Timestamp
	}
	if p.Timestamp > s.last {
		s.last = p.Timestamp
	}
	if s.dd != nil && s.dd.seen(dedupBytes(d, p.Data), p.Timestamp) {
		st.Duplicates++
		return false
	}
	if err != nil {
		if de, ok := err.(*DecodeError); ok {
			st.DecodeErrors[de.kind]++
		}
	}
	return true
}

// readAhead is how many packets Run decodes ahead of the flow table. The
// state of a flow is a cache miss whenever the table outgrows the caches;
// looking a batch ahead lets those misses overlap instead of stalling one
// packet after another.
const readAhead = 32

// prefetchFlows is the table size (flow states of 256 bytes) from which Run
// prefetches the state of a batch's flows: 2 MiB, about what the private
// caches of a core hold. Below it the states are cache hits and the
// prefetch passes cost more than they save.
const prefetchFlows = 8192

// readBatch holds the packets of one NextBatch call, decoded, with their flow
// keys and hashes.
type readBatch struct {
	pkts  [readAhead]pcapfile.Packet
	dec   [readAhead]Decoded
	err   [readAhead]error
	key   [readAhead]flowKey
	hash  [readAhead]uint64
	pv    [readAhead]pktView
	fromA [readAhead]bool
	keyed [readAhead]bool
}

// packets processes the first n packets of b, with the effect of calling
// Packet on each in order. Without de-duplication it takes fusedPackets.
// While the table fits in the caches that is what it does; beyond that it
// makes three passes: decode and hash every packet (prefetching its index
// slot), prefetch each flow's state through its now cached slot, then
// update the table in order.
func (s *Sensor) packets(b *readBatch, n int) {
	t := s.table
	if s.dd == nil && !s.dec.NoFastPath && !s.noFused {
		s.fusedPackets(b, n)
		return
	}
	if len(t.flows) <= s.prefetchMin {
		d := &b.dec[0]
		for i := range n {
			s.decodeAdd(&b.pkts[i], d)
		}
		return
	}
	seed := t.cfg.Seed
	for i := range n {
		p, d := &b.pkts[i], &b.dec[i]
		b.err[i] = s.dec.decodeInto(d, p.Data, uint16(p.LinkType), p.WireLen)
		b.keyed[i] = keyed(d)
		if b.keyed[i] {
			b.fromA[i] = b.key[i].set(d)
			b.hash[i] = b.key[i].hash(seed)
			t.prefetchSlot(b.hash[i])
		}
	}
	b.prefetchFlows(t, n)
	for i := range n {
		p, d := &b.pkts[i], &b.dec[i]
		if !s.account(p, d, b.err[i]) {
			continue
		}
		switch {
		case b.keyed[i]:
			t.addKeyed(d, &b.key[i], b.fromA[i], b.hash[i], p.Timestamp, p.WireLen)
		case d.HasIP:
			t.Add(d, p.Timestamp, p.WireLen)
		}
	}
}

// prefetchFlows prefetches the flow state of the batch's keyed packets,
// between hashing them (which prefetched their index slots) and updating
// them.
func (b *readBatch) prefetchFlows(t *Table, n int) {
	for i := range n {
		if b.keyed[i] {
			t.prefetchFlow(b.hash[i], b.fromA[i])
		}
	}
}

// fusedPackets is packets without de-duplication, for which the frames
// fastPacket takes (most) skip the Decoded: key, hash and what the table
// reads of a packet come straight from the frame, and a packet of a flow
// the table holds in steady state is counted without decoding. The others
// take the general path. Beyond prefetchMin flows it makes the three
// passes of packets.
func (s *Sensor) fusedPackets(b *readBatch, n int) {
	t := s.table
	d := &b.dec[0]
	if len(t.flows) <= s.prefetchMin {
		k, pv := &b.key[0], &b.pv[0]
		for i := range n {
			p := &b.pkts[i]
			if p.LinkType == linkEthernet {
				if fromA, ok := fastPacket(p.Data, len(p.Data) < p.WireLen, k, pv); ok {
					s.fusedAdd(p, d, k, fromA, k.hash(t.cfg.Seed), pv)
					continue
				}
			}
			s.decodeAdd(p, d)
		}
		return
	}
	seed := t.cfg.Seed
	for i := range n {
		p := &b.pkts[i]
		b.keyed[i] = false
		if p.LinkType == linkEthernet {
			b.fromA[i], b.keyed[i] = fastPacket(p.Data, len(p.Data) < p.WireLen, &b.key[i], &b.pv[i])
			if b.keyed[i] {
				b.hash[i] = b.key[i].hash(seed)
				t.prefetchSlot(b.hash[i])
			}
		}
	}
	b.prefetchFlows(t, n)
	for i := range n {
		p := &b.pkts[i]
		if b.keyed[i] {
			s.fusedAdd(p, d, &b.key[i], b.fromA[i], b.hash[i], &b.pv[i])
		} else {
			s.decodeAdd(p, d)
		}
	}
}

// fusedAdd is Packet for a frame that fastPacket took, given its key k,
// direction, hash h and view pv. It decodes into d only a packet that is
// not of a flow the table holds in steady state.
func (s *Sensor) fusedAdd(p *pcapfile.Packet, d *Decoded, k *flowKey, fromA bool, h uint64, pv *pktView) {
	s.account(p, nil, nil)
	t := s.table
	ts := p.Timestamp
	if ts > t.now {
		t.now = ts
		if ts >= t.nextSweep {
			t.sweep()
		}
	}
	if !t.addKnown(k, fromA, h, pv, ts, p.WireLen) {
		// The general path, which takes the same frame fast.
		s.dec.decodeInto(d, p.Data, linkEthernet, p.WireLen)
		t.add(d, k, fromA, h, ts, p.WireLen)
	}
}

// decodeAdd is Packet decoding into d.
func (s *Sensor) decodeAdd(p *pcapfile.Packet, d *Decoded) {
	err := s.dec.decodeInto(d, p.Data, uint16(p.LinkType), p.WireLen)
	if s.account(p, d, err) && d.HasIP {
		s.table.Add(d, p.Timestamp, p.WireLen)
	}
}

// dedupBytes is what de-duplication compares: the innermost IP packet, so
// that copies mirrored through tunnels with differing outer headers still
// match, or the whole frame when there is no IP.
func dedupBytes(d *Decoded, frame []byte) []byte {
	if d.HasIP && len(d.L3) > 0 {
		return d.L3
	}
	return frame
}

// Run reads src to its end, then flushes every open flow. A capture file
// that ends in error is recorded in Stats.FileErrors and reading goes on
// with the next file; Run returns the first such error (wrapped in
// ErrIncomplete) after flushing, so nothing read is lost. Cancelling ctx
// stops reading, flushes and returns ctx.Err().
func (s *Sensor) Run(ctx context.Context, src PacketSource) error {
	// Only the readers themselves read ahead: a wrapper that overrides
	// Next must see every packet.
	switch r := src.(type) {
	case *pcapfile.Source:
		return s.runBatches(ctx, r.NextBatch)
	case *pcapfile.Reader:
		return s.runBatches(ctx, r.NextBatch)
	}
	var p pcapfile.Packet
	var n int
	for {
		err := src.Next(&p)
		if err == nil {
			s.Packet(&p)
			if n++; n&0xffff == 0 && ctx.Err() != nil {
				s.Flush()
				return ctx.Err()
			}
			continue
		}
		if err == io.EOF {
			break
		}
		s.stats.FileErrors = append(s.stats.FileErrors, err)
		var fe *pcapfile.Error
		if !errors.As(err, &fe) {
			break // not a per-file problem: the source cannot go on
		}
	}
	s.Flush()
	if len(s.stats.FileErrors) > 0 {
		return &IncompleteError{Errs: s.stats.FileErrors}
	}
	return nil
}

// runBatches is Run for a source that reads ahead: next is its NextBatch,
// and every packet it returns stays valid until it is called again.
func (s *Sensor) runBatches(ctx context.Context, next func([]pcapfile.Packet) (int, error)) error {
	if s.batch == nil {
		s.batch = new(readBatch)
	}
	b := s.batch
	var seen int
	for {
		n, err := next(b.pkts[:])
		if n > 0 {
			s.packets(b, n)
			if seen += n; seen >= 1<<16 {
				seen = 0
				if ctx.Err() != nil {
					s.Flush()
					return ctx.Err()
				}
			}
			continue
		}
		if err == io.EOF || err == nil {
			break
		}
		s.stats.FileErrors = append(s.stats.FileErrors, err)
		var fe *pcapfile.Error
		if !errors.As(err, &fe) {
			break // not a per-file problem: the source cannot go on
		}
	}
	clear(b.pkts[:]) // do not keep the last file's memory reachable
	clear(b.dec[:])
	clear(b.pv[:])
	s.Flush()
	if len(s.stats.FileErrors) > 0 {
		return &IncompleteError{Errs: s.stats.FileErrors}
	}
	return nil
}

// IncompleteError says that some input could not be read to its end. Every
// packet before each problem was processed and its flows emitted.
type IncompleteError struct{ Errs []error }

func (e *IncompleteError) Error() string {
	msg := e.Errs[0].Error()
	if len(e.Errs) > 1 {
		msg += " (and " + strconv.Itoa(len(e.Errs)-1) + " more)"
	}
	return msg
}

// Unwrap returns the individual errors.
func (e *IncompleteError) Unwrap() []error { return e.Errs }

// Advance moves the packet clock to now (ns since epoch) without a packet,
// so that idle flows expire on a live sensor whose traffic pauses.
func (s *Sensor) Advance(now int64) { s.table.Advance(now) }

// Flush emits every open flow as final.
func (s *Sensor) Flush() { s.table.Flush() }

// Stats returns the counters so far.
func (s *Sensor) Stats() Stats {
	st := s.stats
	st.Table = s.table.Stats()
	if s.first != 0 {
		st.First = time.Unix(0, s.first).UTC()
		st.Last = time.Unix(0, s.last).UTC()
	}
	return st
}
