package apphint

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Real-traffic tests: run the parsers over the shared captures, then check
// every result against tshark's dissection of the same frames.

func isDNSPort(p uint16) bool { return p == 53 || p == 5353 || p == 5355 }

type dnsSeen struct {
	qname    string
	qtype    uint16
	response bool
	ancount  int
	a, aaaa  []string
	cname    []string
	ptr      []string
	answers  int
}

func TestRealDNS(t *testing.T) {
	dir := pcapsDir(t)
	for _, name := range []string{
		"dns_exfiltration.pcap",
		"2020-06-03-Dridex-infection-traffic.pcap",
		"Example-1-2021-01-06-Emotet-infection.pcap",
		"2023-01-Unit42-Wireshark-quiz.pcap",
		"http_espn.pcapng",
		"evidence03.pcap",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // tshark dominates the run time
			path := filepath.Join(dir, name)
			var d DNS
			seen := map[int]dnsSeen{}
			for _, f := range readFrames(t, path) {
				if f.tcp || len(f.payload) == 0 || !isDNSPort(f.src.Port()) && !isDNSPort(f.dst.Port()) {
					continue
				}
				if err := d.Parse(f.payload); err != nil {
					t.Errorf("frame %d: %v", f.num, err)
					continue
				}
				s := dnsSeen{qname: string(d.QName), qtype: d.QType, response: d.Response, ancount: int(d.ANCount), answers: len(d.Answers)}
				for _, a := range d.Answers {
					switch a.Type {
					case DNSTypeA:
						s.a = append(s.a, a.Addr.String())
					case DNSTypeAAAA:
						s.aaaa = append(s.aaaa, a.Addr.String())
					case DNSTypeCNAME:
						s.cname = append(s.cname, string(a.Name))
					case DNSTypePTR:
						s.ptr = append(s.ptr, string(a.Name))
					}
				}
				seen[f.num] = s
			}
			if len(seen) == 0 {
				t.Fatal("no DNS messages found")
			}

			rows, ok := tsharkRows(t, path, "(dns || mdns || llmnr) && udp",
				"frame.number", "dns.qry.name", "dns.qry.type", "dns.flags.response",
				"dns.count.answers", "dns.count.auth_rr", "dns.count.add_rr", "dns.a", "dns.aaaa", "dns.cname",
				"dns.ptr.domain_name")
			if !ok {
				t.Skipf("tshark not installed: parsed %d DNS messages without error, cross-check skipped", len(seen))
			}
			matched := 0
			for _, r := range rows {
				num, _ := strconv.Atoi(r[0])
				s, ok := seen[num]
				if !ok {
					t.Errorf("frame %d: tshark sees DNS, we did not parse it", num)
					continue
				}
				delete(seen, num)
				var errs []string
				check := func(what string, got, want any) {
					if fmt.Sprint(got) != fmt.Sprint(want) {
						errs = append(errs, fmt.Sprintf("%s = %v, tshark %v", what, got, want))
					}
				}
				check("qname", s.qname, presentation(strings.Split(r[1], ",")[0]))
				qtype := strings.Split(r[2], ",")[0]
				if qtype == "" { // no question
					qtype = "0"
				}
				check("qtype", s.qtype, qtype)
				check("response", s.response, r[3] == "1" || r[3] == "True")
				check("ancount", s.ancount, r[4])
				// tshark lists A/AAAA/CNAME of all sections; ours come from the
				// answer section, which is first.
				onlyAnswers := r[5] == "0" && r[6] == "0" && s.answers == s.ancount
				for _, l := range []struct {
					what      string
					got, want []string
				}{{"A", s.a, splitList(r[7])}, {"AAAA", s.aaaa, splitList(r[8])}, {"CNAME", s.cname, presentationList(r[9])}, {"PTR", s.ptr, presentationList(r[10])}} {
					if onlyAnswers {
						check(l.what, l.got, l.want)
					} else if len(l.got) > len(l.want) || !slices.Equal(l.got, l.want[:len(l.got)]) {
						errs = append(errs, fmt.Sprintf("%s = %v, not a prefix of tshark %v", l.what, l.got, l.want))
					}
				}
				if errs != nil {
					t.Errorf("frame %d: %s", num, strings.Join(errs, "; "))
					continue
				}
				matched++
			}
			for num := range seen {
				t.Errorf("frame %d: we parsed DNS, tshark does not list it", num)
			}
			t.Logf("%d DNS messages, %d matched tshark", len(rows), matched)
		})
	}
}

// presentation converts tshark's display of a name to ours: lower case, and
// the special and non-printable bytes escaped (tshark shows them raw; none of
// the captures has a dot inside a label).
func presentation(name string) string {
	if name == "<Root>" {
		return "."
	}
	var b strings.Builder
	for _, label := range strings.Split(name, ".") {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		buf := make([]byte, 4*len(label))
		n := 0
		for i := 0; i < len(label); i++ {
			n = appendNameByte(buf, n, label[i])
		}
		b.Write(buf[:n])
	}
	return b.String()
}

func presentationList(s string) []string {
	l := splitList(s)
	for i := range l {
		l[i] = presentation(l[i])
	}
	return l
}

type flowKey struct{ src, dst netip.AddrPort }

type helloSeen struct {
	res        HelloResult
	sni, alpn  string
	maxVersion uint16
	records    int
}

func TestRealClientHello(t *testing.T) {
	dir := pcapsDir(t)
	for _, name := range []string{
		"test-cc-capture-1.pcap",
		"2020-06-03-Dridex-infection-traffic.pcap",
		"Example-1-2021-01-06-Emotet-infection.pcap",
		"2023-01-Unit42-Wireshark-quiz.pcap",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // tshark dominates the run time
			path := filepath.Join(dir, name)
			type clientFlow struct {
				next uint32
				buf  []byte
				done bool
				res  HelloResult
			}
			flows := map[flowKey]*clientFlow{}
			flowOf := map[int]*clientFlow{} // frame -> its client flow
			seen := map[int]helloSeen{}     // frame completing the ClientHello -> result
			var h Hello
			for _, f := range readFrames(t, path) {
				if !f.tcp {
					continue
				}
				k := flowKey{f.src, f.dst}
				if f.syn && !f.ack {
					flows[k] = &clientFlow{next: f.seq + 1}
					continue
				}
				fl := flows[k]
				if fl == nil {
					continue
				}
				flowOf[f.num] = fl
				if fl.done || len(f.payload) == 0 || f.seq != fl.next {
					continue
				}
				fl.buf = append(fl.buf, f.payload...)
				fl.next += uint32(len(f.payload))
				res, need := h.Parse(fl.buf)
				sni, res2, need2 := ClientHelloSNI(fl.buf)
				if res2 != res || need2 != need || !bytes.Equal(sni, h.SNI) {
					t.Errorf("frame %d: ClientHelloSNI = %q %v %d, Hello.Parse = %q %v %d", f.num, sni, res2, need2, h.SNI, res, need)
				}
				if res == HelloIncomplete {
					if need <= len(fl.buf) {
						t.Errorf("frame %d: incomplete with need %d <= %d buffered", f.num, need, len(fl.buf))
					}
					if len(fl.buf) > 1<<16 {
						fl.done = true
					}
					continue
				}
				fl.done, fl.res = true, res
				if res != HelloNotTLS {
					seen[f.num] = helloSeen{res, string(h.SNI), string(h.ALPN), h.MaxVersion, h.Records}
				}
			}
			if len(seen) == 0 {
				t.Fatal("no ClientHello found")
			}

			rows, ok := tsharkRows(t, path, "tls.handshake.type == 1",
				"frame.number", "tls.handshake.extensions_server_name", "tls.handshake.extensions_alpn_str",
				"tls.handshake.extensions.supported_version")
			if !ok {
				t.Skipf("tshark not installed: found %d ClientHellos, cross-check skipped", len(seen))
			}
			matched, midStream := 0, 0
			for _, r := range rows {
				num, _ := strconv.Atoi(r[0])
				s, ok := seen[num]
				if !ok {
					if fl := flowOf[num]; fl != nil && fl.done && fl.res == HelloNotTLS {
						midStream++ // e.g. after STARTTLS: not at the start of the flow
						continue
					}
					t.Errorf("frame %d: tshark sees a ClientHello, we did not", num)
					continue
				}
				delete(seen, num)
				want := helloSeen{res: HelloNoSNI, sni: r[1], maxVersion: s.maxVersion, records: s.records}
				if r[1] != "" {
					want.res = HelloFound
				}
				if alpns := splitList(r[2]); alpns != nil {
					want.alpn = alpns[0]
				}
				if vs := splitList(r[3]); vs != nil {
					want.maxVersion = 0
					for _, v := range vs {
						n, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 16)
						if err == nil && n&0x0f0f != 0x0a0a && uint16(n) > want.maxVersion {
							want.maxVersion = uint16(n)
						}
					}
				}
				if s != want {
					t.Errorf("frame %d: got %+v, tshark says %+v", num, s, want)
					continue
				}
				matched++
			}
			for num, s := range seen {
				t.Errorf("frame %d: we found a ClientHello (%+v), tshark did not", num, s)
			}
			t.Logf("%d ClientHellos per tshark: %d matched, %d not at the start of a flow (skipped)", len(rows), matched, midStream)
		})
	}
}

func TestRealHTTPRequest(t *testing.T) {
	dir := pcapsDir(t)
	for _, name := range []string{
		"evidence03.pcap",
		"http_espn.pcapng",
		"2020-06-03-Dridex-infection-traffic.pcap",
		"Example-1-2021-01-06-Emotet-infection.pcap",
		"2023-01-Unit42-Wireshark-quiz.pcap",
		"cryptowall4_c2.pcapng",
		"C2_Foudre_Backdoor_DGA.pcapng",
		"LM_rdp_sharprdp.pcapng",
		"http-post-large.pcap",
		"trickbot.pcap",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // tshark dominates the run time
			path := filepath.Join(dir, name)
			frames := readFrames(t, path)
			var req HTTPRequest
			okFrames := map[int]bool{}
			for _, f := range frames {
				if len(f.payload) > 0 && ParseHTTPRequest(f.payload, &req) {
					okFrames[f.num] = true
				}
			}
			if len(okFrames) == 0 {
				t.Fatal("no HTTP request found")
			}
			rows, ok := tsharkRows(t, path, "http.request",
				"frame.number", "tcp.segment", "http.request.method", "http.host", "http.request.uri")
			if !ok {
				t.Skipf("tshark not installed: found %d HTTP requests, cross-check skipped", len(okFrames))
			}
			matched, hostLater := 0, 0
			for _, r := range rows {
				num, _ := strconv.Atoi(r[0])
				first := num // the segment holding the request line
				for _, s := range splitList(r[1]) {
					if n, _ := strconv.Atoi(s); n < first {
						first = n
					}
				}
				if !okFrames[first] {
					t.Errorf("frame %d: tshark sees %s %s, we did not", first, r[2], r[4])
					continue
				}
				delete(okFrames, first)
				ParseHTTPRequest(frames[first-1].payload, &req)
				var errs []string
				if string(req.Method) != r[2] {
					errs = append(errs, fmt.Sprintf("method %q, tshark %q", req.Method, r[2]))
				}
				if req.Version != nil && string(req.Target) != r[4] {
					errs = append(errs, fmt.Sprintf("target %q, tshark %q", req.Target, r[4]))
				}
				switch {
				case req.Host != nil && string(req.Host) != r[3]:
					errs = append(errs, fmt.Sprintf("host %q, tshark %q", req.Host, r[3]))
				case req.Host == nil && r[3] != "" && req.Complete:
					errs = append(errs, fmt.Sprintf("no host, tshark %q", r[3]))
				case req.Host == nil && r[3] != "":
					hostLater++ // Host header not within the first segment
				}
				if errs != nil {
					t.Errorf("frame %d: %s", first, strings.Join(errs, "; "))
					continue
				}
				matched++
			}
			for num := range okFrames {
				t.Errorf("frame %d: we parsed an HTTP request, tshark does not list it", num)
			}
			t.Logf("%d HTTP requests per tshark: %d matched (%d with Host beyond the first segment)", len(rows), matched, hostLater)
		})
	}
}
