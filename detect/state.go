package detect

import (
	"encoding/binary"
	"net/netip"
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
}

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

func newCumDeltas(max int) cumDeltas { return cumDeltas{t: newKeyedLRU[uint64, cumCounts](max)} }

func (u *cumDeltas) delta(r *flow.Record, now int64) cumDelta {
	var q uint32
	if r.App != nil {
		q = r.App.DNSQueries
	}
	cur := cumCounts{out: r.OrigBytes, in: r.RespBytes, dur: int64(r.Duration()), queries: q}
	h := recordFlowHash(r)
	var d cumDelta
	d.dur = cur.dur
	if e := u.t.get(h, now); e != nil {
		d.out, d.in = satSub(cur.out, e.out), satSub(cur.in, e.in)
		d.queries = uint32(satSub(uint64(cur.queries), uint64(e.queries)))
		d.prevDur = e.dur
		if r.Final {
			u.t.remove(h)
		} else {
			*e = cumCounts{out: max(cur.out, e.out), in: max(cur.in, e.in), dur: max(cur.dur, e.dur),
				queries: max(cur.queries, e.queries)}
		}
		return d
	}
	d.out, d.in, d.queries, d.first = cur.out, cur.in, cur.queries, true
	if !r.Final {
		*u.t.insert(h, now) = cur
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

// fnv1aLower hashes s as if it were lower case (ASCII).
func fnv1aLower(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h = (h ^ uint64(c)) * fnv1aPrime
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
		return fnv1aString(fnv1aOffset, r.UID)
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
type keyedLRU[K comparable, V any] struct {
	index      map[K]int32
	ents       []keyedEntry[K, V]
	head, tail int32 // most and least recently used; -1 when empty
	free       int32 // free list through next; -1 when empty
	max        int
	evictions  uint64
	// onDrop, when set, sees every entry that is evicted or expired (to
	// account the memory its value holds).
	onDrop func(*K, *V)
}

type keyedEntry[K comparable, V any] struct {
	key        K
	val        V
	stamp      int64 // time of the last access
	prev, next int32
}

func newKeyedLRU[K comparable, V any](max int) *keyedLRU[K, V] {
	return &keyedLRU[K, V]{index: map[K]int32{}, head: -1, tail: -1, free: -1, max: max}
}

func (t *keyedLRU[K, V]) len() int { return len(t.index) }

// get returns k's value and marks it used at now, or nil.
func (t *keyedLRU[K, V]) get(k K, now int64) *V {
	i, ok := t.index[k]
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
	case len(t.index) >= t.max && t.tail >= 0:
		i = t.tail
		if t.onDrop != nil {
			t.onDrop(&t.ents[i].key, &t.ents[i].val)
		}
		t.unlink(i)
		delete(t.index, t.ents[i].key)
		t.evictions++
	case t.free >= 0:
		i = t.free
		t.free = t.ents[i].next
	default:
		t.ents = append(t.ents, keyedEntry[K, V]{})
		i = int32(len(t.ents) - 1)
	}
	t.ents[i] = keyedEntry[K, V]{key: k, stamp: now}
	t.index[k] = i
	t.pushFront(i)
	return &t.ents[i].val
}

func (t *keyedLRU[K, V]) remove(k K) {
	if i, ok := t.index[k]; ok {
		t.drop(i)
	}
}

func (t *keyedLRU[K, V]) drop(i int32) {
	t.unlink(i)
	delete(t.index, t.ents[i].key)
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

// bytes accounts the table's memory: its entry slice and its index (a key
// and an int32 per slot, slots at most 7/8 full, one control byte each).
func (t *keyedLRU[K, V]) bytes() int {
	var k K
	var e keyedEntry[K, V]
	return cap(t.ents)*int(unsafe.Sizeof(e)) + len(t.index)*(int(unsafe.Sizeof(k))+4+1)*8/7
}
