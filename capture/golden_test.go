package capture_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/capture/pcapfile"
	"github.com/flowhound/flowhound/flow"
)

var update = flag.Bool("update", false, "regenerate testdata/golden/*.json with tshark")

// goldenCaptures are the shared captures whose flows are checked against
// tshark's conversation tables.
var goldenCaptures = []string{
	"test-cc-capture-1.pcap",
	"http-qinq-0.pcap",
	"mixed-vlan-mpls.pcap",
	"erspan.pcap",
	"erspan-type-ii-2.pcap",
	"erspan-type-iii-ft-7.pcap",
	"vxlan.pcap",
	"geneve.pcap",
	"gre-within-gre.pcap",
	"gre.pcapng",
	"6in4tunnel.pcap",
	"ipv6_fragments.pcapng",
	"fragmented-3.pcap",
	"smb2.pcap",
	"ssh.pcap",
	"evidence02.pcap",
	"dns_exfiltration.pcap",
	"LM_psexec_smb_dcerpc_epm_svcctl.pcapng",
}

// notLookedThrough names tunnels that tshark decodes and our decoder
// deliberately does not: their frames stay flows between the outer
// addresses.
var notLookedThrough = map[string]string{
	// decode.go greLayer returns ErrUnsupported for GRE version 1 (PPTP's
	// enhanced GRE), whose payload is PPP rather than an EtherType-typed
	// packet; tshark decodes gre:ppp:ip:udp.
	"pptp": "PPTP enhanced GRE (version 1) is not decoded by greLayer",
}

// tsharkPrefs turn IP reassembly off. With it on, tshark dissects a
// fragmented datagram's transport header only on the frame that completes
// it and counts just that frame in the TCP/UDP conversation; with it off it
// counts the first fragment, as we do, and the later fragments (which we
// also count into the flow) are added from the fields output.
var tsharkPrefs = []string{"-n", "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"}

var tsharkConvArgs = []string{"-q", "-z", "conv,tcp", "-z", "conv,udp", "-z", "conv,ip", "-z", "conv,ipv6"}

// tsharkFields are read per frame. Fields of protocols that occur more than
// once in a frame (tunnels, ICMP errors) hold one comma-separated value per
// occurrence, in the order of frame.protocols, which says which layer each
// value belongs to.
var tsharkFields = []string{
	"frame.number", "frame.len", "frame.protocols",
	"ip.src", "ip.dst", "ip.proto", "ip.id", "ip.flags.mf", "ip.frag_offset",
	"ipv6.src", "ipv6.dst", "ipv6.fraghdr.nxt", "ipv6.fraghdr.ident", "ipv6.fraghdr.offset",
	"tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport",
	"gre.proto", "gre.flags.version", "gre.flags.key", "gre.key", "erspan.spanid",
	"vxlan.vni", "geneve.vni", "vlan.id", "mpls.label",
}

func tsharkFieldArgs() []string {
	args := []string{"-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range tsharkFields {
		args = append(args, "-e", f)
	}
	return args
}

// count is frames and frame bytes (original lengths on the wire).
type count [2]int64

func (c *count) add(frames, bytes int64) { c[0] += frames; c[1] += bytes }
func (c count) sub(d count) count        { return count{c[0] - d[0], c[1] - d[1]} }
func (c count) plus(d count) count       { return count{c[0] + d[0], c[1] + d[1]} }
func (c count) String() string           { return fmt.Sprintf("%d frames/%d bytes", c[0], c[1]) }

// dirs is a count per direction of a conversation.
type dirs struct {
	AB count `json:"ab,omitzero"`
	BA count `json:"ba,omitzero"`
}

func (d *dirs) add(ab bool, frames, bytes int64) {
	if ab {
		d.AB.add(frames, bytes)
	} else {
		d.BA.add(frames, bytes)
	}
}

// goldenFile is tshark's view of one capture.
type goldenFile struct {
	Capture   string `json:"capture"`
	TShark    string `json:"tshark"`
	ConvCmd   string `json:"conv_cmd"`
	FieldsCmd string `json:"fields_cmd"`
	Frames    int64  `json:"frames"`
	// Conversations are tshark's TCP, UDP, IPv4 and IPv6 conversation
	// tables (exact bytes), one entry per 5-tuple or address pair.
	Conversations []*conversation `json:"conversations"`
}

// conversation is one row of tshark's conversation tables, summed over the
// rows tshark splits one 5-tuple into (TCP streams). A is the sender of the
// first frame. The breakdowns say how some of its frames were dissected,
// for the differences from our flows that we make on purpose.
type conversation struct {
	Proto string `json:"proto"` // tcp, udp, ip (IPv4) or ipv6
	A     string `json:"a"`     // addr:port, or addr for ip and ipv6
	B     string `json:"b"`
	AB    count  `json:"ab"`
	BA    count  `json:"ba"`
	// Outer counts frames in which this header was the outer header of a
	// tunnel, by tunnel kind.
	Outer map[string]*dirs `json:"outer,omitempty"`
	// Frag counts later IP fragments (offset > 0) that belong here, by
	// their first fragment, but that tshark, not reassembling, counted
	// elsewhere (negative) or nowhere.
	Frag *dirs `json:"frag,omitempty"`
	// Encap is the encapsulation of the first frame in which this is the
	// innermost header; absent if it never is. EncapOther lists the other
	// encapsulations such frames came in (replies through a tunnel have
	// its endpoints swapped).
	Encap      *flow.Encap   `json:"encap,omitempty"`
	EncapOther []*flow.Encap `json:"encap_other,omitempty"`
}

func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// pcapDir is the shared capture folder, which sits beside the checkout.
func pcapDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "..", "shared", "pcaps")
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Skipf("shared captures not found at %s (expected beside the checkout): %v", dir, err)
	}
	return dir
}

func TestGolden(t *testing.T) {
	dir := pcapDir(t)
	for _, name := range goldenCaptures {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			goldenPath := filepath.Join("testdata", "golden", strings.TrimSuffix(name, filepath.Ext(name))+".json")
			if *update {
				g := generateGolden(t, dir, name)
				if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(goldenPath, marshalGolden(t, g), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("%v (regenerate with: go test ./capture -run TestGolden -update)", err)
			}
			var g goldenFile
			dec := json.NewDecoder(bytes.NewReader(data))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&g); err != nil {
				t.Fatalf("%s: %v", goldenPath, err)
			}
			compareGolden(t, path, &g)
		})
	}
}

// marshalGolden writes one conversation per line, so that the file stays
// small and diffs read well.
func marshalGolden(t *testing.T, g *goldenFile) []byte {
	var b bytes.Buffer
	b.WriteString("{\n")
	for _, kv := range []struct {
		k string
		v any
	}{{"capture", g.Capture}, {"tshark", g.TShark}, {"conv_cmd", g.ConvCmd}, {"fields_cmd", g.FieldsCmd}, {"frames", g.Frames}} {
		v, _ := json.Marshal(kv.v)
		fmt.Fprintf(&b, "  %q: %s,\n", kv.k, v)
	}
	b.WriteString("  \"conversations\": [")
	for i, c := range g.Conversations {
		line, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString("\n    ")
		b.Write(line)
	}
	b.WriteString("\n  ]\n}\n")
	var check goldenFile
	if err := json.Unmarshal(b.Bytes(), &check); err != nil {
		t.Fatalf("golden does not parse back: %v", err)
	}
	return b.Bytes()
}

// convKey identifies a conversation regardless of direction.
type convKey struct {
	proto  string
	lo, hi netip.AddrPort
}

func keyOf(proto string, x, y netip.AddrPort) (k convKey, xIsLo bool) {
	if x.Compare(y) <= 0 {
		return convKey{proto, x, y}, true
	}
	return convKey{proto, y, x}, false
}

func (k convKey) String() string {
	if k.proto == "ip" || k.proto == "ipv6" {
		return k.proto + " " + k.lo.Addr().String() + " <-> " + k.hi.Addr().String()
	}
	return k.proto + " " + k.lo.String() + " <-> " + k.hi.String()
}

func parseEndpoint(proto, s string) (netip.AddrPort, error) {
	if proto == "ip" || proto == "ipv6" {
		a, err := netip.ParseAddr(s)
		return netip.AddrPortFrom(a, 0), err
	}
	return netip.ParseAddrPort(s)
}

func endpointString(proto string, ap netip.AddrPort) string {
	if proto == "ip" || proto == "ipv6" {
		return ap.Addr().String()
	}
	return ap.String()
}

func ipProto(a netip.Addr) string {
	if a.Is4() {
		return "ip"
	}
	return "ipv6"
}

// ---- generation from tshark (-update only) ----

func runTShark(t *testing.T, dir string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("tshark", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// ipLayer is one IP header of a frame as tshark dissected it.
type ipLayer struct {
	tok      int // index in frame.protocols
	src, dst netip.Addr
	frag     bool   // a fragment (MF set or offset > 0)
	later    bool   // offset > 0: no transport header
	fragID   string // IPv4 id or IPv6 fragment identification
	fragNext string // IPv4 protocol or IPv6 fragment header next header
	quoted   bool   // inside an ICMP error
}

// l4Layer is one TCP or UDP header of a frame.
type l4Layer struct {
	tok    int
	proto  string
	sp, dp uint16
	ip     int // index of the IP layer it follows
	quoted bool
}

type tokInfo struct {
	greVersion, greProto string
	greKey               *uint32
	vni                  *uint32 // VXLAN/GENEVE VNI or ERSPAN span id
}

type fragKey struct{ src, dst, id, next string }

type fragTarget struct {
	frame int64
	l4    *conversation // nil when the first fragment had no TCP/UDP header
	l4AB  bool
	ip    *conversation
	ipAB  bool
}

type laterFrag struct {
	frame, length int64
	key           fragKey
	ip            *conversation
	ipAB          bool
	counted       bool   // in ip, by tshark
	proto         string // tcp or udp by the fragment's protocol field, else ""
	src, dst      netip.Addr
}

type generator struct {
	t       *testing.T
	convs   map[convKey]*conversation
	firsts  map[fragKey][]fragTarget
	laters  []laterFrag
	frames  int64
	current int64 // frame number, for messages
}

// conv returns the conversation of a header sent from src to dst and
// whether src is its side A.
func (g *generator) conv(proto string, src, dst netip.AddrPort) (*conversation, bool) {
	k, _ := keyOf(proto, src, dst)
	c := g.convs[k]
	if c == nil {
		c = &conversation{Proto: proto, A: endpointString(proto, src), B: endpointString(proto, dst)}
		g.convs[k] = c
	}
	return c, c.A == endpointString(proto, src)
}

func generateGolden(t *testing.T, dir, name string) *goldenFile {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Fatal("-update needs tshark on PATH")
	}
	version := strings.SplitN(string(runTShark(t, dir, "--version")), "\n", 2)[0]
	if !strings.HasPrefix(version, "TShark (Wireshark) 4.0.") {
		t.Logf("golden files were made with tshark 4.0; this is %q", version)
	}
	convArgs := slices.Concat(tsharkPrefs, tsharkConvArgs, []string{"-r", name})
	fieldArgs := slices.Concat(tsharkPrefs, tsharkFieldArgs(), []string{"-r", name})

	g := &generator{t: t, convs: map[convKey]*conversation{}, firsts: map[fragKey][]fragTarget{}}
	sc := bufio.NewScanner(bytes.NewReader(runTShark(t, dir, fieldArgs...)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != len(tsharkFields) {
			t.Fatalf("tshark fields line has %d columns, want %d: %q", len(cols), len(tsharkFields), sc.Text())
		}
		vals := map[string][]string{}
		for i, f := range tsharkFields {
			if cols[i] != "" {
				vals[f] = strings.Split(cols[i], ",")
			}
		}
		g.frame(vals)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	g.resolveFragments()
	checkAgainstConvTables(t, g.convs, runTShark(t, dir, convArgs...))

	gf := &goldenFile{
		Capture:   name,
		TShark:    version,
		ConvCmd:   "tshark " + strings.Join(convArgs, " "),
		FieldsCmd: "tshark " + strings.Join(fieldArgs, " "),
		Frames:    g.frames,
	}
	keys := make([]convKey, 0, len(g.convs))
	for k := range g.convs {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y convKey) int {
		return cmp.Or(cmp.Compare(x.proto, y.proto), x.lo.Compare(y.lo), x.hi.Compare(y.hi))
	})
	for _, k := range keys {
		gf.Conversations = append(gf.Conversations, g.convs[k])
	}
	return gf
}

// frame aggregates one frame of the fields output.
func (g *generator) frame(vals map[string][]string) {
	t := g.t
	num, _ := strconv.ParseInt(vals["frame.number"][0], 10, 64)
	length, err := strconv.ParseInt(vals["frame.len"][0], 10, 64)
	if err != nil {
		t.Fatalf("frame %d: frame.len: %v", num, err)
	}
	g.frames++
	g.current = num
	used := map[string]int{}
	next := func(field string) string {
		i := used[field]
		used[field]++
		if i >= len(vals[field]) {
			t.Fatalf("frame %d: fewer %s values than protocol layers in %v", num, field, vals["frame.protocols"])
		}
		return vals[field][i]
	}
	parseAddr := func(field string) netip.Addr {
		a, err := netip.ParseAddr(next(field))
		if err != nil {
			t.Fatalf("frame %d: %s: %v", num, field, err)
		}
		return a
	}
	parseU32 := func(field string) *uint32 {
		v, err := strconv.ParseUint(next(field), 0, 32)
		if err != nil {
			t.Fatalf("frame %d: %s: %v", num, field, err)
		}
		u := uint32(v)
		return &u
	}
	parsePort := func(field string) uint16 {
		return uint16(*parseU32(field))
	}

	var tokens []string
	if p := vals["frame.protocols"]; len(p) > 0 {
		tokens = strings.Split(p[0], ":")
	}
	var ips []ipLayer
	var l4s []l4Layer
	info := map[int]*tokInfo{}
	inICMP := false
	for i, tok := range tokens {
		switch tok {
		case "ip":
			l := ipLayer{tok: i, src: parseAddr("ip.src"), dst: parseAddr("ip.dst"), quoted: inICMP}
			l.fragNext = next("ip.proto")
			l.fragID = next("ip.id")
			mf := next("ip.flags.mf")
			off := next("ip.frag_offset")
			l.later = off != "0"
			l.frag = l.later || mf == "1" || mf == "True"
			ips = append(ips, l)
		case "ipv6":
			ips = append(ips, ipLayer{tok: i, src: parseAddr("ipv6.src"), dst: parseAddr("ipv6.dst"), quoted: inICMP})
		case "ipv6.fraghdr":
			if len(ips) == 0 {
				t.Fatalf("frame %d: fragment header before any IP header", num)
			}
			l := &ips[len(ips)-1]
			l.frag = true
			l.fragNext = next("ipv6.fraghdr.nxt")
			l.fragID = next("ipv6.fraghdr.ident")
			l.later = next("ipv6.fraghdr.offset") != "0"
		case "icmp", "icmpv6":
			inICMP = true
		case "tcp", "udp":
			l := l4Layer{tok: i, proto: tok, ip: len(ips) - 1, quoted: inICMP}
			l.sp, l.dp = parsePort(tok+".srcport"), parsePort(tok+".dstport")
			if l.ip < 0 {
				t.Fatalf("frame %d: %s without an IP header", num, tok)
			}
			l4s = append(l4s, l)
		case "gre":
			ti := &tokInfo{greProto: next("gre.proto"), greVersion: next("gre.flags.version")}
			// PPTP (version 1) splits the key into length and call id.
			if k := next("gre.flags.key"); (k == "1" || k == "True") && ti.greVersion == "0" {
				ti.greKey = parseU32("gre.key")
			}
			info[i] = ti
		case "erspan":
			info[i] = &tokInfo{vni: parseU32("erspan.spanid")}
		case "vxlan":
			info[i] = &tokInfo{vni: parseU32("vxlan.vni")}
		case "geneve":
			info[i] = &tokInfo{vni: parseU32("geneve.vni")}
		}
	}
	carrier := -1 // innermost IP header outside ICMP errors: what our flow key uses
	for i, l := range ips {
		if !l.quoted {
			carrier = i
		}
	}
	encap := &flow.Encap{}
	for range vals["vlan.id"] {
		encap.VLANs = append(encap.VLANs, uint16(*parseU32("vlan.id")))
	}
	for range vals["mpls.label"] {
		encap.MPLSLabels = append(encap.MPLSLabels, *parseU32("mpls.label"))
	}
	if carrier > 0 {
		encap.Tunnel, encap.VNI = g.tunnelAfter(tokens, info, ips[0].tok)
		encap.OuterSrc, encap.OuterDst = ips[0].src, ips[0].dst
	}
	for f, vs := range vals {
		if f == "frame.number" || f == "frame.len" || f == "frame.protocols" {
			continue
		}
		if used[f] != len(vs) {
			t.Fatalf("frame %d: %d %s values for %d protocol layers in %s", num, len(vs), f, used[f], vals["frame.protocols"][0])
		}
	}

	if carrier < 0 {
		return
	}

	// tshark's taps skip headers quoted in ICMP errors, and its IPv6 tap
	// skips later fragments; so do we here.
	var ipConv *conversation // the carrier's
	var ipAB bool
	for i, l := range ips {
		if l.quoted {
			continue
		}
		c, ab := g.conv(ipProto(l.src), netip.AddrPortFrom(l.src, 0), netip.AddrPortFrom(l.dst, 0))
		if !l.later || l.src.Is4() {
			c.countFrame(ab, length)
		}
		switch {
		case i < carrier:
			kind, _ := g.tunnelAfter(tokens, info, l.tok)
			c.outer(kind).add(ab, 1, length)
		default:
			ipConv, ipAB = c, ab
			c.seenEncap(encap)
		}
	}
	var l4Conv *conversation
	var l4AB bool
	for _, l := range l4s {
		if l.quoted {
			continue
		}
		ip := ips[l.ip]
		c, ab := g.conv(l.proto, netip.AddrPortFrom(ip.src, l.sp), netip.AddrPortFrom(ip.dst, l.dp))
		c.countFrame(ab, length)
		switch {
		case l.ip < carrier:
			kind := ""
			if l.proto == "udp" && l.tok+1 < len(tokens) && (tokens[l.tok+1] == "vxlan" || tokens[l.tok+1] == "geneve") {
				kind = tokens[l.tok+1]
			}
			if kind == "" {
				t.Fatalf("frame %d: %s header outside the innermost IP header in %s, and not a tunnel we know", num, l.proto, vals["frame.protocols"][0])
			}
			c.outer(kind).add(ab, 1, length)
		default:
			l4Conv, l4AB = c, ab
			c.seenEncap(encap)
		}
	}

	for i, l := range ips {
		if !l.frag || l.quoted {
			continue
		}
		k := fragKey{l.src.String(), l.dst.String(), l.fragID, l.fragNext}
		switch {
		case !l.later:
			g.firsts[k] = append(g.firsts[k], fragTarget{frame: num, l4: l4Conv, l4AB: l4AB, ip: ipConv, ipAB: ipAB})
		case i == carrier:
			lf := laterFrag{frame: num, length: length, key: k, ip: ipConv, ipAB: ipAB, counted: l.src.Is4(), src: l.src, dst: l.dst}
			switch l.fragNext {
			case "6":
				lf.proto = "tcp"
			case "17":
				lf.proto = "udp"
			}
			g.laters = append(g.laters, lf)
		default:
			t.Fatalf("frame %d: a later fragment with another IP header inside it", num)
		}
	}
}

func (c *conversation) countFrame(ab bool, length int64) {
	if ab {
		c.AB.add(1, length)
	} else {
		c.BA.add(1, length)
	}
}

func (c *conversation) seenEncap(e *flow.Encap) {
	if c.Encap == nil {
		c.Encap = e
		return
	}
	if encapEqual(c.Encap, e) || slices.ContainsFunc(c.EncapOther, func(o *flow.Encap) bool { return encapEqual(o, e) }) {
		return
	}
	c.EncapOther = append(c.EncapOther, e)
}

func (c *conversation) frag() *dirs {
	if c.Frag == nil {
		c.Frag = &dirs{}
	}
	return c.Frag
}

func (c *conversation) outer(kind string) *dirs {
	if c.Outer == nil {
		c.Outer = map[string]*dirs{}
	}
	if c.Outer[kind] == nil {
		c.Outer[kind] = &dirs{}
	}
	return c.Outer[kind]
}

// tunnelAfter names, in our vocabulary (flow.Encap.Tunnel), the tunnel that
// follows the IP header at token ipTok, and its VNI, session id or key.
func (g *generator) tunnelAfter(tokens []string, info map[int]*tokInfo, ipTok int) (string, uint32) {
	i := ipTok + 1
	for i < len(tokens) && strings.HasPrefix(tokens[i], "ipv6.") { // extension headers
		i++
	}
	val := func(p *uint32) uint32 {
		if p == nil {
			return 0
		}
		return *p
	}
	if i < len(tokens) {
		switch tokens[i] {
		case "ip", "ipv6":
			return "ipip", 0
		case "gre":
			gi := info[i]
			switch {
			case gi.greVersion == "1":
				return "pptp", 0
			case gi.greProto == "0x88be" || gi.greProto == "0x22eb":
				// Type I has no ERSPAN header (tshark shows gre:eth); we
				// report the GRE key then, as for plain GRE.
				if i+1 < len(tokens) && tokens[i+1] == "erspan" {
					return "erspan", val(info[i+1].vni)
				}
				return "erspan", val(gi.greKey)
			}
			return "gre", val(gi.greKey)
		case "udp":
			if i+1 < len(tokens) && (tokens[i+1] == "vxlan" || tokens[i+1] == "geneve") {
				return tokens[i+1], val(info[i+1].vni)
			}
		}
	}
	g.t.Fatalf("frame %d: unknown tunnel after IP header in %s", g.current, strings.Join(tokens, ":"))
	return "", 0
}

// resolveFragments moves each later fragment to the conversations of its
// first fragment: the most recent one before it, or else the first one
// after it (fragments can arrive out of order). Without a first fragment it
// goes, as in our table, to a TCP/UDP conversation without ports.
func (g *generator) resolveFragments() {
	for _, lf := range g.laters {
		var target *fragTarget
		regs := g.firsts[lf.key]
		for i := range regs {
			if regs[i].frame < lf.frame || target == nil {
				target = &regs[i]
			}
			if regs[i].frame > lf.frame {
				break
			}
		}
		if target == nil {
			if !lf.counted {
				lf.ip.frag().add(lf.ipAB, 1, lf.length)
			}
			if lf.proto != "" {
				c, ab := g.conv(lf.proto, netip.AddrPortFrom(lf.src, 0), netip.AddrPortFrom(lf.dst, 0))
				c.frag().add(ab, 1, lf.length)
			}
			continue
		}
		if target.l4 != nil {
			target.l4.frag().add(target.l4AB, 1, lf.length)
		}
		switch {
		case !lf.counted:
			target.ip.frag().add(target.ipAB, 1, lf.length)
		case target.ip != lf.ip:
			lf.ip.frag().add(lf.ipAB, -1, -lf.length)
			target.ip.frag().add(target.ipAB, 1, lf.length)
		}
	}
}

// convRow is a conversation as tshark's tables print it, summed over rows.
type convRow struct {
	loHi, hiLo int64    // frames
	bytes      []string // per row: "<-" and "->" bytes as printed
	rows       int
	aIsLo      []bool
}

// checkAgainstConvTables asserts that the per-frame aggregation is tshark's
// own conversation view: the same conversations and frame counts, and
// bytes that round to what the tables print.
func checkAgainstConvTables(t *testing.T, convs map[convKey]*conversation, out []byte) {
	tables := map[convKey]*convRow{}
	section := ""
	sections := map[string]string{"TCP Conversations": "tcp", "UDP Conversations": "udp", "IPv4 Conversations": "ip", "IPv6 Conversations": "ipv6"}
	seen := map[string]bool{}
	for line := range strings.SplitSeq(string(out), "\n") {
		if p, ok := sections[strings.TrimSpace(line)]; ok {
			section = p
			seen[p] = true
			continue
		}
		if !strings.Contains(line, "<->") {
			continue
		}
		f := strings.Fields(line)
		// A <-> B  framesBA bytes unit  framesAB bytes unit  total...
		if len(f) < 12 || f[1] != "<->" || section == "" {
			t.Fatalf("cannot parse conversation line %q", line)
		}
		a, err1 := splitEndpoint(section, f[0])
		b, err2 := splitEndpoint(section, f[2])
		fBA, err3 := strconv.ParseInt(f[3], 10, 64)
		fAB, err4 := strconv.ParseInt(f[6], 10, 64)
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			t.Fatalf("conversation line %q: %v", line, err)
		}
		k, aLo := keyOf(section, a, b)
		r := tables[k]
		if r == nil {
			r = &convRow{}
			tables[k] = r
		}
		r.rows++
		r.aIsLo = append(r.aIsLo, aLo)
		r.bytes = append(r.bytes, f[4]+" "+f[5], f[7]+" "+f[8])
		if aLo {
			r.loHi += fAB
			r.hiLo += fBA
		} else {
			r.loHi += fBA
			r.hiLo += fAB
		}
	}
	for _, s := range []string{"tcp", "udp", "ip", "ipv6"} {
		if !seen[s] {
			t.Fatalf("tshark printed no %s conversation table:\n%s", s, out)
		}
	}
	var problems []string
	for k, c := range convs {
		if c.AB[0]+c.BA[0] == 0 {
			continue // only later fragments without a first fragment: not a tshark conversation
		}
		r := tables[k]
		if r == nil {
			problems = append(problems, fmt.Sprintf("%v: in the fields output, not in the conversation table", k))
			continue
		}
		loHi, hiLo := c.AB, c.BA
		if a, _ := parseEndpoint(c.Proto, c.A); a != k.lo {
			loHi, hiLo = hiLo, loHi
		}
		if loHi[0] != r.loHi || hiLo[0] != r.hiLo {
			problems = append(problems, fmt.Sprintf("%v: fields give %d/%d frames, table %d/%d", k, loHi[0], hiLo[0], r.loHi, r.hiLo))
		}
		if r.rows == 1 {
			ab, ba := loHi, hiLo
			if !r.aIsLo[0] {
				ab, ba = hiLo, loHi
			}
			if !roundsTo(ba[1], r.bytes[0]) || !roundsTo(ab[1], r.bytes[1]) {
				problems = append(problems, fmt.Sprintf("%v: fields give %d/%d bytes, table prints %q/%q", k, ab[1], ba[1], r.bytes[1], r.bytes[0]))
			}
		}
	}
	for k := range tables {
		if c := convs[k]; c == nil || c.AB[0]+c.BA[0] == 0 {
			problems = append(problems, fmt.Sprintf("%v: in the conversation table, not in the fields output", k))
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		t.Fatalf("the fields aggregation disagrees with tshark's conversation tables:\n  %s", strings.Join(problems, "\n  "))
	}
}

func splitEndpoint(proto, s string) (netip.AddrPort, error) {
	if proto == "ip" || proto == "ipv6" {
		return parseEndpoint(proto, s)
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("no port in %q", s)
	}
	a, err := netip.ParseAddr(s[:i])
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := strconv.ParseUint(s[i+1:], 10, 16)
	return netip.AddrPortFrom(a, uint16(p)), err
}

// roundsTo reports whether n bytes print as s in tshark's tables, which
// truncate to SI units from 10,000 of them on.
func roundsTo(n int64, s string) bool {
	var v int64
	var unit string
	if _, err := fmt.Sscanf(s, "%d %s", &v, &unit); err != nil {
		return false
	}
	div := map[string]int64{"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
	return div != 0 && n/div == v
}

// ---- comparison with our flows ----

type ourConv struct {
	loHi, hiLo count
	records    []*flow.Record
}

func compareGolden(t *testing.T, path string, g *goldenFile) {
	_, st, recs, err := runSensor(t, []string{path})
	if err != nil {
		t.Errorf("sensor: %v", err)
	}
	if int64(st.Packets) != g.Frames {
		t.Errorf("sensor read %d packets, tshark %d frames", st.Packets, g.Frames)
	}

	ours := map[convKey]*ourConv{}
	add := func(proto string, o, r netip.AddrPort, rec *flow.Record) {
		k, origLo := keyOf(proto, o, r)
		c := ours[k]
		if c == nil {
			c = &ourConv{}
			ours[k] = c
		}
		ab := count{int64(rec.OrigPkts), int64(rec.OrigFrameBytes)}
		ba := count{int64(rec.RespPkts), int64(rec.RespFrameBytes)}
		if !origLo {
			ab, ba = ba, ab
		}
		c.loHi, c.hiLo = c.loHi.plus(ab), c.hiLo.plus(ba)
		c.records = append(c.records, rec)
	}
	for i := range recs {
		r := &recs[i]
		if r.Proto == flow.ProtoTCP || r.Proto == flow.ProtoUDP {
			add(r.Proto.String(), netip.AddrPortFrom(r.OrigAddr, r.OrigPort), netip.AddrPortFrom(r.RespAddr, r.RespPort), r)
		}
		add(ipProto(r.OrigAddr), netip.AddrPortFrom(r.OrigAddr, 0), netip.AddrPortFrom(r.RespAddr, 0), r)
	}

	var problems []string
	expected := map[convKey]bool{}
	for _, c := range g.Conversations {
		a, err1 := parseEndpoint(c.Proto, c.A)
		b, err2 := parseEndpoint(c.Proto, c.B)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatalf("golden conversation %+v: %v", c, err)
		}
		k, aLo := keyOf(c.Proto, a, b)
		ab, ba, why := expect(c)
		if ab[0]+ba[0] == 0 {
			if o := ours[k]; o != nil {
				problems = append(problems, fmt.Sprintf("%v: ours has %d records (%v / %v), want none (tshark %v / %v%s)", k, len(o.records), o.loHi, o.hiLo, c.AB, c.BA, why))
			}
			continue
		}
		expected[k] = true
		o := ours[k]
		if o == nil {
			problems = append(problems, fmt.Sprintf("%v: missing from ours, want %s→%s %v, %s→%s %v%s", k, c.A, c.B, ab, c.B, c.A, ba, why))
			continue
		}
		oab, oba := o.loHi, o.hiLo
		if !aLo {
			oab, oba = oba, oab
		}
		if a == b { // direction is a matter of convention
			oab, oba, ab, ba = oab.plus(oba), count{}, ab.plus(ba), count{}
		}
		if oab != ab || oba != ba {
			problems = append(problems, fmt.Sprintf("%v: ours %s→%s %v, %s→%s %v; want %v, %v (tshark %v, %v%s)", k, c.A, c.B, oab, c.B, c.A, oba, ab, ba, c.AB, c.BA, why))
		}
		if c.Encap != nil {
			problems = append(problems, encapProblems(k, o.records, c)...)
		}
	}
	for k, o := range ours {
		if !expected[k] {
			problems = append(problems, fmt.Sprintf("%v: ours has %d records (%v / %v), tshark has no such conversation", k, len(o.records), o.loHi, o.hiLo))
		}
	}
	nWant, nOurs := 0, 0
	for k := range expected {
		if k.proto == "tcp" || k.proto == "udp" {
			nWant++
		}
	}
	for k := range ours {
		if k.proto == "tcp" || k.proto == "udp" {
			nOurs++
		}
	}
	if nWant != nOurs {
		problems = append(problems, fmt.Sprintf("%d TCP/UDP flows (5-tuples), want %d", nOurs, nWant))
	}
	slices.Sort(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

// expect turns tshark's counts into the counts our flows must have. The
// differences are deliberate:
//   - A tunnel's outer headers (the UDP conversation of VXLAN/GENEVE, the
//     outer IP pair) are conversations for tshark; we key every frame by
//     its innermost header only.
//   - We count later IP fragments into the flow of their first fragment;
//     tshark, not reassembling, counts them in no TCP/UDP conversation, in
//     no IPv6 conversation, and in the IPv4 conversation of the fragmented
//     header, which is not the flow's when a tunnel's outer header was
//     fragmented.
//   - Tunnels in notLookedThrough stay flows between their outer
//     addresses.
//
// Headers quoted inside ICMP errors need no adjustment: tshark 4.0 does not
// count them in the quoted header's conversation (the -update check against
// its tables shows it: in 6in4tunnel.pcap, frames 3 and 45 are ICMPv6
// errors quoting TCP), and we count the frame in the ICMP flow between the
// error's own addresses, which tshark counts in that IP conversation too.
func expect(c *conversation) (ab, ba count, why string) {
	if c.Encap != nil && notLookedThrough[c.Encap.Tunnel] != "" {
		return count{}, count{}, "; inside " + c.Encap.Tunnel + ": " + notLookedThrough[c.Encap.Tunnel]
	}
	ab, ba = c.AB, c.BA
	var notes []string
	for _, kind := range slices.Sorted(maps.Keys(c.Outer)) {
		if notLookedThrough[kind] != "" {
			continue
		}
		d := c.Outer[kind]
		ab, ba = ab.sub(d.AB), ba.sub(d.BA)
		notes = append(notes, fmt.Sprintf("minus %v / %v as outer header of %s", d.AB, d.BA, kind))
	}
	if d := c.Frag; d != nil {
		ab, ba = ab.plus(d.AB), ba.plus(d.BA)
		notes = append(notes, fmt.Sprintf("plus %v / %v later fragments", d.AB, d.BA))
	}
	if len(notes) > 0 {
		why = "; " + strings.Join(notes, ", ")
	}
	return ab, ba, why
}

// encapProblems checks the encapsulation of each record, which is that of
// its first packet: the first record's must be that of tshark's first frame,
// every other record's one that tshark saw for the conversation.
func encapProblems(k convKey, recs []*flow.Record, c *conversation) []string {
	first := slices.MinFunc(recs, func(x, y *flow.Record) int { return x.Start.Compare(y.Start) })
	var problems []string
	for _, r := range recs {
		got := r.Encap
		if got == nil {
			got = &flow.Encap{}
		}
		ok := encapEqual(got, c.Encap)
		if r != first {
			ok = ok || slices.ContainsFunc(c.EncapOther, func(e *flow.Encap) bool { return encapEqual(got, e) })
		}
		if ok {
			continue
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(c.Encap)
		msg := fmt.Sprintf("%v: record starting %s has encapsulation %s, tshark's first frame %s", k, r.Start.Format("15:04:05.000000"), g, w)
		if len(c.EncapOther) > 0 {
			o, _ := json.Marshal(c.EncapOther)
			msg += fmt.Sprintf(" (and later ones %s)", o)
		}
		problems = append(problems, msg)
	}
	return problems
}

func encapEqual(x, y *flow.Encap) bool {
	return slices.Equal(x.VLANs, y.VLANs) && slices.Equal(x.MPLSLabels, y.MPLSLabels) &&
		x.Tunnel == y.Tunnel && x.OuterSrc == y.OuterSrc && x.OuterDst == y.OuterDst && x.VNI == y.VNI
}

// ---- robustness over every shared capture ----

// brokenCaptures are the shared files that cannot be read to their end,
// where the problem is, and what was read before it.
var brokenCaptures = map[string]struct {
	packet, offset int64 // *pcapfile.Error position
	cause          error
	packets        int64 // read before the problem
	records        int   // flow records from them
}{
	// pcap 2.0, so the record lengths are swapped as in libpcap: packet 0
	// is 197 bytes at 24+16; two bytes of a record header follow it.
	"fuzz-2021-10-13.pcap": {packet: 1, offset: 24 + 16 + 197, cause: io.ErrUnexpectedEOF, packets: 1, records: 0},
	// SHB (100 bytes) + IDB (32) + EPB (348) with one DHCP packet, then a
	// section header of version 2.0.
	"le_test901.pcapng": {packet: 1, offset: 100 + 32 + 348, cause: pcapfile.ErrUnsupported, packets: 1, records: 1},
	"MANIFEST.md":       {packet: 0, offset: 0, cause: pcapfile.ErrNotCapture},
}

// countingSource counts the packets the reader returned.
type countingSource struct {
	*pcapfile.Source
	n int64
}

func (c *countingSource) Next(p *pcapfile.Packet) error {
	err := c.Source.Next(p)
	if err == nil {
		c.n++
	}
	return err
}

func TestMalformedCapturesRunToEnd(t *testing.T) {
	dir := pcapDir(t)
	manifest := manifestPackets(t, dir)
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ran := 0
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			read, st, recs, err := runSensor(t, []string{path})
			total += read
			ran++
			if st.Packets != uint64(read) {
				t.Errorf("sensor counted %d packets, the reader returned %d", st.Packets, read)
			}
			if want, ok := manifest[name]; ok && want != read {
				t.Errorf("reader returned %d packets, MANIFEST.md (capinfos) says %d", read, want)
			}
			if n := st.DecodeErrors[capture.ErrPanic]; n > 0 {
				t.Errorf("the decoder recovered from %d panics", n)
			}
			checkRecordTotals(t, st, recs)
			broken, isBroken := brokenCaptures[name]
			if !isBroken {
				if err != nil {
					t.Errorf("Run: %v", err)
				}
				return
			}
			var fe *pcapfile.Error
			switch {
			case err == nil:
				t.Fatalf("Run returned no error, want one at packet %d, byte offset %d", broken.packet, broken.offset)
			case !errors.As(err, &fe):
				t.Fatalf("Run: %v, not a *pcapfile.Error", err)
			}
			if fe.File != path || fe.Packet != broken.packet || fe.Offset != broken.offset || !errors.Is(err, broken.cause) {
				t.Errorf("Run: %v; want file %s, packet %d, byte offset %d, cause %v", err, path, broken.packet, broken.offset, broken.cause)
			}
			for _, s := range []string{path, fmt.Sprintf("packet %d", broken.packet), fmt.Sprintf("byte offset %d", broken.offset)} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if read != broken.packets || len(recs) != broken.records {
				t.Errorf("before the problem: %d packets, %d flow records; want %d, %d", read, len(recs), broken.packets, broken.records)
			}
		})
	}
	t.Run("whole folder", func(t *testing.T) {
		// One source over the folder goes on past each broken file.
		read, st, recs, err := runSensor(t, []string{dir})
		if (ran == len(files) && read != total) || st.Packets != uint64(read) {
			t.Errorf("read %d packets, sensor counted %d; the files one by one gave %d", read, st.Packets, total)
		}
		checkRecordTotals(t, st, recs)
		var ie *capture.IncompleteError
		if !errors.As(err, &ie) {
			t.Fatalf("Run: %v, want a *capture.IncompleteError", err)
		}
		var named []string
		for _, e := range ie.Errs {
			var fe *pcapfile.Error
			if errors.As(e, &fe) {
				named = append(named, filepath.Base(fe.File))
			}
		}
		var want []string
		for name := range brokenCaptures {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				want = append(want, name)
			}
		}
		slices.Sort(named)
		slices.Sort(want)
		if !slices.Equal(named, want) {
			t.Errorf("errors name %v, want %v", named, want)
		}
	})
}

// runSensor runs a sensor over paths and returns the packets the reader
// returned and copies of the final records. A panic fails the test.
func runSensor(t *testing.T, paths []string) (read int64, st capture.Stats, recs []flow.Record, err error) {
	t.Helper()
	src, err := pcapfile.OpenSource(paths)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cs := &countingSource{Source: src}
	cfg := capture.Config{Table: capture.DefaultTableConfig()}
	cfg.Table.Seed = 1
	s := capture.NewSensor(cfg, func(r *flow.Record) {
		if !r.Final {
			return
		}
		c := *r // the sensor reuses r
		if r.Encap != nil {
			e := *r.Encap
			e.VLANs = slices.Clone(e.VLANs)
			e.MPLSLabels = slices.Clone(e.MPLSLabels)
			c.Encap = &e
		}
		c.App = nil
		recs = append(recs, c)
	})
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("panic: %v\n%s", r, debug.Stack())
			}
		}()
		err = s.Run(context.Background(), cs)
	}()
	return cs.n, s.Stats(), recs, err
}

// checkRecordTotals: every packet the table counted is in exactly one final
// record.
func checkRecordTotals(t *testing.T, st capture.Stats, recs []flow.Record) {
	t.Helper()
	var pkts uint64
	for _, r := range recs {
		pkts += r.OrigPkts + r.RespPkts
	}
	if pkts != st.Table.Packets {
		t.Errorf("final records hold %d packets, the table counted %d", pkts, st.Table.Packets)
	}
	if uint64(len(recs)) != st.Table.Records {
		t.Errorf("%d final records emitted, the table says %d", len(recs), st.Table.Records)
	}
}

// manifestPackets reads the packet counts that MANIFEST.md lists (measured
// with capinfos), where they are numbers.
func manifestPackets(t *testing.T, dir string) map[string]int64 {
	m := map[string]int64{}
	data, err := os.ReadFile(filepath.Join(dir, "MANIFEST.md"))
	if err != nil {
		t.Logf("no MANIFEST.md: packet counts are not cross-checked: %v", err)
		return m
	}
	defer func() {
		if len(m) == 0 {
			t.Errorf("MANIFEST.md has no packet counts that this test can read")
		}
	}()
	col := -1
	for line := range strings.SplitSeq(string(data), "\n") {
		cells := strings.Split(line, "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		if col < 0 {
			col = slices.Index(cells, "packets")
			continue
		}
		if len(cells) > col {
			if n, err := strconv.ParseInt(strings.ReplaceAll(cells[col], ",", ""), 10, 64); err == nil {
				m[cells[1]] = n
			}
		}
	}
	return m
}
