package flow

import (
	"encoding/binary"
	"math/bits"
)

// sha1Short returns the SHA-1 digest (FIPS 180-4) of a message of at most
// 55 bytes, which pads to a single 64-byte block. A Community ID input is
// at most 40 bytes, and one is hashed per flow record: doing the one block
// with the rounds unrolled and no digest state to set up and pad through
// is several times as fast as crypto/sha1.Sum on machines without SHA
// instructions. It panics if msg is longer than 55 bytes.
func sha1Short(msg []byte) (sum [20]byte) {
	if len(msg) > 55 {
		panic("flow: sha1Short message longer than one block")
	}
	var blk [64]byte
	copy(blk[:], msg)
	blk[len(msg)] = 0x80
	binary.BigEndian.PutUint64(blk[56:], uint64(len(msg))*8)
	return sha1Block(&blk)
}

// sha1Block returns the SHA-1 digest of a message whose padded form is the
// single block blk.
//
// The 80 rounds are fully unrolled with the message schedule kept in 16
// local words that are overwritten in place (w[i] replaces w[i-16]), and
// the roles of a..e rotate through the variables instead of being moved.
// Each round adds the previous round's result last, so that only a rotate
// and an add lie on the dependency chain from round to round. The code is
// written out by a small generator, which is why it is so regular. (Loading the round constants from a
// variable, to keep the compiler from moving their addition onto the
// dependency chain, and keeping the schedule in an array instead of
// locals were both measured and gained nothing.)
func sha1Block(blk *[64]byte) (sum [20]byte) {
	const (
		h0 = 0x67452301
		h1 = 0xEFCDAB89
		h2 = 0x98BADCFE
		h3 = 0x10325476
		h4 = 0xC3D2E1F0
	)
	w0 := binary.BigEndian.Uint32(blk[0:])
	w1 := binary.BigEndian.Uint32(blk[4:])
	w2 := binary.BigEndian.Uint32(blk[8:])
	w3 := binary.BigEndian.Uint32(blk[12:])
	w4 := binary.BigEndian.Uint32(blk[16:])
	w5 := binary.BigEndian.Uint32(blk[20:])
	w6 := binary.BigEndian.Uint32(blk[24:])
	w7 := binary.BigEndian.Uint32(blk[28:])
	w8 := binary.BigEndian.Uint32(blk[32:])
	w9 := binary.BigEndian.Uint32(blk[36:])
	w10 := binary.BigEndian.Uint32(blk[40:])
	w11 := binary.BigEndian.Uint32(blk[44:])
	w12 := binary.BigEndian.Uint32(blk[48:])
	w13 := binary.BigEndian.Uint32(blk[52:])
	w14 := binary.BigEndian.Uint32(blk[56:])
	w15 := binary.BigEndian.Uint32(blk[60:])
	a, b, c, d, e := uint32(h0), uint32(h1), uint32(h2), uint32(h3), uint32(h4)

	e += (d ^ (b & (c ^ d))) + 0x5A827999 + w0
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	d += (c ^ (a & (b ^ c))) + 0x5A827999 + w1
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	c += (b ^ (e & (a ^ b))) + 0x5A827999 + w2
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	b += (a ^ (d & (e ^ a))) + 0x5A827999 + w3
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	a += (e ^ (c & (d ^ e))) + 0x5A827999 + w4
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	e += (d ^ (b & (c ^ d))) + 0x5A827999 + w5
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	d += (c ^ (a & (b ^ c))) + 0x5A827999 + w6
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	c += (b ^ (e & (a ^ b))) + 0x5A827999 + w7
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	b += (a ^ (d & (e ^ a))) + 0x5A827999 + w8
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	a += (e ^ (c & (d ^ e))) + 0x5A827999 + w9
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	e += (d ^ (b & (c ^ d))) + 0x5A827999 + w10
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	d += (c ^ (a & (b ^ c))) + 0x5A827999 + w11
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	c += (b ^ (e & (a ^ b))) + 0x5A827999 + w12
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	b += (a ^ (d & (e ^ a))) + 0x5A827999 + w13
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	a += (e ^ (c & (d ^ e))) + 0x5A827999 + w14
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	e += (d ^ (b & (c ^ d))) + 0x5A827999 + w15
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	w0 = bits.RotateLeft32(w13^w8^w2^w0, 1)
	d += (c ^ (a & (b ^ c))) + 0x5A827999 + w0
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	w1 = bits.RotateLeft32(w14^w9^w3^w1, 1)
	c += (b ^ (e & (a ^ b))) + 0x5A827999 + w1
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	w2 = bits.RotateLeft32(w15^w10^w4^w2, 1)
	b += (a ^ (d & (e ^ a))) + 0x5A827999 + w2
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	w3 = bits.RotateLeft32(w0^w11^w5^w3, 1)
	a += (e ^ (c & (d ^ e))) + 0x5A827999 + w3
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	w4 = bits.RotateLeft32(w1^w12^w6^w4, 1)
	e += (b ^ c ^ d) + 0x6ED9EBA1 + w4
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	w5 = bits.RotateLeft32(w2^w13^w7^w5, 1)
	d += (a ^ b ^ c) + 0x6ED9EBA1 + w5
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	w6 = bits.RotateLeft32(w3^w14^w8^w6, 1)
	c += (e ^ a ^ b) + 0x6ED9EBA1 + w6
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	w7 = bits.RotateLeft32(w4^w15^w9^w7, 1)
	b += (d ^ e ^ a) + 0x6ED9EBA1 + w7
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	w8 = bits.RotateLeft32(w5^w0^w10^w8, 1)
	a += (c ^ d ^ e) + 0x6ED9EBA1 + w8
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	w9 = bits.RotateLeft32(w6^w1^w11^w9, 1)
	e += (b ^ c ^ d) + 0x6ED9EBA1 + w9
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	w10 = bits.RotateLeft32(w7^w2^w12^w10, 1)
	d += (a ^ b ^ c) + 0x6ED9EBA1 + w10
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	w11 = bits.RotateLeft32(w8^w3^w13^w11, 1)
	c += (e ^ a ^ b) + 0x6ED9EBA1 + w11
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	w12 = bits.RotateLeft32(w9^w4^w14^w12, 1)
	b += (d ^ e ^ a) + 0x6ED9EBA1 + w12
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	w13 = bits.RotateLeft32(w10^w5^w15^w13, 1)
	a += (c ^ d ^ e) + 0x6ED9EBA1 + w13
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	w14 = bits.RotateLeft32(w11^w6^w0^w14, 1)
	e += (b ^ c ^ d) + 0x6ED9EBA1 + w14
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	w15 = bits.RotateLeft32(w12^w7^w1^w15, 1)
	d += (a ^ b ^ c) + 0x6ED9EBA1 + w15
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	w0 = bits.RotateLeft32(w13^w8^w2^w0, 1)
	c += (e ^ a ^ b) + 0x6ED9EBA1 + w0
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	w1 = bits.RotateLeft32(w14^w9^w3^w1, 1)
	b += (d ^ e ^ a) + 0x6ED9EBA1 + w1
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	w2 = bits.RotateLeft32(w15^w10^w4^w2, 1)
	a += (c ^ d ^ e) + 0x6ED9EBA1 + w2
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	w3 = bits.RotateLeft32(w0^w11^w5^w3, 1)
	e += (b ^ c ^ d) + 0x6ED9EBA1 + w3
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	w4 = bits.RotateLeft32(w1^w12^w6^w4, 1)
	d += (a ^ b ^ c) + 0x6ED9EBA1 + w4
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	w5 = bits.RotateLeft32(w2^w13^w7^w5, 1)
	c += (e ^ a ^ b) + 0x6ED9EBA1 + w5
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	w6 = bits.RotateLeft32(w3^w14^w8^w6, 1)
	b += (d ^ e ^ a) + 0x6ED9EBA1 + w6
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	w7 = bits.RotateLeft32(w4^w15^w9^w7, 1)
	a += (c ^ d ^ e) + 0x6ED9EBA1 + w7
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	w8 = bits.RotateLeft32(w5^w0^w10^w8, 1)
	e += ((b & c) | (d & (b | c))) + 0x8F1BBCDC + w8
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	w9 = bits.RotateLeft32(w6^w1^w11^w9, 1)
	d += ((a & b) | (c & (a | b))) + 0x8F1BBCDC + w9
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	w10 = bits.RotateLeft32(w7^w2^w12^w10, 1)
	c += ((e & a) | (b & (e | a))) + 0x8F1BBCDC + w10
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	w11 = bits.RotateLeft32(w8^w3^w13^w11, 1)
	b += ((d & e) | (a & (d | e))) + 0x8F1BBCDC + w11
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	w12 = bits.RotateLeft32(w9^w4^w14^w12, 1)
	a += ((c & d) | (e & (c | d))) + 0x8F1BBCDC + w12
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	w13 = bits.RotateLeft32(w10^w5^w15^w13, 1)
	e += ((b & c) | (d & (b | c))) + 0x8F1BBCDC + w13
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	w14 = bits.RotateLeft32(w11^w6^w0^w14, 1)
	d += ((a & b) | (c & (a | b))) + 0x8F1BBCDC + w14
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	w15 = bits.RotateLeft32(w12^w7^w1^w15, 1)
	c += ((e & a) | (b & (e | a))) + 0x8F1BBCDC + w15
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	w0 = bits.RotateLeft32(w13^w8^w2^w0, 1)
	b += ((d & e) | (a & (d | e))) + 0x8F1BBCDC + w0
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	w1 = bits.RotateLeft32(w14^w9^w3^w1, 1)
	a += ((c & d) | (e & (c | d))) + 0x8F1BBCDC + w1
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	w2 = bits.RotateLeft32(w15^w10^w4^w2, 1)
	e += ((b & c) | (d & (b | c))) + 0x8F1BBCDC + w2
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	w3 = bits.RotateLeft32(w0^w11^w5^w3, 1)
	d += ((a & b) | (c & (a | b))) + 0x8F1BBCDC + w3
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	w4 = bits.RotateLeft32(w1^w12^w6^w4, 1)
	c += ((e & a) | (b & (e | a))) + 0x8F1BBCDC + w4
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	w5 = bits.RotateLeft32(w2^w13^w7^w5, 1)
	b += ((d & e) | (a & (d | e))) + 0x8F1BBCDC + w5
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	w6 = bits.RotateLeft32(w3^w14^w8^w6, 1)
	a += ((c & d) | (e & (c | d))) + 0x8F1BBCDC + w6
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	w7 = bits.RotateLeft32(w4^w15^w9^w7, 1)
	e += ((b & c) | (d & (b | c))) + 0x8F1BBCDC + w7
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	w8 = bits.RotateLeft32(w5^w0^w10^w8, 1)
	d += ((a & b) | (c & (a | b))) + 0x8F1BBCDC + w8
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	w9 = bits.RotateLeft32(w6^w1^w11^w9, 1)
	c += ((e & a) | (b & (e | a))) + 0x8F1BBCDC + w9
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	w10 = bits.RotateLeft32(w7^w2^w12^w10, 1)
	b += ((d & e) | (a & (d | e))) + 0x8F1BBCDC + w10
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	w11 = bits.RotateLeft32(w8^w3^w13^w11, 1)
	a += ((c & d) | (e & (c | d))) + 0x8F1BBCDC + w11
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	w12 = bits.RotateLeft32(w9^w4^w14^w12, 1)
	e += (b ^ c ^ d) + 0xCA62C1D6 + w12
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	w13 = bits.RotateLeft32(w10^w5^w15^w13, 1)
	d += (a ^ b ^ c) + 0xCA62C1D6 + w13
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	w14 = bits.RotateLeft32(w11^w6^w0^w14, 1)
	c += (e ^ a ^ b) + 0xCA62C1D6 + w14
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	w15 = bits.RotateLeft32(w12^w7^w1^w15, 1)
	b += (d ^ e ^ a) + 0xCA62C1D6 + w15
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	w0 = bits.RotateLeft32(w13^w8^w2^w0, 1)
	a += (c ^ d ^ e) + 0xCA62C1D6 + w0
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	w1 = bits.RotateLeft32(w14^w9^w3^w1, 1)
	e += (b ^ c ^ d) + 0xCA62C1D6 + w1
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	w2 = bits.RotateLeft32(w15^w10^w4^w2, 1)
	d += (a ^ b ^ c) + 0xCA62C1D6 + w2
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	w3 = bits.RotateLeft32(w0^w11^w5^w3, 1)
	c += (e ^ a ^ b) + 0xCA62C1D6 + w3
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	w4 = bits.RotateLeft32(w1^w12^w6^w4, 1)
	b += (d ^ e ^ a) + 0xCA62C1D6 + w4
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	w5 = bits.RotateLeft32(w2^w13^w7^w5, 1)
	a += (c ^ d ^ e) + 0xCA62C1D6 + w5
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	w6 = bits.RotateLeft32(w3^w14^w8^w6, 1)
	e += (b ^ c ^ d) + 0xCA62C1D6 + w6
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	w7 = bits.RotateLeft32(w4^w15^w9^w7, 1)
	d += (a ^ b ^ c) + 0xCA62C1D6 + w7
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	w8 = bits.RotateLeft32(w5^w0^w10^w8, 1)
	c += (e ^ a ^ b) + 0xCA62C1D6 + w8
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	w9 = bits.RotateLeft32(w6^w1^w11^w9, 1)
	b += (d ^ e ^ a) + 0xCA62C1D6 + w9
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	w10 = bits.RotateLeft32(w7^w2^w12^w10, 1)
	a += (c ^ d ^ e) + 0xCA62C1D6 + w10
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)
	w11 = bits.RotateLeft32(w8^w3^w13^w11, 1)
	e += (b ^ c ^ d) + 0xCA62C1D6 + w11
	e += bits.RotateLeft32(a, 5)
	b = bits.RotateLeft32(b, 30)
	w12 = bits.RotateLeft32(w9^w4^w14^w12, 1)
	d += (a ^ b ^ c) + 0xCA62C1D6 + w12
	d += bits.RotateLeft32(e, 5)
	a = bits.RotateLeft32(a, 30)
	w13 = bits.RotateLeft32(w10^w5^w15^w13, 1)
	c += (e ^ a ^ b) + 0xCA62C1D6 + w13
	c += bits.RotateLeft32(d, 5)
	e = bits.RotateLeft32(e, 30)
	w14 = bits.RotateLeft32(w11^w6^w0^w14, 1)
	b += (d ^ e ^ a) + 0xCA62C1D6 + w14
	b += bits.RotateLeft32(c, 5)
	d = bits.RotateLeft32(d, 30)
	w15 = bits.RotateLeft32(w12^w7^w1^w15, 1)
	a += (c ^ d ^ e) + 0xCA62C1D6 + w15
	a += bits.RotateLeft32(b, 5)
	c = bits.RotateLeft32(c, 30)

	binary.BigEndian.PutUint32(sum[0:], a+h0)
	binary.BigEndian.PutUint32(sum[4:], b+h1)
	binary.BigEndian.PutUint32(sum[8:], c+h2)
	binary.BigEndian.PutUint32(sum[12:], d+h3)
	binary.BigEndian.PutUint32(sum[16:], e+h4)
	return sum
}
