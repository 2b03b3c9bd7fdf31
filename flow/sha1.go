package flow

import (
	"encoding/binary"
	"math/bits"
)

// sha1Short returns the SHA-1 digest (FIPS 180-4) of a message of at most
// 55 bytes, which pads to a single 64-byte block. A Community ID input is
// at most 40 bytes, and one is hashed per flow record: doing the one block
// with the rounds unrolled and no digest state to set up and pad through
// is about twice as fast as crypto/sha1.Sum on machines without SHA
// instructions. It panics if msg is longer than 55 bytes.
func sha1Short(msg []byte) (sum [20]byte) {
	if len(msg) > 55 {
		panic("flow: sha1Short message longer than one block")
	}
	var blk [64]byte
	copy(blk[:], msg)
	blk[len(msg)] = 0x80
	binary.BigEndian.PutUint64(blk[56:], uint64(len(msg))*8)

	var w [80]uint32
	for i := range 16 {
		w[i] = binary.BigEndian.Uint32(blk[4*i:])
	}
	for i := 16; i < 80; i++ {
		w[i] = bits.RotateLeft32(w[i-3]^w[i-8]^w[i-14]^w[i-16], 1)
	}

	const (
		h0 = 0x67452301
		h1 = 0xEFCDAB89
		h2 = 0x98BADCFE
		h3 = 0x10325476
		h4 = 0xC3D2E1F0
	)
	a, b, c, d, e := uint32(h0), uint32(h1), uint32(h2), uint32(h3), uint32(h4)
	// Five rounds per iteration, the roles of a..e rotating through the
	// variables instead of being moved. Each round adds the previous
	// round's result last, so that only a rotate and an add lie on the
	// dependency chain from round to round.
	for i := 0; i < 20; i += 5 {
		e += (d ^ (b & (c ^ d))) + 0x5A827999 + w[i]
		e += bits.RotateLeft32(a, 5)
		b = bits.RotateLeft32(b, 30)
		d += (c ^ (a & (b ^ c))) + 0x5A827999 + w[i+1]
		d += bits.RotateLeft32(e, 5)
		a = bits.RotateLeft32(a, 30)
		c += (b ^ (e & (a ^ b))) + 0x5A827999 + w[i+2]
		c += bits.RotateLeft32(d, 5)
		e = bits.RotateLeft32(e, 30)
		b += (a ^ (d & (e ^ a))) + 0x5A827999 + w[i+3]
		b += bits.RotateLeft32(c, 5)
		d = bits.RotateLeft32(d, 30)
		a += (e ^ (c & (d ^ e))) + 0x5A827999 + w[i+4]
		a += bits.RotateLeft32(b, 5)
		c = bits.RotateLeft32(c, 30)
	}
	for i := 20; i < 40; i += 5 {
		e += (b ^ c ^ d) + 0x6ED9EBA1 + w[i]
		e += bits.RotateLeft32(a, 5)
		b = bits.RotateLeft32(b, 30)
		d += (a ^ b ^ c) + 0x6ED9EBA1 + w[i+1]
		d += bits.RotateLeft32(e, 5)
		a = bits.RotateLeft32(a, 30)
		c += (e ^ a ^ b) + 0x6ED9EBA1 + w[i+2]
		c += bits.RotateLeft32(d, 5)
		e = bits.RotateLeft32(e, 30)
		b += (d ^ e ^ a) + 0x6ED9EBA1 + w[i+3]
		b += bits.RotateLeft32(c, 5)
		d = bits.RotateLeft32(d, 30)
		a += (c ^ d ^ e) + 0x6ED9EBA1 + w[i+4]
		a += bits.RotateLeft32(b, 5)
		c = bits.RotateLeft32(c, 30)
	}
	for i := 40; i < 60; i += 5 {
		e += ((b & c) | (d & (b | c))) + 0x8F1BBCDC + w[i]
		e += bits.RotateLeft32(a, 5)
		b = bits.RotateLeft32(b, 30)
		d += ((a & b) | (c & (a | b))) + 0x8F1BBCDC + w[i+1]
		d += bits.RotateLeft32(e, 5)
		a = bits.RotateLeft32(a, 30)
		c += ((e & a) | (b & (e | a))) + 0x8F1BBCDC + w[i+2]
		c += bits.RotateLeft32(d, 5)
		e = bits.RotateLeft32(e, 30)
		b += ((d & e) | (a & (d | e))) + 0x8F1BBCDC + w[i+3]
		b += bits.RotateLeft32(c, 5)
		d = bits.RotateLeft32(d, 30)
		a += ((c & d) | (e & (c | d))) + 0x8F1BBCDC + w[i+4]
		a += bits.RotateLeft32(b, 5)
		c = bits.RotateLeft32(c, 30)
	}
	for i := 60; i < 80; i += 5 {
		e += (b ^ c ^ d) + 0xCA62C1D6 + w[i]
		e += bits.RotateLeft32(a, 5)
		b = bits.RotateLeft32(b, 30)
		d += (a ^ b ^ c) + 0xCA62C1D6 + w[i+1]
		d += bits.RotateLeft32(e, 5)
		a = bits.RotateLeft32(a, 30)
		c += (e ^ a ^ b) + 0xCA62C1D6 + w[i+2]
		c += bits.RotateLeft32(d, 5)
		e = bits.RotateLeft32(e, 30)
		b += (d ^ e ^ a) + 0xCA62C1D6 + w[i+3]
		b += bits.RotateLeft32(c, 5)
		d = bits.RotateLeft32(d, 30)
		a += (c ^ d ^ e) + 0xCA62C1D6 + w[i+4]
		a += bits.RotateLeft32(b, 5)
		c = bits.RotateLeft32(c, 30)
	}
	binary.BigEndian.PutUint32(sum[0:], a+h0)
	binary.BigEndian.PutUint32(sum[4:], b+h1)
	binary.BigEndian.PutUint32(sum[8:], c+h2)
	binary.BigEndian.PutUint32(sum[12:], d+h3)
	binary.BigEndian.PutUint32(sum[16:], e+h4)
	return sum
}
