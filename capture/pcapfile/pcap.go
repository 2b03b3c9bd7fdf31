package pcapfile

import (
	"encoding/binary"
	"io"
)

// pcap magics as read little-endian from the first four bytes.
const (
	magicMicro    = 0xa1b2c3d4
	magicNano     = 0xa1b23c4d
	magicModified = 0xa1b2cd34 // Kuznetzov's patched libpcap: 24-byte record header
)

// swapMode says whether a record header's caplen and len fields are in
// the order of pcap 2.4, following libpcap: files before 2.3 (and DG/UX's
// 543.0) have them swapped, 2.3 files may have either order.
type swapMode uint8

const (
	swapNever swapMode = iota
	swapAlways
	swapIfCaplenLarger
)

func (r *Reader) readPcapHeader() error {
	h, err := r.in.peek(24)
	if err != nil {
		return r.short(0, err, "file too short for a pcap header: %d of 24 bytes", len(h))
	}
	r.recLen, r.fracMul = 16, 1000
	switch m := binary.LittleEndian.Uint32(h); m {
	case magicMicro, magicNano, magicModified:
	case swap32(magicMicro), swap32(magicNano), swap32(magicModified):
		r.be = true
	default:
		return r.fail(0, ErrNotCapture, "unknown magic %02x %02x %02x %02x", h[0], h[1], h[2], h[3])
	}
	switch r.u32(h) {
	case magicNano:
		r.fracMul = 1
	case magicModified:
		r.recLen = 24
	}
	major, minor := r.u16(h[4:]), r.u16(h[6:])
	switch {
	case major < 2:
		return r.fail(0, ErrUnsupported, "unsupported pcap version %d.%d", major, minor)
	case major == 2 && minor < 3, major == 543:
		r.swap = swapAlways
	case major == 2 && minor == 3:
		r.swap = swapIfCaplenLarger
	}
	r.link = LinkType(r.u32(h[20:])) // the upper 16 bits carry FCS information
	r.in.consume(24)
	return nil
}

func (r *Reader) nextRecord(p *Packet) error {
	off := r.in.offset()
	h, err := r.in.peek(r.recLen)
	if err != nil {
		if len(h) == 0 && err == io.EOF {
			return r.end()
		}
		return r.short(off, err, "truncated record header: %d of %d bytes", len(h), r.recLen)
	}
	sec, frac := r.u32(h), r.u32(h[4:])
	caplen, wire := r.u32(h[8:]), r.u32(h[12:])
	if r.swap == swapAlways || r.swap == swapIfCaplenLarger && caplen > wire {
		caplen, wire = wire, caplen
	}
	if caplen > MaxSnaplen {
		return r.fail(off, ErrMalformed, "caplen %d exceeds the %d-byte limit", caplen, MaxSnaplen)
	}
	n := r.recLen + int(caplen)
	rec, err := r.in.peek(n)
	if err != nil {
		return r.short(off, err, "truncated record: header says %d bytes, %d left", caplen, len(rec)-r.recLen)
	}
	r.in.consume(n)
	p.set(rec[r.recLen:n:n], int64(sec)*1e9+int64(frac)*r.fracMul, int(wire), r.link, 0, r.index)
	r.index++
	return nil
}

// nextRecordsMapped is nextRecord for a run of packets of a mapped file:
// it fills ps with the records that are plainly whole, the common case,
// without the per-record bookkeeping of the general path, and returns how
// many. It stops before anything else (a short or oversized record, the
// end of the file) and leaves that to nextRecord, so that problems are
// reported by one code path.
func (r *Reader) nextRecordsMapped(ps []Packet) int {
	in := &r.in
	buf, pos, end := in.buf, in.pos, in.end
	hl := r.recLen
	n := 0
	for n < len(ps) && end-pos >= hl {
		if pos+prefetchAhead-in.pf >= prefetchStep {
			in.pos = pos
			in.prefetch()
		}
		h := buf[pos : pos+hl]
		caplen, wire := r.u32(h[8:]), r.u32(h[12:])
		if r.swap == swapAlways || r.swap == swapIfCaplenLarger && caplen > wire {
			caplen, wire = wire, caplen
		}
		if caplen > MaxSnaplen || int(caplen) > end-pos-hl {
			break
		}
		next := pos + hl + int(caplen)
		ps[n].set(buf[pos+hl:next:next], int64(r.u32(h))*1e9+int64(r.u32(h[4:]))*r.fracMul, int(wire), r.link, 0, r.index)
		r.index++
		pos = next
		n++
	}
	in.pos = pos
	return n
}

func swap32(v uint32) uint32 {
	return v>>24 | v>>8&0xff00 | v<<8&0xff0000 | v<<24
}
