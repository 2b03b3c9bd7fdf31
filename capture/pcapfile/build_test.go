package pcapfile

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
)

// Builders for handcrafted capture files. They write exactly what they are
// told, including nonsense, so tests can describe broken files too.

// order is binary.LittleEndian or binary.BigEndian.
type order interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

var (
	le order = binary.LittleEndian
	be order = binary.BigEndian
)

type rec struct {
	sec, frac uint32
	wire      uint32 // 0: len(data)
	data      []byte
	swapped   bool // len before caplen, as before pcap 2.3
}

// pcapFile builds a pcap file with the given magic (as it reads in the
// file's own byte order), version 2.4.
func pcapFile(bo order, magic uint32, network uint32, recs ...rec) []byte {
	return pcapFileV(bo, magic, 2, 4, network, recs...)
}

func pcapFileV(bo order, magic uint32, major, minor uint16, network uint32, recs ...rec) []byte {
	var b []byte
	b = bo.AppendUint32(b, magic)
	b = bo.AppendUint16(b, major)
	b = bo.AppendUint16(b, minor)
	b = bo.AppendUint32(b, 0)     // thiszone
	b = bo.AppendUint32(b, 0)     // sigfigs
	b = bo.AppendUint32(b, 65535) // snaplen
	b = bo.AppendUint32(b, network)
	for _, r := range recs {
		b = append(b, pcapRec(bo, magic == magicModified, r)...)
	}
	return b
}

func pcapRec(bo order, modified bool, r rec) []byte {
	wire := r.wire
	if wire == 0 {
		wire = uint32(len(r.data))
	}
	var b []byte
	b = bo.AppendUint32(b, r.sec)
	b = bo.AppendUint32(b, r.frac)
	if r.swapped {
		b = bo.AppendUint32(b, wire)
		b = bo.AppendUint32(b, uint32(len(r.data)))
	} else {
		b = bo.AppendUint32(b, uint32(len(r.data)))
		b = bo.AppendUint32(b, wire)
	}
	if modified {
		b = append(b, 0, 0, 0, 2, 0x08, 0x00, 0, 0) // ifindex, protocol, pkt_type, pad
	}
	return append(b, r.data...)
}

// ngBlock frames body as a pcapng block, padding it to 4 bytes.
func ngBlock(bo order, typ uint32, body []byte) []byte {
	body = pad4(body)
	n := uint32(12 + len(body))
	var b []byte
	b = bo.AppendUint32(b, typ)
	b = bo.AppendUint32(b, n)
	b = append(b, body...)
	return bo.AppendUint32(b, n)
}

func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func ngSHB(bo order, major, minor uint16, opts ...[]byte) []byte {
	var b []byte
	b = bo.AppendUint32(b, bomLittle)
	b = bo.AppendUint16(b, major)
	b = bo.AppendUint16(b, minor)
	b = bo.AppendUint64(b, ^uint64(0)) // section length unknown
	for _, o := range opts {
		b = append(b, o...)
	}
	return ngBlock(bo, blockSHB, b)
}

func ngIDB(bo order, link LinkType, snaplen uint32, opts ...[]byte) []byte {
	var b []byte
	b = bo.AppendUint16(b, uint16(link))
	b = bo.AppendUint16(b, 0)
	b = bo.AppendUint32(b, snaplen)
	for _, o := range opts {
		b = append(b, o...)
	}
	if len(opts) > 0 {
		b = append(b, ngOpt(bo, optEndOfOpt, nil)...)
	}
	return ngBlock(bo, blockIDB, b)
}

func ngOpt(bo order, code uint16, val []byte) []byte {
	var b []byte
	b = bo.AppendUint16(b, code)
	b = bo.AppendUint16(b, uint16(len(val)))
	return append(b, pad4(append([]byte(nil), val...))...)
}

func ngEPB(bo order, id uint32, ts uint64, wire uint32, data []byte) []byte {
	return ngPacket(bo, blockEPB, id, ts, wire, data)
}

// ngPB builds the obsolete Packet Block: a 16-bit interface id and a drop
// count where the EPB has its 32-bit id.
func ngPB(bo order, id uint16, ts uint64, wire uint32, data []byte) []byte {
	var idDrops [4]byte
	bo.PutUint16(idDrops[:], id)
	bo.PutUint16(idDrops[2:], 7)
	return ngPacket(bo, blockPB, bo.Uint32(idDrops[:]), ts, wire, data)
}

func ngPacket(bo order, typ, id uint32, ts uint64, wire uint32, data []byte) []byte {
	if wire == 0 {
		wire = uint32(len(data))
	}
	var b []byte
	b = bo.AppendUint32(b, id)
	b = bo.AppendUint32(b, uint32(ts>>32))
	b = bo.AppendUint32(b, uint32(ts))
	b = bo.AppendUint32(b, uint32(len(data)))
	b = bo.AppendUint32(b, wire)
	b = append(b, data...)
	return ngBlock(bo, typ, b)
}

func ngSPB(bo order, wire uint32, data []byte) []byte {
	b := bo.AppendUint32(nil, wire)
	return ngBlock(bo, blockSPB, append(b, data...))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// frame returns n bytes of recognisable payload.
func frame(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

// put32 overwrites 4 bytes at off in a copy of b.
func put32(bo order, b []byte, off int, v uint32) []byte {
	b = append([]byte(nil), b...)
	bo.PutUint32(b[off:], v)
	return b
}
