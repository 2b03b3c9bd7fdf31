package apphint

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// checkHelloMatchesRef fails t unless parseHello and refParseHello agree
// on b in everything they report, buffers included.
func checkHelloMatchesRef(t *testing.T, b []byte) {
	t.Helper()
	var info, rinfo helloInfo
	var sni, alpn, rsni, ralpn [255]byte
	res, need := parseHello(b, &info, &sni, &alpn)
	rres, rneed := refParseHello(b, &rinfo, &rsni, &ralpn)
	if res != rres || need != rneed || info != rinfo || sni != rsni || alpn != ralpn {
		t.Fatalf("input %x:\n got %v %d %+v\nwant %v %d %+v", b, res, need, info, rres, rneed, rinfo)
	}
}

// checkDNSMatchesRef fails t unless DNS.Parse and the reference agree on
// msg in every field and in the error.
func checkDNSMatchesRef(t *testing.T, d *DNS, r *refDNS, msg []byte) {
	t.Helper()
	err, rerr := d.Parse(msg), r.Parse(msg)
	fail := func(what string) {
		t.Helper()
		t.Fatalf("input %x: %s differs:\n got %v %+v\nwant %v %+v", msg, what, err, *d, rerr, r.DNS)
	}
	if (err == nil) != (rerr == nil) || err != nil && d.err != r.err {
		fail("error")
	}
	if d.ID != r.ID || d.Flags != r.Flags || d.Response != r.Response || d.Opcode != r.Opcode || d.Rcode != r.Rcode ||
		d.QType != r.QType || d.QClass != r.QClass || d.QDCount != r.QDCount || d.ANCount != r.ANCount ||
		d.NSCount != r.NSCount || d.ARCount != r.ARCount || d.Omitted != r.Omitted || d.used != r.used {
		fail("header or counts")
	}
	sameBytes := func(a, b []byte) bool {
		return (a == nil) == (b == nil) && bytes.Equal(a, b) && cap(a) == cap(b)
	}
	if !sameBytes(d.QName, r.QName) {
		fail("QName")
	}
	if len(d.Answers) != len(r.Answers) {
		fail("answer count")
	}
	for i, a := range d.Answers {
		ra := r.Answers[i]
		if a.Type != ra.Type || a.TTL != ra.TTL || a.Addr != ra.Addr || !sameBytes(a.Name, ra.Name) {
			fail("answer")
		}
	}
}

// mutate returns a copy of b with a few random changes: bytes flipped or
// set to values the parsers single out, bytes cut off or repeated.
func mutate(r *rand.Rand, b []byte) []byte {
	b = bytes.Clone(b)
	special := []byte{0, 1, 0x20, '-', '.', ':', 'A', 'Z', '\\', ']', 'a', 0x3f, 0x40, 0x7f, 0x80, 0xc0, 0xff}
	for range 1 + r.IntN(4) {
		if len(b) == 0 {
			break
		}
		i := r.IntN(len(b))
		switch r.IntN(6) {
		case 0:
			b[i] ^= byte(1 << r.IntN(8))
		case 1:
			b[i] = special[r.IntN(len(special))]
		case 2:
			b[i] = byte(r.Uint32())
		case 3:
			b = b[:i]
		case 4:
			b = append(b[:i:i], b[i+r.IntN(len(b)-i):]...)
		case 5:
			j := i + r.IntN(min(8, len(b)-i))
			b = append(b[:j:j], b[i:]...)
		}
	}
	return b
}

func helloSeeds() [][]byte {
	typical := handshake(helloBody(sniExt("Example.COM"), alpnExt("h2", "http/1.1"), versionsExt(0x3a3a, 0x0304, 0x0303)))
	long := handshake(helloBody(sniExt(string(bytes.Repeat([]byte("a."), 140))), alpnExt(string(bytes.Repeat([]byte("p"), 200)))))
	seeds := [][]byte{realHelloCurl, realHelloDridex, realHelloNoSNI, records(typical), records(long), hello(), hello(sniExt("a..b"))}
	for _, msg := range [][]byte{typical, long, realHelloCurl[5:]} {
		for _, cut := range []int{1, 3, 4, 5, 40, 43, len(msg) / 2, len(msg) - 30, len(msg) - 1} {
			seeds = append(seeds, records(msg, cut), records(msg, 0, cut, 0))
		}
		seeds = append(seeds, records(msg, ones(len(msg)-1)...))
	}
	return seeds
}

// TestHelloMatchesRef checks the ClientHello parser against the reference
// on real and built hellos, split into records in many ways, and on
// random mutations of them.
func TestHelloMatchesRef(t *testing.T) {
	seeds := helloSeeds()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, s := range seeds {
		for k := 0; k <= len(s); k++ {
			checkHelloMatchesRef(t, s[:k])
		}
	}
	n := 300_000
	if testing.Short() {
		n = 20_000
	}
	for range n {
		s := seeds[rng.IntN(len(seeds))]
		if rng.IntN(4) == 0 {
			// Re-split the message into random records.
			msg := s[5:]
			var cuts []int
			for range rng.IntN(6) {
				cuts = append(cuts, rng.IntN(len(msg)+1))
			}
			s = records(msg, cuts...)
		}
		checkHelloMatchesRef(t, mutate(rng, s))
	}
}

func FuzzHelloMatchesRef(f *testing.F) {
	for _, s := range helloSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkHelloMatchesRef(t, b) })
}

func dnsSeeds() [][]byte {
	return [][]byte{
		query("www.example.com", DNSTypeA), query("", 2), query("Mixed-Case_1.EXAMPLE.org", DNSTypeAAAA),
		query("a.bb.ccc.dddd.eeeee.ffffff.ggggggg.hhhhhhhh.iiiiiiiii", DNSTypeTXT),
		responseExample(), realDNSResponse, realDNSExfil,
		header(9, 0, 1, 0, 0, 0).u16(0xc00c, 1, 1),
		header(1, 0, 1, 0, 0, 0).labels(-1, "A.b", "x y", "\x00\xff\\\"", "abcdefg.", "abcdefgh", "abcdefghijklmno@").u16(16, 1),
		header(9, 0x8000, 1, 0xffff, 0, 0).name("a").u16(1, 1).rr(12, DNSTypeTXT, 1, 1, 'x'),
	}
}

// TestDNSMatchesRef checks DNS.Parse against the reference on the seeds,
// every prefix of them, and random mutations.
func TestDNSMatchesRef(t *testing.T) {
	var d DNS
	var r refDNS
	seeds := dnsSeeds()
	for _, s := range seeds {
		for k := 0; k <= len(s); k++ {
			checkDNSMatchesRef(t, &d, &r, s[:k])
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	n := 300_000
	if testing.Short() {
		n = 20_000
	}
	for range n {
		checkDNSMatchesRef(t, &d, &r, mutate(rng, seeds[rng.IntN(len(seeds))]))
	}
	// Labels of every length made of every octet, alone and mixed.
	for c := range 256 {
		for l := 1; l <= 63; l++ {
			lab := bytes.Repeat([]byte{byte(c)}, l)
			mixed := bytes.Repeat([]byte("ab-9_z"), 11)[:l]
			mixed[rng.IntN(l)] = byte(c)
			for _, x := range [][]byte{lab, mixed} {
				msg := header(1, 0, 1, 0, 0, 0).labels(-1, string(x), "com").u16(1, 1)
				checkDNSMatchesRef(t, &d, &r, msg)
				checkDNSMatchesRef(t, &d, &r, msg[:len(msg)-5])
			}
		}
	}
}

func FuzzDNSMatchesRef(f *testing.F) {
	for _, s := range dnsSeeds() {
		f.Add(s)
	}
	var d DNS
	var r refDNS
	f.Fuzz(func(t *testing.T, msg []byte) { checkDNSMatchesRef(t, &d, &r, msg) })
}
