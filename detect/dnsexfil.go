package detect

import (
	"math"
	"math/bits"
	"net/netip"
	"strings"
	"time"
	"unsafe"

	"github.com/flowhound/flowhound/flow"
)

// DNSExfil finds DNS tunnels: data carried in query names, which shows as
// many distinct long or random-looking names under one domain.
//
// Each query name is split into its registered domain (RegisteredDomain)
// and the part below it. A name qualifies when its longest label is at
// least MinLabelLen long and not filler (character entropy ≥ MinEntropy −
// 0.5 bits), or at least 16 long, mixed with digits and of entropy ≥
// MinEntropy: base32 and hex labels pass, CDN names such as
// "e1234.dscb.akamaiedge.net" or "r3---sn-4g5e6nsz.googlevideo.com" do not.
// Reverse lookups (.arpa) are ignored. Per (internal source, registered
// domain) the distinct qualifying names of the current and the previous
// Window are counted in a 256-bit linear-counting bitmap; MinNames of them
// raise a finding. Names whose last label is no real top-level domain
// (dnscat2 in direct mode sends "dnscat.<hex>.<hex>" straight to its server)
// are grouped by the resolver they were sent to instead, and the finding
// then names no domain.
//
// A flow may carry a whole tunnel (one socket, 150 queries): the record
// holds the query count and only the first flow.MaxDNSNames distinct names.
// When those names fill the sample and all fall under one domain, the
// unsampled queries are counted as that many more distinct names (pro rata
// of the sample's qualifying share): tunnels never repeat a name, and a
// benign client that repeats one name does not fill the sample.
//
// The score weighs the number of names (saturating at 4×MinNames), their
// length and entropy, the share of TXT, NULL, MX, CNAME, SRV or ANY queries,
// and the source's DNS query volume in the window against its baseline (an
// EWMA of past windows; 0.5 while unknown). Allowlisted sources, pairs and
// domains are skipped (the resolver's address is not: the tunnel's domain
// is what matters, and the resolver is usually the allowlisted DC).
// Memory: MaxKeys (source, domain) keys, created only for qualifying names,
// and a quarter as many sources. Observe does not allocate for names that
// raise nothing new.
type DNSExfil struct {
	cfg   DNSExfilConfig
	allow *Allowlist
	win   int64

	keys    *keyedLRU[uint64, dnsExfilKey]
	hosts   *keyedLRU[uint64, dnsExfilHost] // by latKey.hash (see Exfil.hosts)
	flows   cumDeltas
	domains strTable
	// sampleAfter is how many qualifying names a key must have seen
	// before it keeps sample names for its findings.
	sampleAfter uint32
	exts        int // keys with a dnsExfilExt
	sampleBytes int // bytes of their sample names

	now  int64
	one  [1]string
	info [flow.MaxDNSNames]dnsNameInfo
}

// dnsExfilKey is the state of one (source, domain) key, 176 bytes. What
// most keys never need (names that do not qualify, unsampled names,
// sample strings) is in ext, made on first use.
type dnsExfilKey struct {
	epoch            int64
	qual             [2]dnsBitmap // qualifying names, current and previous window
	queries, typed   [2]uint32
	labelSum, entSum float64 // over qualifying names seen
	first            int64
	src, resolver    latKey
	nQual            uint32
	domain           uint32 // in DNSExfil.domains; 0 when grouped by resolver
	maxLabel         uint16
	proto            flow.Proto
	fired            proposalGate
	ext              *dnsExfilExt
}

type dnsExfilExt struct {
	other               [2]dnsBitmap // names that do not qualify: all names are qual | other
	extraQual, extraAll [2]float64   // unsampled names of tunnel flows
	samples             [3]string
}

// extension returns k's ext, making it.
func (d *DNSExfil) extension(k *dnsExfilKey) *dnsExfilExt {
	if k.ext == nil {
		k.ext = new(dnsExfilExt)
		d.exts++
	}
	return k.ext
}

type dnsExfilHost struct {
	epoch   int64
	queries [2]uint32
	base    float64
	epochs  uint32
}

type dnsBitmap [4]uint64

func (b *dnsBitmap) set(h uint64) { b[(h>>6)&3] |= 1 << (h & 63) }

// dnsDistinct estimates the distinct names set in the union of two bitmaps
// (linear counting; saturates near 1,400).
func dnsDistinct(a, b *dnsBitmap) float64 {
	zeros := 256
	for i := range a {
		zeros -= bits.OnesCount64(a[i] | b[i])
	}
	return dnsLinearCount[zeros]
}

// log2Of5 is math.Log2(5), which the compiler does not fold: the names
// score saturates at 4 × MinNames.
var log2Of5 = math.Log2(5)

// dnsLinearCount[z] is the linear-counting estimate for z zero bits of 256.
var dnsLinearCount = func() (t [257]float64) {
	for zeros := range t {
		z := max(float64(zeros), 0.5)
		t[zeros] = -256 * math.Log(z/256)
	}
	return t
}()

// dnsNameInfo is what one query name says.
type dnsNameInfo struct {
	group   uint64 // key hash: source and domain, or source and resolver
	trimmed string // the name without its trailing dot
	domain  string // registered domain; "" when grouped by resolver
	label   int    // length of the longest label below the domain
	entropy float64
	nameH   uint64 // dnsNameHash(trimmed), when hashed
	hashed  bool
	qual    bool
	skip    bool
}

const (
	dnsBaseFloor = 50 // queries per window added to a host's baseline
	dnsBaseAlpha = 1.0 / 4
)

// NewDNSExfil returns the DNS tunnel detector. Zero thresholds take
// DefaultConfig's values.
func NewDNSExfil(cfg Config) Detector {
	c := cfg.DNSExfil.normalized()
	d := &DNSExfil{
		cfg: c, allow: cfg.Allow, win: int64(c.Window),
		keys:    newKeyedLRU[uint64, dnsExfilKey](c.MaxKeys),
		hosts:   newKeyedLRU[uint64, dnsExfilHost](max(c.MaxKeys/4, 64)),
		flows:   newCumDeltas(max(c.MaxKeys/4, 64)),
		domains: newStrTable(),
		// Keys made by a random-looking CDN name or two keep no strings.
		sampleAfter: uint32(max(c.MinNames/4, 1)),
	}
	d.keys.onDrop = func(_ *uint64, k *dnsExfilKey) {
		d.domains.unref(k.domain)
		if x := k.ext; x != nil {
			d.exts--
			d.sampleBytes -= len(x.samples[0]) + len(x.samples[1]) + len(x.samples[2])
		}
	}
	return d
}

// Kind implements Detector.
func (d *DNSExfil) Kind() Kind { return KindDNSExfil }

// Observe implements Detector.
func (d *DNSExfil) Observe(r *flow.Record, propose func(*Finding)) {
	app := r.App
	if app == nil || r.RespPort != 53 || !r.LocalOrig || (r.Proto != flow.ProtoUDP && r.Proto != flow.ProtoTCP) {
		return
	}
	src := r.OrigAddr
	if d.allow != nil && (d.allow.AllowedAddr(src) || len(d.allow.Pairs) > 0 && d.allow.Pairs[[2]netip.Addr{src, r.RespAddr}]) {
		return
	}
	now := r.End.UnixNano()
	if now > d.now {
		d.now = now
	}
	dl := d.flows.delta(r, now)
	q := dl.queries
	if app.DNSQueries == 0 && dl.first && app.DNSQuery != "" {
		q = 1 // a record that counts no queries but names one
	}
	names := app.DNSNames
	if len(names) == 0 {
		if app.DNSQuery == "" {
			return
		}
		d.one[0] = app.DNSQuery
		names = d.one[:]
	}
	names = names[:min(len(names), len(d.info))]
	epoch := now / d.win

	srcK := latKeyOf(src)
	srcH := srcK.hash()
	h := d.hosts.get(srcH, now)
	if h == nil {
		h = d.hosts.insert(srcH, now)
		h.epoch = epoch
	}
	d.rollHost(h, epoch)
	h.queries[0] += q
	vol := dnsVolume{h: h, now: now, epoch: epoch, win: d.win}

	// Look at every name first: the unsampled queries of a flow whose
	// names all fall under one domain count for that domain.
	n, nQual, same, last := 0, 0, true, -1
	var g0 uint64
	for i, name := range names {
		in := &d.info[i]
		d.nameInfo(in, name, src, r.RespAddr)
		if !in.skip && d.allow != nil && len(d.allow.Domains) > 0 && d.allow.AllowedName(strings.ToLower(strings.TrimSuffix(name, "."))) {
			in.skip = true
		}
		if in.skip {
			continue
		}
		if n == 0 {
			g0 = in.group
		} else if in.group != g0 {
			same = false
		}
		n++
		last = i
		if in.qual {
			nQual++
		}
	}
	if n == 0 {
		return
	}
	var extra float64
	if same && len(names) >= flow.MaxDNSNames {
		seen := uint32(0)
		if dl.first {
			seen = uint32(len(names))
		}
		extra = float64(satSub(uint64(q), uint64(seen)))
	}
	typed := dnsTypedQuery(app.DNSQType)
	// The names of a tunnel's flow share a key: the previous name's key
	// is reused (no insert has moved it, and it is already the most
	// recently used).
	var (
		k     *dnsExfilKey
		kHash uint64
	)
	for i := range names {
		in := &d.info[i]
		if in.skip {
			continue
		}
		if k == nil || kHash != in.group {
			k, kHash = d.keys.get(in.group, now), in.group
		}
		if k == nil {
			if !in.qual && extra == 0 {
				continue
			}
			k = d.keys.insert(in.group, now)
			k.epoch, k.first, k.src = epoch, r.Start.UnixNano(), srcK
			if in.domain != "" {
				k.domain = d.domains.ref(strings.ToLower(in.domain))
			}
		}
		k.roll(epoch)
		k.resolver, k.proto = latKeyOf(r.RespAddr), r.Proto
		nameH := in.nameH
		if !in.hashed {
			nameH = dnsNameHash(in.trimmed)
		}
		if !in.qual {
			d.extension(k).other[0].set(nameH)
		} else {
			k.qual[0].set(nameH)
			k.labelSum += float64(in.label)
			k.entSum += in.entropy
			k.nQual++
			k.maxLabel = uint16(min(max(int(k.maxLabel), in.label), math.MaxUint16))
			if k.ext != nil || k.nQual >= d.sampleAfter {
				x := d.extension(k)
				for j := range x.samples {
					if x.samples[j] == "" {
						x.samples[j] = strings.Clone(names[i])
						d.sampleBytes += len(names[i])
						break
					}
					if x.samples[j] == names[i] {
						break
					}
				}
			}
		}
		switch {
		case same && i == last:
			k.queries[0] += q
			if typed {
				k.typed[0] += q
			}
			if extra != 0 {
				x := d.extension(k)
				x.extraAll[0] += extra
				x.extraQual[0] += extra * float64(nQual) / float64(n)
			}
		case !same && q > 0:
			k.queries[0]++
			if typed {
				k.typed[0]++
			}
		}
		if !same || i == last {
			d.eval(k, &vol, now, propose)
		}
	}
}

// nameInfo fills in what a query name says.
func (d *DNSExfil) nameInfo(in *dnsNameInfo, name string, src, resolver netip.Addr) {
	*in = dnsNameInfo{}
	name = strings.TrimSuffix(name, ".")
	if len(name) < 4 || hasSuffixFold(name, ".arpa") {
		in.skip = true
		return
	}
	in.trimmed = name
	sub := name
	if dot := strings.LastIndexByte(name, '.'); dot > 0 && validTLD(name[dot+1:]) {
		in.domain = RegisteredDomain(name)
		sub = strings.TrimSuffix(name[:len(name)-len(in.domain)], ".")
		in.group = splitmixFinal(mixAddr(fnv1aOffset, src) ^ hashFold(in.domain))
	} else {
		in.group = splitmixFinal(mixAddr(mixAddr(fnv1aOffset^2, src), resolver))
	}
	// The longest label below the domain (the first of that length), at
	// name[at:].
	at, n := 0, 0
	for i := 0; i < len(sub); {
		end, next := len(sub), len(sub)
		if j := strings.IndexByte(sub[i:], '.'); j >= 0 {
			end, next = i+j, i+j+1
		}
		if end-i > n {
			at, n = i, end-i
		}
		i = next
	}
	longest := name[at : at+n]
	in.label = n
	if in.label < 16 {
		return
	}
	c := &d.cfg
	var digits int
	if in.label < c.MinLabelLen {
		// Not a long label: only digits can make it qualify.
		if digits = countDigits(longest); digits < 2 {
			return // cannot qualify, whatever its entropy
		}
		in.entropy, _ = labelStats(longest)
	} else {
		in.entropy, digits = labelStats(longest)
	}
	in.nameH = dnsNameHash(name)
	in.hashed = true
	in.qual = in.label >= c.MinLabelLen && in.entropy >= c.MinEntropy-0.5 ||
		digits >= 2 && in.entropy >= c.MinEntropy
}

// dnsVolume scores a source's query volume in the window against its
// baseline, when a finding needs it.
type dnsVolume struct {
	h          *dnsExfilHost
	now, epoch int64
	win        int64
}

func (v *dnsVolume) score() float64 {
	h := v.h
	if h.epochs < 2 {
		return 0.5
	}
	hostQ := float64(h.queries[0]) + float64(h.queries[1])*(1-float64(v.now-v.epoch*v.win)/float64(v.win))
	return clampScore(math.Log2(max(hostQ/(h.base+dnsBaseFloor), 1)) / 5)
}

// dnsNameHash is the hash of a name in the bitmaps, case-insensitive
// and eight bytes at a time.
func dnsNameHash(name string) uint64 { return hashFold(name) }

// countDigits counts the ASCII digits in s, branch-free: random labels
// mix digits and letters at random (a byte below '0' wraps to 208 and
// above).
func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n += int((uint32(s[i]-'0') - 10) >> 31)
	}
	return n
}

// labelStats returns the Shannon entropy of a label's bytes, in bits per
// character (case-insensitive, over its first 63 bytes: a DNS label is at
// most that long), and the digits in the whole label.
//
// The entropy is log2(n) − Σ k·log2(k) / n over the characters' counts k.
// The sum is kept in fixed point, the k·log2(k) terms rounded to 2⁻⁴⁴ (an
// error under 10⁻¹¹ bits per character): integer addition does not care
// about order, so the sum can grow as each character arrives — counting
// the k-th occurrence of a character adds kLog2kFixed[k] −
// kLog2kFixed[k−1] — in a single pass and without listing the distinct
// characters. The digits are read off the counts.
func labelStats(s string) (entropy float64, digits int) {
	t := s
	if len(t) >= len(kLog2) {
		t = t[:len(kLog2)-1]
	}
	var counts [256]uint8
	var sum uint64
	for i := 0; i < len(t); i++ {
		c := lowerASCII(t[i])
		k := counts[c]
		sum += kLog2kStep[k&63]
		counts[c] = k + 1
	}
	for _, k := range counts['0' : '9'+1] {
		digits += int(k)
	}
	return kLog2[len(t)] - float64(sum)/(1<<kLog2kShift)/float64(len(t)), digits + countDigits(s[len(t):])
}

// kLog2[k] is log2(k); kLog2kFixed[k] is k·log2(k) × 2⁴⁴, rounded, and
// kLog2kStep[k] what the (k+1)-th occurrence of a character adds to the
// sum: kLog2kFixed[k+1] − kLog2kFixed[k].
const kLog2kShift = 44

var kLog2, kLog2kFixed, kLog2kStep = func() (l [64]float64, f, step [64]uint64) {
	for k := 1; k < len(l); k++ {
		l[k] = math.Log2(float64(k))
		f[k] = uint64(math.Round(float64(k) * math.Log2(float64(k)) * (1 << kLog2kShift)))
	}
	for k := 0; k+1 < len(f); k++ {
		step[k] = f[k+1] - f[k]
	}
	return
}()

// lowerASCII lowers an ASCII capital, by table: names mix cases at
// random, and a branch on each byte would mispredict.
func lowerASCII(c byte) byte { return lowerTab[c] }

var lowerTab = func() (t [256]byte) {
	for i := range t {
		c := byte(i)
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		t[i] = c
	}
	return t
}()

// validTLD reports whether a last label can be a top-level domain: letters
// only, or an IDN ("xn--...").
func validTLD(t string) bool {
	if len(t) < 2 || len(t) > 63 {
		return false
	}
	if len(t) > 4 && strings.EqualFold(t[:4], "xn--") {
		return true
	}
	for i := 0; i < len(t); i++ {
		c := t[i] | 0x20
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

// dnsTypedQuery reports whether a query type is one tunnels favour for
// their larger answers: TXT, NULL, MX, CNAME, SRV, ANY (A and AAAA are what
// browsing asks).
func dnsTypedQuery(t uint16) bool {
	switch t {
	case 16, 10, 15, 5, 33, 255:
		return true
	}
	return false
}

func (k *dnsExfilKey) roll(epoch int64) {
	if epoch <= k.epoch {
		return
	}
	next := epoch == k.epoch+1
	if next {
		k.qual[1] = k.qual[0]
		k.queries[1], k.typed[1] = k.queries[0], k.typed[0]
	} else {
		k.qual[1] = dnsBitmap{}
		k.queries[1], k.typed[1] = 0, 0
	}
	k.qual[0] = dnsBitmap{}
	k.queries[0], k.typed[0] = 0, 0
	if x := k.ext; x != nil {
		if next {
			x.other[1] = x.other[0]
			x.extraQual[1], x.extraAll[1] = x.extraQual[0], x.extraAll[0]
		} else {
			x.other[1] = dnsBitmap{}
			x.extraQual[1], x.extraAll[1] = 0, 0
		}
		x.other[0] = dnsBitmap{}
		x.extraQual[0], x.extraAll[0] = 0, 0
	}
	k.epoch = epoch
}

// rollHost moves a host to epoch, folding completed windows into its
// baseline (clipped, so a tunnel does not become the norm at once).
func (d *DNSExfil) rollHost(h *dnsExfilHost, epoch int64) {
	if epoch <= h.epoch {
		return
	}
	fold := func(x float64) {
		if h.epochs == 0 {
			h.base = min(x, 4*dnsBaseFloor)
		} else {
			h.base += dnsBaseAlpha * (min(x, 4*h.base+dnsBaseFloor) - h.base)
		}
		h.epochs++
	}
	fold(float64(h.queries[0]))
	for i := min(epoch-h.epoch-1, 24); i > 0; i-- {
		fold(0)
	}
	if epoch == h.epoch+1 {
		h.queries[1] = h.queries[0]
	} else {
		h.queries[1] = 0
	}
	h.queries[0] = 0
	h.epoch = epoch
}

func (d *DNSExfil) eval(k *dnsExfilKey, vol *dnsVolume, now int64, propose func(*Finding)) {
	x := k.ext
	nQual := dnsDistinct(&k.qual[0], &k.qual[1])
	if x != nil {
		nQual = nQual + x.extraQual[0] + x.extraQual[1]
	}
	if nQual < float64(d.cfg.MinNames) {
		return
	}
	sVol := vol.score()
	c := &d.cfg
	queries := k.queries[0] + k.queries[1]
	var meanLabel, meanEnt, typedShare float64
	if k.nQual > 0 {
		meanLabel, meanEnt = k.labelSum/float64(k.nQual), k.entSum/float64(k.nQual)
	}
	if queries > 0 {
		typedShare = float64(k.typed[0]+k.typed[1]) / float64(queries)
	}
	half := float64(c.MinLabelLen) / 2
	sub := [5]float64{
		clampScore(math.Log2(1+nQual/float64(c.MinNames)) / log2Of5),
		clampScore((meanLabel - half) / (63 - half)),
		clampScore((meanEnt - 2.5) / 2),
		clampScore(typedShare),
		sVol,
	}
	score := 0.35*sub[0] + 0.2*sub[1] + 0.2*sub[2] + 0.1*sub[3] + 0.15*sub[4]
	if !k.fired.due(score) {
		return
	}
	k.fired.mark(score)
	if x == nil {
		x = &dnsExfilExt{}
	}
	var all [2]dnsBitmap
	for i := range all {
		for j := range all[i] {
			all[i][j] = k.qual[i][j] | x.other[i][j]
		}
	}
	nAll := dnsDistinct(&all[0], &all[1]) + x.extraAll[0] + x.extraAll[1]

	src, resolver, domain := k.src.addr(), k.resolver.addr(), d.domains.str(k.domain)
	var uid string
	if domain != "" {
		uid = FindingUID(KindDNSExfil, src.String(), domain)
	} else {
		uid = FindingUID(KindDNSExfil, src.String(), "@"+resolver.String())
	}
	f := &Finding{
		UID: uid, Time: time.Unix(0, now).UTC(), Kind: KindDNSExfil, Score: score,
		SubScores: []SubScore{{"names", sub[0]}, {"length", sub[1]}, {"entropy", sub[2]}, {"qtype", sub[3]}, {"volume", sub[4]}},
		Src:       src, Dst: resolver, DstPort: 53, Proto: k.proto.String(), FQDN: domain,
		Evidence: Evidence{
			Count: uint64(nQual + 0.5),
			Extra: map[string]any{"distinct_names": uint64(nAll + 0.5), "queries": queries,
				"typed_queries": k.typed[0] + k.typed[1], "mean_label": math.Round(meanLabel*10) / 10,
				"max_label": k.maxLabel, "mean_entropy": math.Round(meanEnt*100) / 100},
		},
		MITRE:     []string{"T1071.004", "T1048.003"},
		FirstSeen: time.Unix(0, k.first).UTC(), LastSeen: time.Unix(0, now).UTC(),
	}
	for _, s := range x.samples {
		if s != "" {
			f.Evidence.Names = append(f.Evidence.Names, s)
		}
	}
	if domain == "" {
		f.Evidence.Notes = []string{"names under no public top-level domain, grouped by resolver"}
	}
	propose(f)
}

// Tick implements Detector: it forgets keys idle for two windows and hosts
// idle for a day.
func (d *DNSExfil) Tick(now time.Time, _ func(*Finding)) {
	if n := now.UnixNano(); n > d.now {
		d.now = n
	}
	d.keys.expire(d.now - 2*d.win)
	d.hosts.expire(d.now - int64(24*time.Hour))
	d.flows.expire(d.now - int64(cumIdle))
}

// Stats implements Detector.
func (d *DNSExfil) Stats() DetectorStats {
	return DetectorStats{
		Keys: d.keys.len() + d.hosts.len() + d.flows.t.len(),
		Bytes: d.keys.bytes() + d.hosts.bytes() + d.flows.bytes() + d.domains.bytes() +
			d.exts*int(unsafe.Sizeof(dnsExfilExt{})) + d.sampleBytes,
		Evictions: d.keys.evictions + d.hosts.evictions + d.flows.t.evictions,
	}
}
