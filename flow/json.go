package flow

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the record as one JSON object (no newline) to b. It
// allocates nothing beyond growing b. Field names follow Zeek's conn.log;
// README.md documents each one.
func (r *Record) AppendJSON(b []byte) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, SchemaVersion, 10)
	b = append(b, `,"ts":`...)
	b = appendTime(b, r.Start)
	b = append(b, `,"end":`...)
	b = appendTime(b, r.End)
	b = append(b, `,"duration":`...)
	b = strconv.AppendFloat(b, r.Duration().Seconds(), 'f', -1, 64)
	b = appendStringField(b, "uid", r.UID)
	b = appendStringField(b, "community_id", r.CommunityID)
	b = append(b, `,"proto":"`...)
	b = append(b, r.Proto.String()...)
	b = append(b, '"')
	if r.Service != "" {
		b = appendStringField(b, "service", r.Service)
	}
	b = append(b, `,"orig_h":"`...)
	b = r.OrigAddr.AppendTo(b)
	b = append(b, `","orig_p":`...)
	b = strconv.AppendUint(b, uint64(r.OrigPort), 10)
	b = append(b, `,"resp_h":"`...)
	b = r.RespAddr.AppendTo(b)
	b = append(b, `","resp_p":`...)
	b = strconv.AppendUint(b, uint64(r.RespPort), 10)
	b = appendUintField(b, "orig_bytes", r.OrigBytes)
	b = appendUintField(b, "resp_bytes", r.RespBytes)
	b = appendUintField(b, "missed_bytes", r.MissedBytes)
	b = appendUintField(b, "orig_pkts", r.OrigPkts)
	b = appendUintField(b, "resp_pkts", r.RespPkts)
	b = appendUintField(b, "orig_ip_bytes", r.OrigIPBytes)
	b = appendUintField(b, "resp_ip_bytes", r.RespIPBytes)
	b = appendUintField(b, "orig_frame_bytes", r.OrigFrameBytes)
	b = appendUintField(b, "resp_frame_bytes", r.RespFrameBytes)
	b = appendStringField(b, "conn_state", r.ConnState)
	b = appendStringField(b, "history", r.History)
	b = appendBoolField(b, "local_orig", r.LocalOrig)
	b = appendBoolField(b, "local_resp", r.LocalResp)
	b = appendBoolField(b, "final", r.Final)
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
				b = strconv.AppendUint(b, uint64(v), 10)
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
				b = strconv.AppendUint(b, uint64(v), 10)
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
				b = appendUintField(b, "vni", uint64(e.VNI))
			}
		}
		b = append(b, '}')
	}
	if a := r.App; a != nil {
		if a.DNSQuery != "" || a.DNSRcode >= 0 && len(a.DNSAnswers) > 0 {
			b = append(b, `,"dns":{"query":`...)
			b = appendString(b, a.DNSQuery)
			b = appendUintField(b, "qtype", uint64(a.DNSQType))
			if a.DNSRcode >= 0 {
				b = append(b, `,"rcode":`...)
				b = strconv.AppendInt(b, int64(a.DNSRcode), 10)
			}
			if len(a.DNSAnswers) > 0 {
				b = appendStrings(b, "answers", a.DNSAnswers)
			}
			if a.DNSQueries > 0 {
				b = appendUintField(b, "queries", uint64(a.DNSQueries))
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
			b = appendStringField(b, "host", a.HTTPHost)
			if a.HTTPProxyTarget != "" {
				b = appendStringField(b, "proxy_target", a.HTTPProxyTarget)
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
	t = t.UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	if year < 0 || year > 9999 {
		b = append(b, '"')
		b = t.AppendFormat(b, time.RFC3339Nano)
		return append(b, '"')
	}
	b = append(b, '"')
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, min, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	if ns := t.Nanosecond(); ns != 0 {
		width := 9
		for ns%10 == 0 {
			ns /= 10
			width--
		}
		b = append(b, '.')
		b = appendDigits(b, ns, width)
	}
	return append(b, 'Z', '"')
}

// appendDigits appends v zero-padded to width digits.
func appendDigits(b []byte, v, width int) []byte {
	var buf [9]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[:width]...)
}

func appendUintField(b []byte, name string, v uint64) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendUint(b, v, 10)
}

func appendBoolField(b []byte, name string, v bool) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return strconv.AppendBool(b, v)
}

func appendStringField(b []byte, name, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return appendString(b, v)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping what JSON requires and
// replacing invalid UTF-8 (names from the wire can hold anything).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
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
