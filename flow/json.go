package flow

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the record as one JSON object (no newline) to b. It
// allocates nothing beyond growing b. Field names follow Zeek's conn.log;
// README.md documents each one.
//
// It runs once per flow record, so it is written for speed: each constant
// run of JSON is one append, numbers and times go through digit-pair
// tables, and the strings flowhound itself produces are copied after a
// table-driven check instead of being escaped byte by byte.
func (r *Record) AppendJSON(b []byte) []byte {
	b = slices.Grow(b, 640)
	b = append(b, `{"v":`...)
	b = appendUint(b, SchemaVersion)
	b = append(b, `,"ts":"`...)
	b = appendTimeRaw(b, r.Start)
	b = append(b, `","end":"`...)
	b = appendTimeRaw(b, r.End)
	b = append(b, `","duration":`...)
	b = appendSeconds(b, r.Duration())
	b = appendStringField(b, `,"uid":`, r.UID)
	b = appendStringField(b, `,"community_id":`, r.CommunityID)
	b = append(b, `,"proto":"`...)
	b = append(b, r.Proto.String()...)
	b = append(b, '"')
	if r.Service != "" {
		b = appendStringField(b, `,"service":`, r.Service)
	}
	b = append(b, `,"orig_h":"`...)
	b = appendAddr(b, r.OrigAddr)
	b = append(b, `","orig_p":`...)
	b = appendUint(b, uint64(r.OrigPort))
	b = append(b, `,"resp_h":"`...)
	b = appendAddr(b, r.RespAddr)
	b = append(b, `","resp_p":`...)
	b = appendUint(b, uint64(r.RespPort))
	b = appendUintField(b, `,"orig_bytes":`, r.OrigBytes)
	b = appendUintField(b, `,"resp_bytes":`, r.RespBytes)
	b = appendUintField(b, `,"missed_bytes":`, r.MissedBytes)
	b = appendUintField(b, `,"orig_pkts":`, r.OrigPkts)
	b = appendUintField(b, `,"resp_pkts":`, r.RespPkts)
	b = appendUintField(b, `,"orig_ip_bytes":`, r.OrigIPBytes)
	b = appendUintField(b, `,"resp_ip_bytes":`, r.RespIPBytes)
	b = appendUintField(b, `,"orig_frame_bytes":`, r.OrigFrameBytes)
	b = appendUintField(b, `,"resp_frame_bytes":`, r.RespFrameBytes)
	b = appendStringField(b, `,"conn_state":`, r.ConnState)
	b = appendStringField(b, `,"history":`, r.History)
	b = appendBoolField(b, `,"local_orig":`, r.LocalOrig)
	b = appendBoolField(b, `,"local_resp":`, r.LocalResp)
	b = appendBoolField(b, `,"final":`, r.Final)
	if e := r.Encap; e != nil {
		b = append(b, `,"encap":{`...)
		first := true
		sep := func() {
			if !first {
				b = append(b, ',')
			}
			first = false
		}
		if len(e.VLANs) > 0 {
			sep()
			b = append(b, `"vlan":[`...)
			for i, v := range e.VLANs {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendUint(b, uint64(v))
			}
			b = append(b, ']')
		}
		if len(e.MPLSLabels) > 0 {
			sep()
			b = append(b, `"mpls":[`...)
			for i, v := range e.MPLSLabels {
				if i > 0 {
					b = append(b, ',')
				}
				b = appendUint(b, uint64(v))
			}
			b = append(b, ']')
		}
		if e.Tunnel != "" {
			sep()
			b = append(b, `"tunnel":`...)
			b = appendString(b, e.Tunnel)
			b = append(b, `,"outer_src":"`...)
			b = e.OuterSrc.AppendTo(b)
			b = append(b, `","outer_dst":"`...)
			b = e.OuterDst.AppendTo(b)
			b = append(b, '"')
			if e.VNI != 0 {
				b = appendUintField(b, `,"vni":`, uint64(e.VNI))
			}
		}
		b = append(b, '}')
	}
	if a := r.App; a != nil {
		if a.DNSQuery != "" || a.DNSRcode >= 0 && len(a.DNSAnswers) > 0 {
			b = append(b, `,"dns":{"query":`...)
			b = appendString(b, a.DNSQuery)
			b = appendUintField(b, `,"qtype":`, uint64(a.DNSQType))
			if a.DNSRcode >= 0 {
				b = append(b, `,"rcode":`...)
				b = strconv.AppendInt(b, int64(a.DNSRcode), 10)
			}
			if len(a.DNSAnswers) > 0 {
				b = appendStrings(b, "answers", a.DNSAnswers)
			}
			if a.DNSQueries > 0 {
				b = appendUintField(b, `,"queries":`, uint64(a.DNSQueries))
			}
			if len(a.DNSNames) > 1 {
				b = appendStrings(b, "names", a.DNSNames)
			}
			b = append(b, '}')
		}
		if a.TLSSNI != "" {
			b = append(b, `,"tls":{"sni":`...)
			b = appendString(b, a.TLSSNI)
			b = append(b, '}')
		}
		if a.HTTPMethod != "" || a.HTTPHost != "" {
			b = append(b, `,"http":{"method":`...)
			b = appendString(b, a.HTTPMethod)
			b = appendStringField(b, `,"host":`, a.HTTPHost)
			if a.HTTPProxyTarget != "" {
				b = appendStringField(b, `,"proxy_target":`, a.HTTPProxyTarget)
			}
			b = append(b, '}')
		}
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (r *Record) MarshalJSON() ([]byte, error) { return r.AppendJSON(nil), nil }

// wireRecord mirrors the JSON shape for decoding.
type wireRecord struct {
	V           int        `json:"v"`
	TS          time.Time  `json:"ts"`
	End         time.Time  `json:"end"`
	UID         string     `json:"uid"`
	CommunityID string     `json:"community_id"`
	Proto       string     `json:"proto"`
	Service     string     `json:"service"`
	OrigH       netip.Addr `json:"orig_h"`
	OrigP       uint16     `json:"orig_p"`
	RespH       netip.Addr `json:"resp_h"`
	RespP       uint16     `json:"resp_p"`
	OrigBytes   uint64     `json:"orig_bytes"`
	RespBytes   uint64     `json:"resp_bytes"`
	MissedBytes uint64     `json:"missed_bytes"`
	OrigPkts    uint64     `json:"orig_pkts"`
	RespPkts    uint64     `json:"resp_pkts"`
	OrigIP      uint64     `json:"orig_ip_bytes"`
	RespIP      uint64     `json:"resp_ip_bytes"`
	OrigFrame   uint64     `json:"orig_frame_bytes"`
	RespFrame   uint64     `json:"resp_frame_bytes"`
	ConnState   string     `json:"conn_state"`
	History     string     `json:"history"`
	LocalOrig   bool       `json:"local_orig"`
	LocalResp   bool       `json:"local_resp"`
	Final       bool       `json:"final"`
	Encap       *Encap     `json:"encap"`
	DNS         *struct {
		Query   string   `json:"query"`
		QType   uint16   `json:"qtype"`
		Rcode   *int16   `json:"rcode"`
		Answers []string `json:"answers"`
		Queries uint32   `json:"queries"`
		Names   []string `json:"names"`
	} `json:"dns"`
	TLS *struct {
		SNI string `json:"sni"`
	} `json:"tls"`
	HTTP *struct {
		Method      string `json:"method"`
		Host        string `json:"host"`
		ProxyTarget string `json:"proxy_target"`
	} `json:"http"`
}

// UnmarshalJSON decodes what AppendJSON wrote. Records of a newer major
// schema version are refused rather than misread.
func (r *Record) UnmarshalJSON(data []byte) error {
	var w wireRecord
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	if w.V != SchemaVersion {
		return fmt.Errorf("flow record schema version %d, want %d", w.V, SchemaVersion)
	}
	p, err := ParseProto(w.Proto)
	if err != nil {
		return err
	}
	*r = Record{
		Start: w.TS, End: w.End, UID: w.UID, CommunityID: w.CommunityID,
		OrigAddr: w.OrigH, OrigPort: w.OrigP, RespAddr: w.RespH, RespPort: w.RespP,
		Proto: p, Service: w.Service,
		OrigBytes: w.OrigBytes, RespBytes: w.RespBytes, MissedBytes: w.MissedBytes,
		OrigPkts: w.OrigPkts, RespPkts: w.RespPkts, OrigIPBytes: w.OrigIP, RespIPBytes: w.RespIP,
		OrigFrameBytes: w.OrigFrame, RespFrameBytes: w.RespFrame,
		ConnState: w.ConnState, History: w.History,
		LocalOrig: w.LocalOrig, LocalResp: w.LocalResp, Final: w.Final,
		Encap: w.Encap,
	}
	if w.DNS != nil || w.TLS != nil || w.HTTP != nil {
		a := &App{DNSRcode: -1}
		if w.DNS != nil {
			a.DNSQuery, a.DNSQType, a.DNSAnswers = w.DNS.Query, w.DNS.QType, w.DNS.Answers
			a.DNSQueries, a.DNSNames = w.DNS.Queries, w.DNS.Names
			if len(a.DNSNames) == 0 && a.DNSQuery != "" {
				a.DNSNames = []string{a.DNSQuery}
			}
			if w.DNS.Rcode != nil {
				a.DNSRcode = *w.DNS.Rcode
			}
		}
		if w.TLS != nil {
			a.TLSSNI = w.TLS.SNI
		}
		if w.HTTP != nil {
			a.HTTPMethod, a.HTTPHost, a.HTTPProxyTarget = w.HTTP.Method, w.HTTP.Host, w.HTTP.ProxyTarget
		}
		r.App = a
	}
	return nil
}

// ParseProto is the inverse of Proto.String.
func ParseProto(s string) (Proto, error) {
	switch s {
	case "tcp":
		return ProtoTCP, nil
	case "udp":
		return ProtoUDP, nil
	case "icmp":
		return ProtoICMP, nil
	case "icmp6":
		return ProtoICMPv6, nil
	case "sctp":
		return ProtoSCTP, nil
	}
	n, err := strconv.ParseUint(s, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("unknown proto %q", s)
	}
	return Proto(n), nil
}

func appendStrings(b []byte, name string, v []string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":[`...)
	for i, s := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendTime writes t as quoted RFC 3339 in UTC with the fraction of a
// second trimmed of trailing zeros — what time.RFC3339Nano gives, without
// the general formatter's cost (two per record).
func appendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = appendTimeRaw(b, t)
	return append(b, '"')
}

// appendTimeRaw is appendTime without the quotes.
func appendTimeRaw(b []byte, t time.Time) []byte {
	var buf [30]byte
	var year, month, day, hour, min, sec int
	if u := t.Unix(); u >= 0 && u < maxUnix9999 {
		// The common case, without time's general calendar code.
		days, secs := u/86400, int(u%86400)
		year, month, day = civilCached(days)
		hour, min = secs/3600, secs/60%60
		sec = secs - 3600*hour - 60*min
	} else {
		t = t.UTC()
		var m time.Month
		year, m, day = t.Date()
		month = int(m)
		hour, min, sec = t.Clock()
		if year < 0 || year > 9999 {
			return t.AppendFormat(b, time.RFC3339Nano)
		}
	}
	c := year / 100
	*(*[2]byte)(buf[0:]) = digits2[uint8(c)]
	*(*[2]byte)(buf[2:]) = digits2[uint8(year-100*c)]
	buf[4] = '-'
	*(*[2]byte)(buf[5:]) = digits2[uint8(month)]
	buf[7] = '-'
	*(*[2]byte)(buf[8:]) = digits2[uint8(day)]
	buf[10] = 'T'
	*(*[2]byte)(buf[11:]) = digits2[uint8(hour)]
	buf[13] = ':'
	*(*[2]byte)(buf[14:]) = digits2[uint8(min)]
	buf[16] = ':'
	*(*[2]byte)(buf[17:]) = digits2[uint8(sec)]
	n := 19
	if ns := t.Nanosecond(); ns != 0 {
		buf[19] = '.'
		n = 20 + appendFrac((*[9]byte)(buf[20:]), ns)
	}
	buf[n] = 'Z'
	return append(b, buf[:n+1]...)
}

// digits2 holds the two decimal digits of 0 to 99; it has 256 entries so
// that indexing it with a byte needs no bounds check.
var digits2 = func() (t [256][2]byte) {
	for i := range 100 {
		t[i] = [2]byte{byte('0' + i/10), byte('0' + i%10)}
	}
	return t
}()

// lastDay caches civil's result for the day last formatted, packed as
// (days+1)<<23 | year<<9 | month<<5 | day, or 0 when empty. Records come
// in near time order, so almost every time falls on the cached day. It is
// shared by all goroutines; the value is one word, so a load sees either
// the old or the new day, each consistent.
var lastDay atomic.Uint64

// civilCached is civil through lastDay.
func civilCached(days int64) (year, month, day int) {
	if c := lastDay.Load(); c>>23 == uint64(days+1) {
		return int(c >> 9 & 0x3fff), int(c >> 5 & 0xf), int(c & 0x1f)
	}
	year, month, day = civil(days)
	if c := uint64(days+1)<<23 | uint64(year)<<9 | uint64(month)<<5 | uint64(day); lastDay.Load() != c {
		lastDay.Store(c)
	}
	return year, month, day
}

// maxUnix9999 is the Unix time of 10000-01-01T00:00:00Z.
const maxUnix9999 = 253402300800

// civil converts days since 1970-01-01 (not negative) to a proleptic
// Gregorian date, counting in 400-year eras that begin on March 1st so
// that the leap day falls at the end of a year.
func civil(days int64) (year, month, day int) {
	z := days + 719468 // days since 0000-03-01
	era := z / 146097
	doe := z - era*146097                                  // day of era, 0..146096
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // year of era, 0..399
	doy := doe - (365*yoe + yoe/4 - yoe/100)               // day of the March-based year, 0..365
	mp := (5*doy + 2) / 153                                // March-based month, 0..11
	day = int(doy - (153*mp+2)/5 + 1)
	month = int(mp + 3)
	if mp >= 10 {
		month = int(mp - 9)
	}
	year = int(yoe + era*400)
	if month <= 2 {
		year++
	}
	return year, month, day
}

// appendFrac writes ns (0 < ns < 1e9) as nine digits with the trailing
// zeros trimmed, and returns how many it wrote.
func appendFrac(dst *[9]byte, ns int) int {
	// Split into 1 + 4 + 4 digits so that fewer divisions depend on each
	// other.
	top := ns / 1e4
	lo := ns - top*1e4
	d0 := top / 1e4
	hi := top - d0*1e4
	dst[0] = byte('0' + d0)
	h1, l1 := hi/100, lo/100
	*(*[2]byte)(dst[1:]) = digits2[uint8(h1)]
	*(*[2]byte)(dst[3:]) = digits2[uint8(hi-100*h1)]
	*(*[2]byte)(dst[5:]) = digits2[uint8(l1)]
	*(*[2]byte)(dst[7:]) = digits2[uint8(lo-100*l1)]
	n := 9
	if lo == 0 {
		n = 5
		if hi == 0 {
			n = 1
		}
	}
	for dst[n-1] == '0' {
		n--
	}
	return n
}

// appendUint is strconv.AppendUint(b, v, 10), two digits at a time.
func appendUint(b []byte, v uint64) []byte {
	if v < 100 {
		if v < 10 {
			return append(b, byte('0'+v))
		}
		d := digits2[v]
		return append(b, d[0], d[1])
	}
	if v < 10000 {
		q := v / 100
		h, l := digits2[q], digits2[v-100*q]
		if v < 1000 {
			return append(b, h[1], l[0], l[1])
		}
		return append(b, h[0], h[1], l[0], l[1])
	}
	var buf [20]byte
	i := len(buf)
	for v >= 100 {
		q := v / 100
		i -= 2
		*(*[2]byte)(buf[i:]) = digits2[uint8(v-100*q)]
		v = q
	}
	if v < 10 {
		i--
		buf[i] = byte('0' + v)
	} else {
		i -= 2
		*(*[2]byte)(buf[i:]) = digits2[v]
	}
	return append(b, buf[i:]...)
}

// appendAddr is a.AppendTo(b), with IPv4 addresses written directly.
func appendAddr(b []byte, a netip.Addr) []byte {
	if !a.Is4() {
		return a.AppendTo(b)
	}
	v := a.As4()
	b = appendOctet(b, v[0])
	b = appendOctet(append(b, '.'), v[1])
	b = appendOctet(append(b, '.'), v[2])
	return appendOctet(append(b, '.'), v[3])
}

// appendOctet appends o in decimal.
func appendOctet(b []byte, o byte) []byte {
	d := decOctet[o]
	switch d[3] {
	case 1:
		return append(b, d[0])
	case 2:
		return append(b, d[0], d[1])
	}
	return append(b, d[0], d[1], d[2])
}

// decOctet holds, for each byte value, its decimal digits left-aligned in
// the first three bytes and their count in the fourth.
var decOctet = func() (t [256][4]byte) {
	for i := range t {
		s := strconv.Itoa(i)
		copy(t[i][:3], s)
		t[i][3] = byte(len(s))
	}
	return t
}()

// appendSeconds writes d in seconds as strconv.AppendFloat(b,
// d.Seconds(), 'f', -1, 64) does. Below 10^15 ns (11 days) the exact
// decimal of d has at most 15 significant digits; when d.Seconds() is the
// float64 nearest to it (the correctly rounded quotient; Seconds rounds
// twice and sometimes lands one step off), no shorter decimal maps to that
// float64, so the exact decimal is what AppendFloat would write, and it is
// written from the integer nanoseconds. Anything else goes to AppendFloat.
func appendSeconds(b []byte, d time.Duration) []byte {
	if f := d.Seconds(); d < 0 || d >= 1e15 || float64(d)/1e9 != f {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	b = appendUint(b, uint64(d/time.Second))
	if ns := int(d % time.Second); ns != 0 {
		var buf [10]byte
		buf[0] = '.'
		n := appendFrac((*[9]byte)(buf[1:]), ns)
		b = append(b, buf[:n+1]...)
	}
	return b
}

func appendUintField(b []byte, key string, v uint64) []byte {
	b = append(b, key...)
	return appendUint(b, v)
}

func appendBoolField(b []byte, key string, v bool) []byte {
	b = append(b, key...)
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
}

// appendStringField appends key (which holds the comma, quotes and colon)
// and v as a JSON string.
func appendStringField(b []byte, key, v string) []byte {
	b = append(b, key...)
	return appendString(b, v)
}

// plain marks the bytes a JSON string may hold as they are.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping what JSON requires and
// replacing invalid UTF-8 (names from the wire can hold anything).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	clean := true
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			clean = false
			break
		}
	}
	if clean {
		b = append(b, s...)
		return append(b, '"')
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
