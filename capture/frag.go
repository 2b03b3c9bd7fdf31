package capture

import (
	"bytes"
	"cmp"
	"slices"
	"time"
)

// fragTable remembers, for recent fragmented datagrams, which flow their
// first fragment (the one with the ports) went to, so that later fragments
// are counted to the same flow. Fragments that arrive before their first
// fragment wait in a pending entry and are credited when it arrives, or
// counted to a portless flow when it never does.
type fragTable struct {
	m map[fragKey]fragEntry
}

type fragKey struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
}

type fragEntry struct {
	idx     uint32  // flow index, 0 while pending
	key     flowKey // of the flow at idx, to spot a slot reused by another flow
	fromA   bool
	seen    int64
	pending pendingFrags
}

type pendingFrags struct {
	pkts, ipBytes, frameBytes, payload uint64
	first, last                        int64
}

// fragTimeout is how long fragments of one datagram are associated, in
// packet time (Linux's ipfrag_time is 30 s).
const fragTimeout = int64(30 * time.Second)

// maxFragEntries bounds the table against fragment floods.
const maxFragEntries = 1 << 16

func (ft *fragTable) init() { ft.m = make(map[fragKey]fragEntry) }

func fragKeyOf(d *Decoded) fragKey {
	return fragKey{src: d.FragSrc, dst: d.FragDst, id: d.FragID, proto: d.FragProto}
}

// firstFragment records the flow of a first fragment (the one with the
// ports) and credits any later fragments that arrived before it.
func (t *Table) firstFragment(d *Decoded, idx uint32, fromA bool, ts int64) {
	ft := &t.frags
	k := fragKeyOf(d)
	e, ok := ft.m[k]
	if !ok && len(ft.m) >= maxFragEntries {
		return
	}
	f := &t.flows[idx]
	if e.pending.pkts > 0 {
		side := 1
		if fromA {
			side = 0
		}
		t.credit(f, side, &e.pending)
		e.pending = pendingFrags{}
	}
	e.idx, e.key, e.fromA, e.seen = idx, f.key, fromA, ts
	ft.m[k] = e
}

// addFragment counts a fragment that carries no transport header.
func (t *Table) addFragment(d *Decoded, ts int64, wireLen int) {
	t.stats.Fragments++
	ft := &t.frags
	k := fragKeyOf(d)
	e, ok := ft.m[k]
	if ok && e.idx != 0 {
		f := &t.flows[e.idx]
		if f.live && f.key == e.key {
			side := 1
			if e.fromA {
				side = 0
			}
			if e.pending.pkts > 0 {
				t.credit(f, side, &e.pending)
				e.pending = pendingFrags{}
			}
			p := pktOf(d)
			f.update(&p, side, ts, wireLen)
			t.stats.Packets++
			e.seen = ts
			ft.m[k] = e
			return
		}
		e = fragEntry{}
	}
	if !ok && len(ft.m) >= maxFragEntries {
		t.orphan(d, ts, wireLen)
		return
	}
	p := &e.pending
	if p.pkts == 0 {
		p.first = ts
	}
	p.pkts++
	p.ipBytes += uint64(d.IPLen)
	p.frameBytes += uint64(wireLen)
	p.payload += uint64(max(d.PayloadLen, 0))
	p.last = ts
	e.seen = ts
	ft.m[k] = e
}

// credit adds pending fragment counts to a flow.
func (t *Table) credit(f *flowState, side int, p *pendingFrags) {
	ds := &f.dir[side]
	ds.pkts += p.pkts
	ds.ipBytes += p.ipBytes
	ds.frameBytes += p.frameBytes
	ds.payload += p.payload
	f.fragments = true
	if p.first < f.first {
		f.first = p.first
	}
	if p.last > f.last {
		f.last = p.last
	}
	t.stats.Packets += p.pkts
}

// orphan counts a fragment whose first fragment is unknown into a flow
// without ports, so its bytes are not lost.
func (t *Table) orphan(d *Decoded, ts int64, wireLen int) {
	t.stats.FragOrphans++
	d.HasPorts, d.SrcPort, d.DstPort = false, 0, 0
	d.Frag, d.FragOffset = false, 0
	d.TCPFlags = 0
	t.Add(d, ts, wireLen)
}

// expire drops old entries; pending fragments that never met their first
// fragment become a portless flow.
func (ft *fragTable) expire(now int64, t *Table) {
	if len(ft.m) == 0 {
		return
	}
	var orphans []fragKey
	for k, e := range ft.m {
		if now-e.seen < fragTimeout {
			continue
		}
		if e.pending.pkts > 0 {
			orphans = append(orphans, k)
			continue
		}
		delete(ft.m, k)
	}
	// Map order is random; sort so that replays emit the same flows in the
	// same order.
	slices.SortFunc(orphans, func(x, y fragKey) int {
		if c := cmp.Compare(ft.m[x].pending.first, ft.m[y].pending.first); c != 0 {
			return c
		}
		if c := bytes.Compare(x.src[:], y.src[:]); c != 0 {
			return c
		}
		if c := bytes.Compare(x.dst[:], y.dst[:]); c != 0 {
			return c
		}
		return cmp.Compare(uint64(x.id)<<8|uint64(x.proto), uint64(y.id)<<8|uint64(y.proto))
	})
	for _, k := range orphans {
		e := ft.m[k]
		delete(ft.m, k)
		if p := e.pending; p.pkts > 0 {
			t.stats.FragOrphans += p.pkts
			var d Decoded
			d.HasIP, d.Src, d.Dst, d.Proto = true, k.src, k.dst, k.proto
			d.IPv6 = [12]byte(k.src[:12]) != v4Prefix
			kk, fromA := makeKey(&d)
			kk.clearPorts()
			h := kk.hash(t.cfg.Seed)
			idx := t.lookup(&kk, h)
			if idx == 0 {
				idx = t.insert(&kk, h, &d, fromA, p.first)
			}
			f := &t.flows[idx]
			side := 1
			if fromA {
				side = 0
			}
			t.credit(f, side, &p)
		}
	}
}
