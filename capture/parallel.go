package capture

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/flow"
)

// Parallel spreads the flow table over several workers. One goroutine reads
// and decodes; packets are sharded by a symmetric hash of their host pair
// and protocol, so each flow lives in exactly one worker's table and the
// tables need no locks. Use it when one core cannot keep up; a single Sensor is cheaper per
// packet.
//
// Record order across workers is not deterministic; the set of records is
// the same as a Sensor's.
type Parallel struct {
	cfg     Config
	workers []*worker
	dec     *Decoder
	dd      *dedup
	stats   Stats
	first   int64
	last    int64
	seed    uint64
	emitMu  sync.Mutex
	wg      sync.WaitGroup
	pool    sync.Pool
	lastTic int64

	fragRoute map[fragKey]int
}

type worker struct {
	table *Table
	in    chan *batch
}

// batch carries decoded packets to one worker. Payload bytes are copied
// into arena because the reader's buffer moves on.
type batch struct {
	n     int
	pkts  [batchSize]batchPkt
	arena []byte
	tick  int64 // when set, a time signal: advance the table's clock
}

type batchPkt struct {
	d       Decoded
	ts      int64
	wireLen int
}

const (
	batchSize = 256
	// maxCopiedPayload is how much payload travels with a packet to its
	// worker: enough for application hints, which is all it is used for.
	maxCopiedPayload = 2048
)

// NewParallel returns a sensor with n workers (n >= 1).
func NewParallel(cfg Config, n int, emit func(*flow.Record)) *Parallel {
	if n < 1 {
		n = 1
	}
	p := &Parallel{cfg: cfg, dec: NewDecoder(), seed: 0x9e3779b97f4a7c15}
	if cfg.Dedup > 0 {
		p.dd = newDedup(int64(cfg.Dedup))
	}
	p.pool.New = func() any { return &batch{arena: make([]byte, 0, batchSize*256)} }
	safeEmit := func(r *flow.Record) {
		p.emitMu.Lock()
		emit(r)
		p.emitMu.Unlock()
	}
	// The flow limit is shared out between the tables.
	tcfg := cfg.Table
	if tcfg.MaxFlows > 0 {
		tcfg.MaxFlows = max(tcfg.MaxFlows/n, 1)
	}
	for i := 0; i < n; i++ {
		w := &worker{table: NewTable(tcfg, safeEmit), in: make(chan *batch, 16)}
		p.workers = append(p.workers, w)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for b := range w.in {
				for i := 0; i < b.n; i++ {
					bp := &b.pkts[i]
					w.table.Add(&bp.d, bp.ts, bp.wireLen)
				}
				if b.tick != 0 {
					w.table.Advance(b.tick)
				}
				b.n, b.arena, b.tick = 0, b.arena[:0], 0
				p.pool.Put(b)
			}
			w.table.Flush()
		}()
	}
	return p
}

// Run reads src to its end and flushes every worker, like Sensor.Run.
func (p *Parallel) Run(ctx context.Context, src PacketSource) error {
	pending := make([]*batch, len(p.workers))
	for i := range pending {
		pending[i] = p.pool.Get().(*batch)
	}
	send := func(i int) {
		p.workers[i].in <- pending[i]
		pending[i] = p.pool.Get().(*batch)
	}
	var pkt pcapfile.Packet
	var runErr error
	for n := 0; ; n++ {
		err := src.Next(&pkt)
		if err == io.EOF {
			break
		}
		if err != nil {
			p.stats.FileErrors = append(p.stats.FileErrors, err)
			var fe *pcapfile.Error
			if errors.As(err, &fe) {
				continue
			}
			break
		}
		if n&0xffff == 0 && ctx.Err() != nil {
			runErr = ctx.Err()
			break
		}
		i, d := p.dispatch(&pkt)
		if d == nil {
			continue
		}
		if pending[i].n == batchSize {
			send(i)
		}
		pending[i].add(d, pkt.Timestamp, pkt.WireLen)
		// Tell every worker the time once per second of packet time so
		// idle shards still expire their flows.
		if p.last-p.lastTic >= int64(time.Second) {
			p.lastTic = p.last
			for j := range pending {
				pending[j].tick = p.last
				send(j)
			}
		}
	}
	for i := range pending {
		if pending[i].n > 0 {
			send(i)
		}
		close(p.workers[i].in)
	}
	p.wg.Wait()
	if runErr != nil {
		return runErr
	}
	if len(p.stats.FileErrors) > 0 {
		return &IncompleteError{Errs: p.stats.FileErrors}
	}
	return nil
}

// dispatch decodes one packet and picks its worker. It returns a nil
// Decoded for packets that belong to no flow.
func (p *Parallel) dispatch(pkt *pcapfile.Packet) (int, *Decoded) {
	st := &p.stats
	st.Packets++
	st.Bytes += uint64(pkt.WireLen)
	if p.first == 0 || pkt.Timestamp < p.first {
		p.first = pkt.Timestamp
	}
	if pkt.Timestamp > p.last {
		p.last = pkt.Timestamp
	}
	d, err := p.dec.Decode(pkt.Data, uint16(pkt.LinkType), pkt.WireLen)
	if p.dd != nil && p.dd.seen(dedupBytes(d, pkt.Data), pkt.Timestamp) {
		st.Duplicates++
		return 0, nil
	}
	if de, ok := err.(*DecodeError); ok {
		st.DecodeErrors[de.kind]++
	}
	if !d.HasIP {
		return 0, nil
	}
	if len(p.workers) == 1 {
		return 0, d
	}
	// Shard by host pair and protocol, not ports: the later fragments of
	// a datagram carry no ports and must meet their flow in one table.
	if d.Frag && d.FragOffset != 0 {
		if i, ok := p.fragRoute[fragKeyOf(d)]; ok {
			return i, d
		}
	}
	i := p.shardOf(&d.Src, &d.Dst, d.Proto)
	if d.Frag && d.FragOffset == 0 && (d.FragSrc != d.Src || d.FragDst != d.Dst) {
		// The first fragment of a fragmented tunnel packet: its later
		// fragments carry only the outer header, so remember where the
		// inner flow went.
		p.routeFragments(fragKeyOf(d), i)
	}
	return i, d
}

func (p *Parallel) shardOf(src, dst *[16]byte, proto uint8) int {
	k, _ := keyOf(src, 0, dst, 0, proto)
	return int(k.hash(p.seed) % uint64(len(p.workers)))
}

// routeFragments remembers the worker of a fragmented tunnel packet. The
// map is bounded by clearing it when full: fragments of tunnels are rare,
// and their datagrams complete within moments.
func (p *Parallel) routeFragments(k fragKey, i int) {
	if p.fragRoute == nil || len(p.fragRoute) >= maxFragEntries {
		p.fragRoute = make(map[fragKey]int)
	}
	p.fragRoute[k] = i
}

// add copies a decoded packet into the batch.
func (b *batch) add(d *Decoded, ts int64, wireLen int) {
	bp := &b.pkts[b.n]
	b.n++
	bp.d, bp.ts, bp.wireLen = *d, ts, wireLen
	if n := len(d.Payload); n > 0 {
		n = min(n, maxCopiedPayload)
		off := len(b.arena)
		b.arena = append(b.arena, d.Payload[:n]...)
		bp.d.Payload = b.arena[off : off+n : off+n]
	}
}

// Stats returns the counters; table counters are summed over workers and
// are complete only after Run returns.
func (p *Parallel) Stats() Stats {
	st := p.stats
	for _, w := range p.workers {
		ts := w.table.Stats()
		st.Table.Packets += ts.Packets
		st.Table.Flows += ts.Flows
		st.Table.Records += ts.Records
		st.Table.Interim += ts.Interim
		st.Table.Evicted += ts.Evicted
		st.Table.Active += ts.Active
		st.Table.Fragments += ts.Fragments
		st.Table.FragOrphans += ts.FragOrphans
		st.Table.HintErrors += ts.HintErrors
	}
	if p.first != 0 {
		st.First = time.Unix(0, p.first).UTC()
		st.Last = time.Unix(0, p.last).UTC()
	}
	return st
}
