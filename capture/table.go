package capture

import (
	"fmt"
	"time"
	"unsafe"

	"github.com/flowhound/flowhound/flow"
)

// TableConfig sets the flow table's limits and timers. Zero values take the
// defaults of DefaultTableConfig.
type TableConfig struct {
	// MaxFlows bounds the flows tracked at once; when full, the least
	// recently active flow is evicted (emitted) to make room.
	MaxFlows int
	// Idle timeouts per protocol state, in packet time.
	TCPTimeout        time.Duration // established or mid-stream TCP
	TCPAttemptTimeout time.Duration // TCP that never got past the SYN
	TCPCloseGrace     time.Duration // after both FINs or a RST
	UDPTimeout        time.Duration
	ICMPTimeout       time.Duration
	OtherTimeout      time.Duration
	// ActiveTimeout is how often a long-lived flow emits an interim record.
	ActiveTimeout time.Duration
	// HomeNets decides local_orig/local_resp. Nil means flow.DefaultHomeNets.
	HomeNets *flow.Networks
	// Seed randomises the hash; 0 picks one from the clock.
	Seed uint64
}

// DefaultTableConfig returns timers close to Zeek's defaults.
func DefaultTableConfig() TableConfig {
	return TableConfig{
		MaxFlows:          1 << 20,
		TCPTimeout:        5 * time.Minute,
		TCPAttemptTimeout: 30 * time.Second,
		TCPCloseGrace:     5 * time.Second,
		UDPTimeout:        time.Minute,
		ICMPTimeout:       time.Minute,
		OtherTimeout:      time.Minute,
		ActiveTimeout:     5 * time.Minute,
	}
}

func (c *TableConfig) fill() {
	def := DefaultTableConfig()
	set := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.MaxFlows <= 0 {
		c.MaxFlows = def.MaxFlows
	}
	set(&c.TCPTimeout, def.TCPTimeout)
	set(&c.TCPAttemptTimeout, def.TCPAttemptTimeout)
	set(&c.TCPCloseGrace, def.TCPCloseGrace)
	set(&c.UDPTimeout, def.UDPTimeout)
	set(&c.ICMPTimeout, def.ICMPTimeout)
	set(&c.OtherTimeout, def.OtherTimeout)
	set(&c.ActiveTimeout, def.ActiveTimeout)
	if c.HomeNets == nil {
		c.HomeNets = flow.DefaultHomeNets()
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano()) | 1
	}
}

// Timeout classes: each has its own idle list, ordered by last activity.
const (
	classTCP = iota
	classTCPAttempt
	classTCPClosed
	classUDP
	classICMP
	classOther
	numClasses
)

// TableStats counts what the table did.
type TableStats struct {
	Packets     uint64 // packets counted into flows
	Flows       uint64 // flows created
	Records     uint64 // final records emitted
	Interim     uint64 // interim records emitted
	Evicted     uint64 // flows emitted early because the table was full
	Active      int    // flows tracked now
	Fragments   uint64 // non-first fragments seen
	FragOrphans uint64 // non-first fragments whose first fragment never came
	HintErrors  uint64 // application payloads that looked like DNS but did not parse
}

// Table is a bidirectional flow table driven by packet time. It is not safe
// for concurrent use: run one per worker and shard packets by the symmetric
// flow hash.
type Table struct {
	cfg      TableConfig
	timeouts [numClasses]int64
	active   int64

	slots []slot
	mask  uint64
	flows []flowState // index 0 is unused so that 0 means "none"
	free  []uint32

	lists      [numClasses]list
	activeList list

	now       int64 // highest packet time seen, ns
	nextSweep int64

	frags fragTable

	hints     hintParsers
	spareApps []*flowExtraApp // hints of finished flows, for reuse
	key       flowKey         // scratch key of the packet being added

	emit  func(*flow.Record)
	rec   flow.Record
	strs  [96]byte // scratch for a record's uid, community id and history
	stats TableStats
}

type slot struct {
	tag uint32 // high half of the hash, to skip most key compares
	idx uint32
}

// list is an intrusive doubly linked list threaded through flowState.
type list struct{ head, tail uint32 }

// NewTable returns a table that calls emit for every record. The record
// passed to emit is reused, and so is the App it points to (the strings and
// slices in them are not): copy what must outlive the call.
func NewTable(cfg TableConfig, emit func(*flow.Record)) *Table {
	cfg.fill()
	t := &Table{cfg: cfg, emit: emit}
	t.timeouts = [numClasses]int64{
		classTCP:        int64(cfg.TCPTimeout),
		classTCPAttempt: int64(cfg.TCPAttemptTimeout),
		classTCPClosed:  int64(cfg.TCPCloseGrace),
		classUDP:        int64(cfg.UDPTimeout),
		classICMP:       int64(cfg.ICMPTimeout),
		classOther:      int64(cfg.OtherTimeout),
	}
	t.active = int64(cfg.ActiveTimeout)
	initial := 1024
	if cfg.MaxFlows < initial {
		initial = cfg.MaxFlows
	}
	t.flows = make([]flowState, 1, initial+1)
	t.slots = make([]slot, slotsFor(initial))
	t.mask = uint64(len(t.slots) - 1)
	t.frags.init()
	return t
}

// slotsFor returns a power of two at least twice n, so the load factor of
// the open-addressing index stays at or below one half.
func slotsFor(n int) int {
	s := 16
	for s < 2*n {
		s <<= 1
	}
	return s
}

// Stats returns the counters so far.
func (t *Table) Stats() TableStats {
	s := t.stats
	s.Active = len(t.flows) - 1 - len(t.free)
	return s
}

// FlowStateSize is the bytes of table memory per tracked flow: the state
// itself plus its share of the index at the maximum load factor. Extra
// application and tunnel details are allocated only for flows that have
// them.
const FlowStateSize = int(unsafeSizeofFlowState) + 2*8

// Add counts one decoded packet, sent at ts (ns since epoch) with frame
// length wireLen, into its flow. Packets without an IP header are ignored.
func (t *Table) Add(d *Decoded, ts int64, wireLen int) {
	if !d.HasIP {
		return
	}
	if ts > t.now {
		t.now = ts
		if ts >= t.nextSweep {
			t.sweep()
		}
	}
	if d.Frag && d.FragOffset != 0 {
		t.addFragment(d, ts, wireLen)
		return
	}
	k := &t.key
	fromA := k.set(d)
	t.add(d, k, fromA, k.hash(t.cfg.Seed), ts, wireLen)
}

// keyed reports whether Add looks d up by its own flow key (what
// addKeyed takes): a packet with an IP header that is not a later
// fragment.
func keyed(d *Decoded) bool { return d.HasIP && !(d.Frag && d.FragOffset != 0) }

// addKeyed is Add for a packet whose key k, direction fromA and hash h
// (k.hash with the table's seed) the caller computed ahead, to prefetch.
// d must be keyed.
func (t *Table) addKeyed(d *Decoded, k *flowKey, fromA bool, h uint64, ts int64, wireLen int) {
	if ts > t.now {
		t.now = ts
		if ts >= t.nextSweep {
			t.sweep()
		}
	}
	t.add(d, k, fromA, h, ts, wireLen)
}

// prefetchSlot starts loading the index slot where a lookup of hash h
// begins.
func (t *Table) prefetchSlot(h uint64) {
	prefetch(unsafe.Pointer(&t.slots[h&t.mask]))
}

// prefetchFlow starts loading what a packet of the flow with hash h will
// touch: the state's first line (key, last) and the line of the sending
// side. It looks at the home slot only, which holds the flow most of the
// time at a load factor of at most one half; a miss costs nothing but the
// prefetch.
func (t *Table) prefetchFlow(h uint64, fromA bool) {
	s := t.slots[h&t.mask]
	if s.idx == 0 || s.tag != uint32(h>>32) {
		return
	}
	f := &t.flows[s.idx]
	prefetch(unsafe.Pointer(f))
	if fromA {
		prefetch(unsafe.Pointer(&f.dir[0]))
	} else {
		prefetch(unsafe.Pointer(&f.dir[1]))
	}
}

func (t *Table) add(d *Decoded, k *flowKey, fromA bool, h uint64, ts int64, wireLen int) {
	idx := t.lookup(k, h)
	if idx != 0 {
		f := &t.flows[idx]
		switch {
		case ts-f.last >= t.timeouts[f.class]:
			// Idle past its timeout, though no sweep has run since: the
			// flow ended, and this packet starts a new one. Deciding here
			// keeps expiry exact whatever the sweep schedule.
			t.finish(idx, true)
			idx = 0
		case f.class == classTCPClosed && d.Proto == 6 && d.TCPFlags&(flagSYN|flagACK) == flagSYN:
			// A new SYN on a finished connection: port reuse, a new flow.
			t.finish(idx, true)
			idx = 0
		}
	}
	if idx == 0 {
		idx = t.insert(k, h, d, fromA, ts)
	}
	f := &t.flows[idx]
	side := 1
	if fromA {
		side = 0
	}
	p := pktOf(d)
	t.count(f, &p, side, ts, wireLen)
	if d.Frag {
		t.firstFragment(d, idx, fromA, ts)
	}
	t.settle(f, idx, &p)
}

// addKnown is add for a packet of a flow the table holds and that the
// packet does not end (by timeout or port reuse): what fastPacket gives
// for most packets. It reports false, having changed nothing, for any
// other packet, which then takes add. The caller has moved the clock.
func (t *Table) addKnown(k *flowKey, fromA bool, h uint64, p *pktView, ts int64, wireLen int) bool {
	idx := t.lookup(k, h)
	if idx == 0 {
		return false
	}
	f := &t.flows[idx]
	if ts-f.last >= t.timeouts[f.class] || f.class == classTCPClosed && p.Proto == 6 && p.TCPFlags&(flagSYN|flagACK) == flagSYN {
		return false // as in add
	}
	side := 1
	if fromA {
		side = 0
	}
	t.count(f, p, side, ts, wireLen)
	t.settle(f, idx, p)
	return true
}

// count counts a packet sent by key side `side` into its flow f, hints
// included.
func (t *Table) count(f *flowState, p *pktView, side int, ts int64, wireLen int) {
	f.update(p, side, ts, wireLen)
	if !f.hintDone && len(p.Payload) > 0 {
		t.hint(f, p, uint8(side) == f.origSide)
	}
}

// settle ends the counting of a packet of flow idx (f): its timeout class.
func (t *Table) settle(f *flowState, idx uint32, p *pktView) {
	// Idle lists are kept lazily: a packet does not move its flow to the
	// tail (that would touch two other flows' memory per packet); the sweep
	// re-queues flows that turn out to be active. Only a change of timeout
	// class moves a flow now.
	// Only TCP changes class, and only on SYN, FIN or RST, or when an
	// attempt becomes established.
	if p.Proto == 6 && (p.TCPFlags&(flagSYN|flagFIN|flagRST) != 0 || f.class == classTCPAttempt) {
		t.reclassify(idx)
	}
	t.stats.Packets++
}

// reclassify moves a flow whose timeout class changed to its new list.
func (t *Table) reclassify(idx uint32) {
	f := &t.flows[idx]
	if cls := f.timeoutClass(); cls != f.class {
		t.unlink(&t.lists[f.class], idx)
		f.class = cls
		t.queueIdle(idx)
	}
}

func (t *Table) lookup(k *flowKey, h uint64) uint32 {
	tag := uint32(h >> 32)
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := t.slots[i]
		if s.idx == 0 {
			return 0
		}
		if s.tag == tag && t.flows[s.idx].key.equal(k) {
			return s.idx
		}
	}
}

func (t *Table) insert(k *flowKey, h uint64, d *Decoded, fromA bool, ts int64) uint32 {
	if t.Stats().Active >= t.cfg.MaxFlows {
		t.evictOne()
	}
	var idx uint32
	if n := len(t.free); n > 0 {
		idx = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		t.flows = append(t.flows, flowState{})
		idx = uint32(len(t.flows) - 1)
		if 2*len(t.flows) > len(t.slots) {
			t.grow()
		}
	}
	f := &t.flows[idx]
	*f = flowState{key: *k, first: ts, last: ts, lastEmit: ts}
	f.init(d, fromA)
	f.class = f.timeoutClass()
	t.queueIdle(idx)
	t.append(&t.activeList, idx)
	t.place(h, idx)
	t.stats.Flows++
	return idx
}

func (t *Table) place(h uint64, idx uint32) {
	i := h & t.mask
	for t.slots[i].idx != 0 {
		i = (i + 1) & t.mask
	}
	t.slots[i] = slot{tag: uint32(h >> 32), idx: idx}
}

func (t *Table) grow() {
	t.slots = make([]slot, len(t.slots)*2)
	t.mask = uint64(len(t.slots) - 1)
	for i := 1; i < len(t.flows); i++ {
		if t.flows[i].live {
			t.place(t.flows[i].key.hash(t.cfg.Seed), uint32(i))
		}
	}
}

// remove deletes idx from the index with backward-shift deletion, so that
// lookups never need tombstones.
func (t *Table) remove(idx uint32) {
	f := &t.flows[idx]
	i := f.key.hash(t.cfg.Seed) & t.mask
	for t.slots[i].idx != idx {
		i = (i + 1) & t.mask
	}
	for {
		t.slots[i] = slot{}
		j := i
		for {
			j = (j + 1) & t.mask
			s := t.slots[j]
			if s.idx == 0 {
				return
			}
			home := t.flows[s.idx].key.hash(t.cfg.Seed) & t.mask
			// Move s back into the hole at i unless its home lies
			// cyclically within (i, j].
			if (j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j)) {
				t.slots[i] = s
				i = j
				break
			}
		}
	}
}

func (t *Table) append(l *list, idx uint32) {
	f := &t.flows[idx]
	if l == &t.activeList {
		f.aprev, f.anext = l.tail, 0
		if l.tail != 0 {
			t.flows[l.tail].anext = idx
		} else {
			l.head = idx
		}
	} else {
		f.prev, f.next = l.tail, 0
		if l.tail != 0 {
			t.flows[l.tail].next = idx
		} else {
			l.head = idx
		}
	}
	l.tail = idx
}

// queueIdle appends idx to the idle list of its class. The list stays
// ordered by queued time: a flow whose last packet is older than the tail's
// is queued at the tail's time, which can only delay its expiry check (the
// sweep then looks at the real last-packet time), never make it early.
func (t *Table) queueIdle(idx uint32) {
	f := &t.flows[idx]
	l := &t.lists[f.class]
	f.queued = f.last
	if l.tail != 0 {
		f.queued = max(f.queued, t.flows[l.tail].queued)
	}
	t.append(l, idx)
}

// insertActive puts idx into the active list in order of lastEmit,
// searching from the tail, where it almost always belongs.
func (t *Table) insertActive(idx uint32) {
	l := &t.activeList
	f := &t.flows[idx]
	after := l.tail
	for after != 0 && t.flows[after].lastEmit > f.lastEmit {
		after = t.flows[after].aprev
	}
	if after == l.tail {
		t.append(l, idx)
		return
	}
	var next uint32
	if after == 0 {
		next = l.head
		l.head = idx
	} else {
		next = t.flows[after].anext
		t.flows[after].anext = idx
	}
	f.aprev, f.anext = after, next
	t.flows[next].aprev = idx
}

func (t *Table) unlink(l *list, idx uint32) {
	f := &t.flows[idx]
	if l == &t.activeList {
		if f.aprev != 0 {
			t.flows[f.aprev].anext = f.anext
		} else {
			l.head = f.anext
		}
		if f.anext != 0 {
			t.flows[f.anext].aprev = f.aprev
		} else {
			l.tail = f.aprev
		}
		f.aprev, f.anext = 0, 0
		return
	}
	if f.prev != 0 {
		t.flows[f.prev].next = f.next
	} else {
		l.head = f.next
	}
	if f.next != 0 {
		t.flows[f.next].prev = f.prev
	} else {
		l.tail = f.prev
	}
	f.prev, f.next = 0, 0
}

// sweep expires idle flows and emits interim records, in packet time. It
// runs at most once per second of packet time; each list is ordered by the
// time that matters for it, so only list heads are examined.
func (t *Table) sweep() {
	now := t.now
	// Sweep on whole seconds of packet time, so that the schedule does not
	// depend on which packets a table happens to see.
	t.nextSweep = (now/int64(time.Second) + 1) * int64(time.Second)
	for c := range t.lists {
		to := t.timeouts[c]
		for h := t.lists[c].head; h != 0; h = t.lists[c].head {
			f := &t.flows[h]
			if now-f.queued < to {
				break
			}
			t.prefetchExpiring(f.next)
			if now-f.last >= to {
				t.finish(h, true)
				continue
			}
			t.unlink(&t.lists[c], h)
			t.queueIdle(h) // active since it was queued
		}
	}
	for h := t.activeList.head; h != 0; h = t.activeList.head {
		f := &t.flows[h]
		if now-f.lastEmit < t.active {
			break
		}
		t.emitRecord(f, false)
		t.stats.Interim++
		// Interim records keep a fixed rhythm from the flow's start.
		for f.lastEmit+t.active <= now {
			f.lastEmit += t.active
		}
		t.unlink(&t.activeList, h)
		t.insertActive(h)
	}
	t.frags.expire(now, t)
}

// prefetchExpiring starts loading what the sweep will read of the flows
// after the one it is at, in the idle list it walks: the details and hints
// of flow idx, the next one (its state was prefetched a step ago), and the
// state of the flow after idx. Flows reach the head of an idle list long
// after their last packet, so all of it is cold.
func (t *Table) prefetchExpiring(idx uint32) {
	if idx == 0 || t.emit == nil {
		return
	}
	f := &t.flows[idx]
	if x := f.extra; x != nil {
		// f's lines were prefetched a step ago. Most extras are a
		// flowExtraApp, the hints right behind the extra.
		p := unsafe.Pointer(x)
		prefetch(p)
		prefetch(unsafe.Add(p, 64))
		prefetch(unsafe.Add(p, 128))
	}
	if n := f.next; n != 0 {
		g := unsafe.Pointer(&t.flows[n])
		prefetch(g)
		prefetch(unsafe.Add(g, 64))
		prefetch(unsafe.Add(g, 128))
		prefetch(unsafe.Add(g, 192))
	}
}

// finish emits a flow's final record and forgets it.
func (t *Table) finish(idx uint32, final bool) {
	f := &t.flows[idx]
	t.emitRecord(f, final)
	t.stats.Records++
	t.unlink(&t.lists[f.class], idx)
	t.unlink(&t.activeList, idx)
	t.remove(idx)
	f.live = false
	if f.extra != nil {
		t.spare(f.extra)
		f.extra = nil
	}
	t.free = append(t.free, idx)
}

// evictOne emits the least recently active flow to make room. List heads
// are the oldest queued flows; one that was active since is re-queued and
// the search goes on, a bounded number of times.
func (t *Table) evictOne() {
	for tries := 0; ; tries++ {
		var victim uint32
		var oldest int64
		for c := range t.lists {
			if h := t.lists[c].head; h != 0 && (victim == 0 || t.flows[h].queued < oldest) {
				victim, oldest = h, t.flows[h].queued
			}
		}
		if victim == 0 {
			return
		}
		f := &t.flows[victim]
		if f.last == f.queued || tries >= 64 {
			t.finish(victim, true)
			t.stats.Evicted++
			return
		}
		t.unlink(&t.lists[f.class], victim)
		t.queueIdle(victim)
	}
}

// Flush emits every open flow as final (end of input) in order of first
// packet, so the output is deterministic.
func (t *Table) Flush() {
	t.frags.expire(t.now+2*fragTimeout, t)
	for h := t.activeList.head; h != 0; h = t.activeList.head {
		t.finish(h, true)
	}
}

// Advance moves the packet clock to now (ns since epoch) without a packet,
// expiring what is due. Workers that see no packets for a while are advanced
// by their dispatcher.
func (t *Table) Advance(now int64) {
	if now > t.now {
		t.now = now
		if now >= t.nextSweep {
			t.sweep()
		}
	}
}

// Now returns the table's packet clock (ns since epoch).
func (t *Table) Now() int64 { return t.now }

func (t *Table) emitRecord(f *flowState, final bool) {
	if t.emit == nil {
		return
	}
	r := &t.rec
	f.fillRecord(r, t.strs[:0], &t.cfg)
	r.Final = final
	t.emit(r)
}

// String describes the table for logs.
func (t *Table) String() string {
	s := t.Stats()
	return fmt.Sprintf("flows active=%d created=%d records=%d interim=%d evicted=%d", s.Active, s.Flows, s.Records, s.Interim, s.Evicted)
}
