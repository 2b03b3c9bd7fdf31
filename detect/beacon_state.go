package detect

import (
	"math/bits"
	"net/netip"
	"unsafe"
)

// The beacon detector's bounded tables. Every table is a flat slice of
// pointer-free structs plus, where needed, a map from a 64-bit key to an
// index, so a million tracked pairs cost the garbage collector nothing to
// scan and a lookup never allocates.

// Hashing: fixed seeds, so that a replay evicts and collides the same way
// every time.

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// hashAddr hashes a 16-byte address with a tag (port, protocol, family).
func hashAddr(a *[16]byte, tag uint64) uint64 {
	hi := uint64(a[0])<<56 | uint64(a[1])<<48 | uint64(a[2])<<40 | uint64(a[3])<<32 |
		uint64(a[4])<<24 | uint64(a[5])<<16 | uint64(a[6])<<8 | uint64(a[7])
	lo := uint64(a[8])<<56 | uint64(a[9])<<48 | uint64(a[10])<<40 | uint64(a[11])<<32 |
		uint64(a[12])<<24 | uint64(a[13])<<16 | uint64(a[14])<<8 | uint64(a[15])
	return mix64(mix64(hi^0x9e3779b97f4a7c15) ^ lo ^ tag*0xbf58476d1ce4e5b9)
}

// hashName hashes a DNS name case-insensitively. The caller strips ports
// and trailing dots.
func hashName(s string) uint64 {
	return mix64(hashFold(s) ^ 0x6e616d65) // "name": names never share a hash space with addresses
}

func lowerEqual(stored []byte, s string) bool {
	if len(stored) != len(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if stored[i] != c {
			return false
		}
	}
	return true
}

// Hosts: the internal sources, interned so a pair's slot holds a 4-byte id
// instead of a 16-byte address.

type hostEntry struct {
	addr [16]byte
	is4  bool
	refs uint32 // slots naming this host; 0 means free
}

type hostTable struct {
	index   map[[16]byte]uint32 // address → id
	entries []hostEntry
	free    []uint32
}

func (t *hostTable) ref(a netip.Addr) uint32 {
	k := a.As16()
	if id, ok := t.index[k]; ok {
		t.entries[id].refs++
		return id
	}
	var id uint32
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		id = uint32(len(t.entries))
		t.entries = append(t.entries, hostEntry{})
	}
	t.entries[id] = hostEntry{addr: k, is4: a.Is4(), refs: 1}
	t.index[k] = id
	return id
}

// lookup returns a host's id without taking a reference.
func (t *hostTable) lookup(a netip.Addr) (uint32, bool) {
	id, ok := t.index[a.As16()]
	return id, ok
}

func (t *hostTable) unref(id uint32) {
	e := &t.entries[id]
	if e.refs--; e.refs == 0 {
		delete(t.index, e.addr)
		t.free = append(t.free, id)
	}
}

func (t *hostTable) addr(id uint32) netip.Addr {
	e := &t.entries[id]
	if e.is4 {
		return netip.AddrFrom4([4]byte(e.addr[12:]))
	}
	return netip.AddrFrom16(e.addr)
}

// live is the number of sources with state: the population prevalence is
// measured against.
func (t *hostTable) live() int { return len(t.index) }

func (t *hostTable) bytes() int {
	return cap(t.entries)*int(unsafe.Sizeof(hostEntry{})) + cap(t.free)*4 + mapBytes(len(t.index), 16+4)
}

// Destinations: an address with port and protocol, or a name. A
// destination's keyRefs is its prevalence: the number of internal sources
// with state about it (one slot per source and destination).

const (
	dstName uint8 = 1 << iota
	dstIs4
	dstChecked // the allowlist was consulted
	dstAllowed // and allows the name
)

type dstEntry struct {
	hash    uint64
	addr    [16]byte // address destinations
	nameOff uint32   // name destinations: the name is names[nameOff:nameOff+nameLen]
	keyRefs uint32   // slots (distinct sources)
	dnsRefs uint32   // DNS cache entries naming it
	port    uint16
	nameLen uint8
	proto   uint8
	flags   uint8
}

func (e *dstEntry) free() bool { return e.keyRefs == 0 && e.dnsRefs == 0 }

type dstTable struct {
	index   map[uint64]uint32 // hash → id
	entries []dstEntry
	free    []uint32
	names   []byte // arena of lower-case names
	dead    int    // arena bytes of freed names
}

// maxName bounds stored names (DNS names are at most 253 bytes).
const maxName = 255

func (t *dstTable) findAddr(h uint64, a *[16]byte, port uint16, proto uint8) (uint32, bool) {
	for {
		id, ok := t.index[h]
		if !ok {
			return 0, false
		}
		e := &t.entries[id]
		if e.flags&dstName == 0 && e.addr == *a && e.port == port && e.proto == proto {
			return id, true
		}
		h = rehash(h) // a 64-bit collision: probe on
	}
}

func (t *dstTable) findName(h uint64, name string) (uint32, uint64, bool) {
	for {
		id, ok := t.index[h]
		if !ok {
			return 0, h, false
		}
		e := &t.entries[id]
		if e.flags&dstName != 0 && lowerEqual(t.names[e.nameOff:e.nameOff+uint32(e.nameLen)], name) {
			return id, h, true
		}
		h = rehash(h)
	}
}

func rehash(h uint64) uint64 { return mix64(h + 0x632be59bd9b4e019) }

func (t *dstTable) alloc(h uint64) uint32 {
	var id uint32
	if n := len(t.free); n > 0 {
		id = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		id = uint32(len(t.entries))
		t.entries = append(t.entries, dstEntry{})
	}
	for {
		if _, taken := t.index[h]; !taken {
			break
		}
		h = rehash(h)
	}
	t.entries[id] = dstEntry{hash: h}
	t.index[h] = id
	return id
}

// addrID returns the id of an address destination, creating it.
func (t *dstTable) addrID(a netip.Addr, port uint16, proto uint8) uint32 {
	k := a.As16()
	h := hashAddr(&k, uint64(port)<<8|uint64(proto))
	if id, ok := t.findAddr(h, &k, port, proto); ok {
		return id
	}
	id := t.alloc(h)
	e := &t.entries[id]
	e.addr, e.port, e.proto = k, port, proto
	if a.Is4() {
		e.flags |= dstIs4
	}
	return id
}

// nameID returns the id of a name destination, creating it (the name is
// copied, lower-cased, into the arena).
func (t *dstTable) nameID(name string) uint32 {
	if len(name) > maxName {
		name = name[len(name)-maxName:]
	}
	return t.nameIDHash(name, hashName(name))
}

// nameIDHash is nameID for a name of at most maxName bytes whose hashName
// the caller has.
func (t *dstTable) nameIDHash(name string, h uint64) uint32 {
	id, h, ok := t.findName(h, name)
	if ok {
		return id
	}
	t.compact()
	id = t.alloc(h)
	e := &t.entries[id]
	e.flags = dstName
	e.nameOff, e.nameLen = uint32(len(t.names)), uint8(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		t.names = append(t.names, c)
	}
	return id
}

// isName reports whether id is the name destination for name (as nameID
// would find it).
func (t *dstTable) isName(id uint32, name string) bool {
	e := &t.entries[id]
	return e.flags&dstName != 0 && lowerEqual(t.names[e.nameOff:e.nameOff+uint32(e.nameLen)], name)
}

func (t *dstTable) release(id uint32) {
	e := &t.entries[id]
	if !e.free() {
		return
	}
	delete(t.index, e.hash)
	if e.flags&dstName != 0 {
		t.dead += int(e.nameLen)
	}
	*e = dstEntry{}
	t.free = append(t.free, id)
}

func (t *dstTable) unrefKey(id uint32) { t.entries[id].keyRefs--; t.release(id) }
func (t *dstTable) unrefDNS(id uint32) { t.entries[id].dnsRefs--; t.release(id) }

// compact rewrites the name arena once more than half of it (and at least
// 64 KiB) belongs to freed names.
func (t *dstTable) compact() {
	if t.dead < 64<<10 || t.dead*2 < len(t.names) {
		return
	}
	live := make([]byte, 0, len(t.names)-t.dead+len(t.names)/4)
	for i := range t.entries {
		e := &t.entries[i]
		if e.flags&dstName == 0 || e.free() {
			continue
		}
		off := uint32(len(live))
		live = append(live, t.names[e.nameOff:e.nameOff+uint32(e.nameLen)]...)
		e.nameOff = off
	}
	t.names, t.dead = live, 0
}

// name returns a name destination's name (a fresh string).
func (t *dstTable) name(id uint32) string {
	e := &t.entries[id]
	return string(t.names[e.nameOff : e.nameOff+uint32(e.nameLen)])
}

func (t *dstTable) addr(id uint32) netip.Addr {
	e := &t.entries[id]
	if e.flags&dstIs4 != 0 {
		return netip.AddrFrom4([4]byte(e.addr[12:]))
	}
	return netip.AddrFrom16(e.addr)
}

func (t *dstTable) bytes() int {
	return cap(t.entries)*int(unsafe.Sizeof(dstEntry{})) + cap(t.free)*4 + cap(t.names) + mapBytes(len(t.index), 16)
}

// DNS cache: which name a source resolved to an address, so flows without
// SNI or Host are keyed by the name the source asked for. It is per source
// on purpose: a CDN address serves benign names and a C2's alike, and only
// the source's own lookup tells which one it meant. Two-way set
// associative, the older entry of a set is replaced once the cache has its
// full size; below that it doubles instead of replacing, so that a sensor
// that sees few hosts keeps a cache that fits the CPU caches (every
// outbound record without a name probes it).

type dnsEntry struct {
	key  uint64 // hash of (source, address); 0 is empty
	hash uint64 // hashName of the name
	name uint32 // dst id of the name
	when uint32 // deciseconds, for replacement
}

type dnsCache struct {
	sets []dnsEntry // 2 entries per set
	mask uint64
	max  int // entries at full size
}

// dnsCacheStart is the entries a cache starts with.
const dnsCacheStart = 1 << 10

func newDNSCache(entries int) dnsCache {
	n := 1 << bits.Len(uint(max(entries, dnsCacheStart)-1))
	c := dnsCache{max: n}
	c.alloc(min(n, dnsCacheStart))
	return c
}

func (c *dnsCache) alloc(n int) {
	c.sets, c.mask = make([]dnsEntry, n), uint64(n/2-1)
}

func (c *dnsCache) lookup(key uint64) (*dnsEntry, bool) {
	if key == 0 {
		key = 1
	}
	i := (key & c.mask) * 2
	for j := i; j < i+2; j++ {
		if c.sets[j].key == key {
			return &c.sets[j], true
		}
	}
	return nil, false
}

// put maps key to a name and returns the name id it displaced, if any.
func (c *dnsCache) put(key, hash uint64, name, now uint32) (old uint32, displaced bool) {
	if key == 0 {
		key = 1
	}
	for {
		i := (key & c.mask) * 2
		victim := i
		for j := i; j < i+2; j++ {
			e := &c.sets[j]
			if e.key == key {
				old, e.hash, e.name, e.when = e.name, hash, name, now
				return old, true
			}
			if e.key == 0 {
				*e = dnsEntry{key: key, hash: hash, name: name, when: now}
				return 0, false
			}
			if e.when < c.sets[victim].when {
				victim = j
			}
		}
		if len(c.sets) < c.max {
			c.grow()
			continue
		}
		e := &c.sets[victim]
		old = e.name
		*e = dnsEntry{key: key, hash: hash, name: name, when: now}
		return old, true
	}
}

// grow doubles the cache. The entries of a set split between two sets of
// the new one by one more bit of their key, so all of them fit.
func (c *dnsCache) grow() {
	prev := c.sets
	c.alloc(2 * len(prev))
	for _, e := range prev {
		if e.key == 0 {
			continue
		}
		i := (e.key & c.mask) * 2
		if c.sets[i].key != 0 {
			i++
		}
		c.sets[i] = e
	}
}

func (c *dnsCache) bytes() int { return cap(c.sets) * int(unsafe.Sizeof(dnsEntry{})) }

// Seen-connection filter: a connection that lasts longer than the sensor's
// active timeout reaches the detector several times (interim records, then
// the final one) under one UID; it must count as one beat. Only such long
// records consult the filter, so a small direct-mapped table of UID hashes
// suffices; a collision can at worst count one connection twice.

type uidFilter struct {
	tab  []uint64
	mask uint64
}

func newUIDFilter(n int) uidFilter {
	n = 1 << bits.Len(uint(max(n, 256)-1))
	return uidFilter{tab: make([]uint64, n), mask: uint64(n - 1)}
}

func hashUID(uid string) uint64 {
	h := mix64(hashString(uid))
	if h == 0 {
		h = 1
	}
	return h
}

// seen reports whether the connection was seen before and remembers it
// (forgets it when final).
func (f *uidFilter) seen(h uint64, final bool) bool {
	e := &f.tab[h&f.mask]
	was := *e == h
	switch {
	case final && was:
		*e = 0
	case !final:
		*e = h
	}
	return was
}

func (f *uidFilter) bytes() int { return cap(f.tab) * 8 }

// mapBytes estimates the memory of a Go map with n entries whose key and
// value take slot bytes together (padded to their alignment): Swiss-table
// slots plus a control byte each, the table doubling once it is 7/8 full.
func mapBytes(n, slot int) int {
	if n == 0 {
		return 0
	}
	c := 8
	for c*7/8 < n {
		c *= 2
	}
	return c * (slot + 1)
}
