package detect

import (
	"encoding/binary"
	"math"
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"github.com/flowhound/flowhound/flow"
)

// State shared by the volume- and duration-based detectors (exfil,
// dns_exfil, long_connection): turning interim records into deltas, hashing
// keys, and a bounded least-recently-used table.

// cumIdle is how long an open flow may go without a record before its
// cumulative counts are forgotten (interim records come every active
// timeout, 5 minutes by default).
const cumIdle = time.Hour

// cumDeltas turns the cumulative counts of interim records into deltas.
// Only flows that have had an interim record are tracked: a flow seen once,
// in its final record, costs nothing. A flow evicted while open is counted
// again from zero at its next record (and the eviction is counted).
type cumDeltas struct {
	t *keyedLRU[uint64, cumCounts]
	// maybe counts the tracked flows per bucket of their hash: most
	// records are the only record of their flow, and an empty bucket says
	// so without a map lookup. A bucket that saturates stays set for good.
	maybe []uint8
	// minDur is the shortest duration of a tracked flow's first interim
	// record. A final record that is shorter cannot belong to a tracked
	// flow (a flow's later records are at least as long), so it is passed
	// without hashing its UID: most records are such short final ones.
	minDur int64
}

const cumBuckets = 1 << 13

type cumCounts struct {
	out, in uint64
	dur     int64
	queries uint32
}

// cumDelta is what a record adds to what its flow's earlier records said.
type cumDelta struct {
	out, in uint64
	queries uint32
	// dur is the flow's duration so far; prevDur what the previous record
	// of the flow said (0 for the first).
	dur, prevDur int64
	first        bool // the first record of the flow seen
}

func newCumDeltas(max int) cumDeltas {
	u := cumDeltas{t: newKeyedLRU[uint64, cumCounts](max), maybe: make([]uint8, cumBuckets), minDur: math.MaxInt64}
	u.t.onDrop = func(h *uint64, _ *cumCounts) { u.forget(*h) }
	return u
}

func (u *cumDeltas) forget(h uint64) {
	if b := &u.maybe[h%cumBuckets]; *b < math.MaxUint8 {
		*b--
	}
}

func (u *cumDeltas) bytes() int { return u.t.bytes() + len(u.maybe) }

// delta takes now, the record's End, in ns.
func (u *cumDeltas) delta(r *flow.Record, now int64) cumDelta {
	var q uint32
	if r.App != nil {
		q = r.App.DNSQueries
	}
	cur := cumCounts{out: r.OrigBytes, in: r.RespBytes, dur: now - r.Start.UnixNano(), queries: q}
	var d cumDelta
	d.dur = cur.dur
	if r.Final && cur.dur < u.minDur {
		d.out, d.in, d.queries, d.first = cur.out, cur.in, cur.queries, true
		return d
	}
	h := recordFlowHash(r)
	if u.maybe[h%cumBuckets] == 0 {
		// Not tracked.
	} else if e := u.t.get(h, now); e != nil {
		d.out, d.in = satSub(cur.out, e.out), satSub(cur.in, e.in)
		d.queries = uint32(satSub(uint64(cur.queries), uint64(e.queries)))
		d.prevDur = e.dur
		if r.Final {
			u.t.remove(h)
			u.forget(h)
		} else {
			*e = cumCounts{out: max(cur.out, e.out), in: max(cur.in, e.in), dur: max(cur.dur, e.dur),
				queries: max(cur.queries, e.queries)}
		}
		return d
	}
	d.out, d.in, d.queries, d.first = cur.out, cur.in, cur.queries, true
	if !r.Final {
		*u.t.insert(h, now) = cur
		u.minDur = min(u.minDur, cur.dur)
		if b := &u.maybe[h%cumBuckets]; *b < math.MaxUint8 {
			*b++
		}
	}
	return d
}

func (u *cumDeltas) expire(before int64) { u.t.expire(before) }

func satSub(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return 0
}

// FNV-1a, 64 bits.
const (
	fnv1aOffset = 14695981039346656037
	fnv1aPrime  = 1099511628211
)

func fnv1aString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * fnv1aPrime
	}
	return h
}

// mixAddr folds an address into h, a word at a time.
func mixAddr(h uint64, a netip.Addr) uint64 {
	b := a.As16()
	h = splitmixFinal(h ^ binary.BigEndian.Uint64(b[:8]))
	return splitmixFinal(h ^ binary.BigEndian.Uint64(b[8:]))
}

func fnv1aUint(h, x uint64) uint64 {
	for range 8 {
		h = (h ^ (x & 0xff)) * fnv1aPrime
		x >>= 8
	}
	return h
}

// hashString hashes s eight bytes at a time, for keys that only need to
// be told apart (FNV takes a multiplication per byte).
func hashString(s string) uint64 { return hashWords(s, false) }

// hashFold is hashString of s with ASCII letters in lower case.
func hashFold(s string) uint64 { return hashWords(s, true) }

func hashWords(s string, fold bool) uint64 {
	h := uint64(len(s)) * 0x9e3779b97f4a7c15
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	n := len(b) &^ 7
	for i := 0; i < n; i += 8 {
		w := binary.LittleEndian.Uint64(b[i : i+8])
		if fold {
			w = lowerWord(w)
		}
		h = (h ^ w) * 0xbf58476d1ce4e5b9
		h ^= h >> 29
	}
	if n < len(b) { // the last, short word, zero-padded
		var w uint64
		for i := len(b) - 1; i >= n; i-- {
			w = w<<8 | uint64(b[i])
		}
		if fold {
			w = lowerWord(w)
		}
		h = (h ^ w) * 0xbf58476d1ce4e5b9
		h ^= h >> 29
	}
	return splitmixFinal(h)
}

// lowerWord lowers the ASCII capitals among eight bytes: a byte gets 0x20
// when, seven bits taken, it is at least 'A' and not above 'Z', and its
// top bit is clear.
func lowerWord(w uint64) uint64 {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	a := w &^ high
	ge := a + ones*(0x80-'A')
	gt := a + ones*(0x80-'Z'-1)
	return w | (ge&^gt&^w&high)>>2
}

// splitmixFinal is a bit finalizer (splitmix64) that spreads FNV's weak low bits.
func splitmixFinal(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// recordFlowHash identifies a flow by its UID, or by its 5-tuple and start when
// it has none.
func recordFlowHash(r *flow.Record) uint64 {
	if r.UID != "" {
		return hashString(r.UID)
	}
	h := mixAddr(fnv1aOffset, r.OrigAddr)
	h = mixAddr(h, r.RespAddr)
	h = fnv1aUint(h, uint64(r.OrigPort)<<24|uint64(r.RespPort)<<8|uint64(r.Proto))
	return fnv1aUint(h, uint64(r.Start.UnixNano()))
}

// keyedLRU is a bounded map that evicts its least recently used entry when
// full. Entries live in one slice linked by index, so a full table does not
// allocate and eviction order depends only on the order of accesses (a
// replay evicts the same keys). Pointers it returns are valid until the
// next insert.
type keyedLRU[K ~uint64, V any] struct {
	index      hashIndex
	ents       []keyedEntry[K, V]
	head, tail int32 // most and least recently used; -1 when empty
	free       int32 // free list through next; -1 when empty
	max        int
	evictions  uint64
	// onDrop, when set, sees every entry that is evicted or expired (to
	// account the memory its value holds).
	onDrop func(*K, *V)
}

type keyedEntry[K ~uint64, V any] struct {
	key        K
	val        V
	stamp      int64 // time of the last access
	prev, next int32
}

func newKeyedLRU[K ~uint64, V any](max int) *keyedLRU[K, V] {
	return &keyedLRU[K, V]{index: newHashIndex(), head: -1, tail: -1, free: -1, max: max}
}

func (t *keyedLRU[K, V]) len() int { return t.index.len() }

// find returns k's position.
func (t *keyedLRU[K, V]) find(k K) (int32, bool) {
	x := &t.index
	for i, tag := x.first(uint64(k)); ; i = x.next(i) {
		st, pos, ok := slotOf(x.slots[i])
		if !ok {
			return 0, false
		}
		if st == tag && t.ents[pos].key == k {
			return int32(pos), true
		}
	}
}

// get returns k's value and marks it used at now, or nil.
func (t *keyedLRU[K, V]) get(k K, now int64) *V {
	i, ok := t.find(k)
	if !ok {
		return nil
	}
	e := &t.ents[i]
	if now > e.stamp {
		e.stamp = now
	}
	if t.head != i {
		t.unlink(i)
		t.pushFront(i)
	}
	return &e.val
}

// insert adds k (which must be absent) with a zero value, evicting the
// least recently used entry when the table is full.
func (t *keyedLRU[K, V]) insert(k K, now int64) *V {
	var i int32
	switch {
	case t.index.len() >= t.max && t.tail >= 0:
		i = t.tail
		if t.onDrop != nil {
			t.onDrop(&t.ents[i].key, &t.ents[i].val)
		}
		t.unlink(i)
		t.index.remove(uint64(t.ents[i].key), uint32(i))
		t.evictions++
	case t.free >= 0:
		i = t.free
		t.free = t.ents[i].next
	default:
		if len(t.ents) == cap(t.ents) {
			// Grow by hand, never past max: a full table holds no spare
			// capacity (append would leave up to a quarter unused).
			grown := make([]keyedEntry[K, V], len(t.ents), min(max(2*cap(t.ents), 64), max(t.max, 1)))
			copy(grown, t.ents)
			t.ents = grown
		}
		t.ents = t.ents[:len(t.ents)+1]
		i = int32(len(t.ents) - 1)
	}
	t.ents[i] = keyedEntry[K, V]{key: k, stamp: now}
	t.index.insert(uint64(k), uint32(i))
	t.pushFront(i)
	return &t.ents[i].val
}

func (t *keyedLRU[K, V]) remove(k K) {
	if i, ok := t.find(k); ok {
		t.drop(i)
	}
}

func (t *keyedLRU[K, V]) drop(i int32) {
	t.unlink(i)
	t.index.remove(uint64(t.ents[i].key), uint32(i))
	t.ents[i] = keyedEntry[K, V]{next: t.free}
	t.free = i
}

// expire removes the entries last used before the given time, oldest
// first.
func (t *keyedLRU[K, V]) expire(before int64) {
	for t.tail >= 0 && t.ents[t.tail].stamp < before {
		i := t.tail
		if t.onDrop != nil {
			t.onDrop(&t.ents[i].key, &t.ents[i].val)
		}
		t.drop(i)
	}
}

func (t *keyedLRU[K, V]) unlink(i int32) {
	e := &t.ents[i]
	if e.prev >= 0 {
		t.ents[e.prev].next = e.next
	} else {
		t.head = e.next
	}
	if e.next >= 0 {
		t.ents[e.next].prev = e.prev
	} else {
		t.tail = e.prev
	}
	e.prev, e.next = -1, -1
}

func (t *keyedLRU[K, V]) pushFront(i int32) {
	e := &t.ents[i]
	e.prev, e.next = -1, t.head
	if t.head >= 0 {
		t.ents[t.head].prev = i
	}
	t.head = i
	if t.tail < 0 {
		t.tail = i
	}
}

// bytes accounts the table's memory: its entry slice and its index.
func (t *keyedLRU[K, V]) bytes() int {
	var e keyedEntry[K, V]
	return cap(t.ents)*int(unsafe.Sizeof(e)) + t.index.bytes()
}

// proposalGate remembers what a key last proposed, so that a detector
// proposes again only on a material change (as the Engine would emit it).
// It is the score's bits in 8 bytes, zero before the first proposal.
type proposalGate uint64

// gateMark is xored into a score's bits so that no score is stored as
// zero (only a signalling NaN with this payload would be).
const gateMark = 0x7ff4_c0de_0000_0001

func (f proposalGate) proposed() bool { return f != 0 }

func (f proposalGate) score() float64 { return math.Float64frombits(uint64(f) ^ gateMark) }

// due reports whether score is worth proposing given the last proposal.
func (f *proposalGate) due(score float64) bool {
	if !f.proposed() {
		return true
	}
	last := f.score()
	return math.Abs(score-last) >= MinScoreChange || SeverityFor(score) != SeverityFor(last)
}

func (f *proposalGate) mark(score float64) { *f = proposalGate(math.Float64bits(score) ^ gateMark) }

// strTable interns strings (names, domains) with reference counts: keys
// that name the same service share one copy, and a key holds a 4-byte id
// instead of a 16-byte string header. Id 0 is the empty string.
type strTable struct {
	index map[string]uint32
	ents  []strEntry
	free  []uint32
	held  int // bytes of the strings
}

type strEntry struct {
	s    string
	refs uint32
}

func newStrTable() strTable {
	return strTable{index: map[string]uint32{}, ents: make([]strEntry, 1, 16)}
}

// ref returns s's id and takes a reference to it; s is copied when new.
func (t *strTable) ref(s string) uint32 {
	if s == "" {
		return 0
	}
	if id, ok := t.index[s]; ok {
		t.ents[id].refs++
		return id
	}
	s = strings.Clone(s)
	var id uint32
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		id = uint32(len(t.ents))
		t.ents = append(t.ents, strEntry{})
	}
	t.ents[id] = strEntry{s: s, refs: 1}
	t.index[s] = id
	t.held += len(s)
	return id
}

func (t *strTable) unref(id uint32) {
	if id == 0 {
		return
	}
	e := &t.ents[id]
	if e.refs--; e.refs == 0 {
		delete(t.index, e.s)
		t.held -= len(e.s)
		*e = strEntry{}
		t.free = append(t.free, id)
	}
}

// set moves a reference from the string *id names to s.
func (t *strTable) set(id *uint32, s string) {
	if t.ents[*id].s == s {
		return
	}
	old := *id
	*id = t.ref(s)
	t.unref(old)
}

func (t *strTable) str(id uint32) string { return t.ents[id].s }

func (t *strTable) bytes() int {
	return cap(t.ents)*int(unsafe.Sizeof(strEntry{})) + cap(t.free)*4 + mapBytes(len(t.index), 16+4) + t.held
}
