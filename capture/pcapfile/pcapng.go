package pcapfile

import (
	"encoding/binary"
	"io"
	"math"
	"math/bits"
	"strconv"
)

// pcapng block types.
const (
	blockSHB = 0x0a0d0d0a // the same in both byte orders
	blockIDB = 0x00000001
	blockPB  = 0x00000002 // obsolete Packet Block
	blockSPB = 0x00000003
	blockEPB = 0x00000006
)

// Minimum lengths of the blocks we parse, header and trailer included.
const (
	minBlock = 12
	minSHB   = 28
	minIDB   = 20
	minSPB   = 16
	minEPB   = 32 // also the obsolete Packet Block
)

// maxBlock bounds the blocks that are buffered whole to be parsed: a
// packet block holds at most MaxSnaplen of data plus options. Blocks we
// skip may be of any length.
const maxBlock = 8 << 20

const (
	optEndOfOpt   = 0
	optIfTsresol  = 9
	optIfTsoffset = 14
)

const bomLittle = 0x1a2b3c4d // the byte-order magic as read little-endian

// iface is an Interface Description Block reduced to what packets need.
// A timestamp in ticks becomes (ticks*mul/div)>>shift nanoseconds, plus
// offset.
type iface struct {
	link    LinkType
	snaplen uint32
	mul     uint64
	div     uint64
	shift   uint
	offset  int64
}

// setResolution applies an if_tsresol value: 10^-v seconds, or 2^-v with
// the top bit set.
func (f *iface) setResolution(v byte) {
	f.mul, f.div, f.shift = 1, 1, 0
	e := uint(v & 0x7f)
	switch {
	case v&0x80 != 0:
		f.mul, f.shift = 1e9, e
	case e <= 9:
		f.mul = pow10(9 - e)
	case e-9 <= 19:
		f.div = pow10(e - 9)
	default:
		f.mul = 0 // ticks smaller than 1e-29 s: any uint64 count is under 1 ns
	}
}

func pow10(e uint) uint64 {
	v := uint64(1)
	for ; e > 0; e-- {
		v *= 10
	}
	return v
}

// nanos converts ticks to ns since the epoch, saturating instead of
// wrapping for absurd values.
func (f *iface) nanos(ticks uint64) int64 {
	hi, lo := bits.Mul64(ticks, f.mul)
	if f.shift > 0 {
		if f.shift >= 64 {
			hi, lo = 0, hi>>(f.shift-64)
		} else {
			hi, lo = hi>>f.shift, lo>>f.shift|hi<<(64-f.shift)
		}
	}
	if f.div > 1 {
		if hi >= f.div {
			return math.MaxInt64
		}
		lo, _ = bits.Div64(hi, lo, f.div)
		hi = 0
	}
	if hi != 0 || lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(lo) + f.offset
}

// nextBlock reads blocks until a packet, handling the section and interface
// blocks on the way.
func (r *Reader) nextBlock(p *Packet) error {
	for {
		off := r.in.offset()
		h, err := r.in.peek(8)
		if err != nil {
			if len(h) == 0 && err == io.EOF {
				return r.end()
			}
			return r.short(off, err, "truncated block header: %d of 8 bytes", len(h))
		}
		typ := r.u32(h)
		if typ == blockSHB {
			if err := r.readSHB(); err != nil {
				return err
			}
			continue
		}
		blen := r.u32(h[4:])
		switch typ {
		case blockEPB, blockPB:
			return r.readPacket(p, off, typ, blen)
		case blockSPB:
			return r.readSimplePacket(p, off, blen)
		case blockIDB:
			err = r.readIDB(off, blen)
		default:
			err = r.skipBlock(off, typ, blen)
		}
		if err != nil {
			return err
		}
	}
}

// block returns the whole block at off after checking its length fields.
// It does not consume it.
func (r *Reader) block(off int64, typ, blen uint32, min int) ([]byte, error) {
	if err := r.checkLength(off, typ, blen, min); err != nil {
		return nil, err
	}
	if blen > maxBlock {
		return nil, r.fail(off, ErrMalformed, "%s length %d exceeds the %d-byte limit", blockName(typ), blen, maxBlock)
	}
	b, err := r.in.peek(int(blen))
	if err != nil {
		return nil, r.short(off, err, "truncated block: header says %d bytes, %d left", blen, len(b))
	}
	if t := r.u32(b[blen-4:]); t != blen {
		return nil, r.fail(off, ErrMalformed, "%s length %d does not match its trailing length %d", blockName(typ), blen, t)
	}
	return b, nil
}

func (r *Reader) checkLength(off int64, typ, blen uint32, min int) error {
	if blen%4 != 0 {
		return r.fail(off, ErrMalformed, "%s length %d is not a multiple of 4", blockName(typ), blen)
	}
	if blen < uint32(min) {
		return r.fail(off, ErrMalformed, "%s length %d is below the %d-byte minimum", blockName(typ), blen, min)
	}
	return nil
}

// readSHB starts a new section: its byte order, and no interfaces yet.
func (r *Reader) readSHB() error {
	off := r.in.offset()
	h, err := r.in.peek(12)
	if err != nil {
		return r.short(off, err, "truncated section header: %d of 12 bytes", len(h))
	}
	switch bom := binary.LittleEndian.Uint32(h[8:]); bom {
	case bomLittle:
		r.be = false
	case swap32(bomLittle):
		r.be = true
	default:
		return r.fail(off, ErrMalformed, "unknown byte-order magic %#08x in section header", bom)
	}
	blen := r.u32(h[4:])
	b, err := r.block(off, blockSHB, blen, minSHB)
	if err != nil {
		return err
	}
	if major, minor := r.u16(b[12:]), r.u16(b[14:]); major != 1 {
		return r.fail(off, ErrUnsupported, "unsupported section header version %d.%d", major, minor)
	}
	if err := r.options(off, b[24:blen-4], nil); err != nil {
		return err
	}
	r.ifaces = r.ifaces[:0]
	r.in.consume(int(blen))
	return nil
}

func (r *Reader) readIDB(off int64, blen uint32) error {
	b, err := r.block(off, blockIDB, blen, minIDB)
	if err != nil {
		return err
	}
	f := iface{link: LinkType(r.u16(b[8:])), snaplen: r.u32(b[12:])}
	res := byte(6) // microseconds unless if_tsresol says otherwise
	var offset int64
	err = r.options(off, b[16:blen-4], func(code uint16, val []byte) {
		switch {
		case code == optIfTsresol && len(val) >= 1:
			res = val[0]
		case code == optIfTsoffset && len(val) >= 8:
			offset = int64(r.u64(val)) * 1e9
		}
	})
	if err != nil {
		return err
	}
	f.setResolution(res)
	f.offset = offset
	r.ifaces = append(r.ifaces, f)
	r.in.consume(int(blen))
	return nil
}

// options walks the options in b, calling fn (if not nil) for each.
func (r *Reader) options(off int64, b []byte, fn func(code uint16, val []byte)) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return r.fail(off, ErrMalformed, "option header runs past the end of the block")
		}
		code, n := r.u16(b), int(r.u16(b[2:]))
		if code == optEndOfOpt {
			return nil
		}
		padded := (n + 3) &^ 3
		if padded > len(b)-4 {
			return r.fail(off, ErrMalformed, "option %d of %d bytes runs past the end of the block", code, n)
		}
		if fn != nil {
			fn(code, b[4:4+n])
		}
		b = b[4+padded:]
	}
	return nil
}

// readPacket reads an Enhanced Packet Block or an obsolete Packet Block;
// the two differ only in the width of the interface id.
func (r *Reader) readPacket(p *Packet, off int64, typ, blen uint32) error {
	b, err := r.block(off, typ, blen, minEPB)
	if err != nil {
		return err
	}
	id := r.u32(b[8:])
	if typ == blockPB {
		id = uint32(r.u16(b[8:]))
	}
	if id >= uint32(len(r.ifaces)) {
		return r.fail(off, ErrMalformed, "packet refers to interface %d but the section has %d", id, len(r.ifaces))
	}
	caplen, wire := r.u32(b[20:]), r.u32(b[24:])
	if caplen > MaxSnaplen {
		return r.fail(off, ErrMalformed, "caplen %d exceeds the %d-byte limit", caplen, MaxSnaplen)
	}
	if (caplen+3)&^3 > blen-minEPB {
		return r.fail(off, ErrMalformed, "caplen %d overruns the %d-byte %s", caplen, blen, blockName(typ))
	}
	f := &r.ifaces[id]
	ts := f.nanos(uint64(r.u32(b[12:]))<<32 | uint64(r.u32(b[16:])))
	end := 28 + int(caplen)
	p.set(b[28:end:end], ts, int(wire), f.link, int(id), r.index)
	r.lastTS = ts
	r.index++
	r.in.consume(int(blen))
	return nil
}

// readSimplePacket reads a Simple Packet Block: interface 0, no timestamp
// (it takes the previous packet's), and a captured length that is the
// original length cut to the snaplen and to the block.
func (r *Reader) readSimplePacket(p *Packet, off int64, blen uint32) error {
	b, err := r.block(off, blockSPB, blen, minSPB)
	if err != nil {
		return err
	}
	if len(r.ifaces) == 0 {
		return r.fail(off, ErrMalformed, "simple packet block but the section has no interface")
	}
	f := &r.ifaces[0]
	wire := r.u32(b[8:])
	caplen := wire
	if f.snaplen != 0 {
		caplen = min(caplen, f.snaplen)
	}
	caplen = min(caplen, blen-minSPB)
	if caplen > MaxSnaplen {
		return r.fail(off, ErrMalformed, "caplen %d exceeds the %d-byte limit", caplen, MaxSnaplen)
	}
	end := 12 + int(caplen)
	p.set(b[12:end:end], r.lastTS, int(wire), f.link, 0, r.index)
	r.index++
	r.in.consume(int(blen))
	return nil
}

// skipBlock passes over a block we do not use without buffering it.
func (r *Reader) skipBlock(off int64, typ, blen uint32) error {
	if err := r.checkLength(off, typ, blen, minBlock); err != nil {
		return err
	}
	n, err := r.in.skip(int64(blen) - 4)
	if err != nil {
		return r.short(off, err, "truncated block: header says %d bytes, %d left", blen, n)
	}
	t, err := r.in.peek(4)
	if err != nil {
		return r.short(off, err, "truncated block: header says %d bytes, %d left", blen, n+int64(len(t)))
	}
	if v := r.u32(t); v != blen {
		return r.fail(off, ErrMalformed, "%s length %d does not match its trailing length %d", blockName(typ), blen, v)
	}
	r.in.consume(4)
	return nil
}

func blockName(typ uint32) string {
	switch typ {
	case blockSHB:
		return "section header block"
	case blockIDB:
		return "interface description block"
	case blockPB:
		return "packet block"
	case blockSPB:
		return "simple packet block"
	case blockEPB:
		return "enhanced packet block"
	}
	return "block type 0x" + strconv.FormatUint(uint64(typ), 16)
}
