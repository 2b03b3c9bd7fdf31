package synth

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// MaxGap is the longest time between two consecutive packets of one
// conversation. Keeping it under typical idle timeouts means a flow tracker
// sees each conversation as exactly one flow.
const MaxGap = 10 * time.Second

// Maximum segment sizes: the defaults fill a 1500-byte MTU.
const (
	DefaultMSS4 = 1460
	DefaultMSS6 = 1440
	maxMSS      = 9000
)

// Endpoint is one side of a conversation as the sensor sees it.
type Endpoint struct {
	Addr netip.Addr
	Port uint16
	// MAC is the Ethernet address frames from this side carry as source (for
	// a host behind a router, the router's).
	MAC [6]byte
	// TTL is the IPv4 TTL or IPv6 hop limit of its packets at the sensor; 0
	// means 64.
	TTL uint8
}

// Message is a burst of application data in one direction. It is sent as
// MSS-sized segments. The receiver acknowledges each of the first eight
// segments (quick ACKs), then every second segment and the last one, so a
// message of s segments takes 2s packets up to s = 8 and 16 + (s-8) +
// ⌈(s-8)/2⌉ beyond.
type Message struct {
	// FromResp is set for data the responder sends.
	FromResp bool
	// Len is the number of payload bytes, at least 1.
	Len int
	// Delay is the idle time between the conversation's previous packet and
	// the message's first segment (think time, server time, round trip). At
	// most MaxGap; zero means 1 µs.
	Delay time.Duration
}

// Setup is how a TCP conversation's handshake goes.
type Setup uint8

// Handshake outcomes, with the Zeek conn_state each gives.
const (
	// Established completes the handshake, sends Messages and ends with
	// Close (SF, RSTO or RSTR).
	Established Setup = iota
	// Unanswered sends a SYN and SYNRetries retransmissions that nobody
	// answers (S0).
	Unanswered
	// Rejected answers the SYN with RST-ACK, as a closed port does (REJ).
	Rejected
	// HalfOpen answers the SYN with SYN-ACK and the originator resets, as a
	// SYN scan does to an open port (RSTO in Zeek's terms).
	HalfOpen
)

// Close is how an established TCP conversation ends.
type Close uint8

// Ways to end an established conversation.
const (
	// CloseFIN: the originator sends FIN, the responder answers FIN-ACK, the
	// originator ACKs (SF).
	CloseFIN Close = iota
	// CloseFINResp: the same with the responder closing first (SF).
	CloseFINResp
	// CloseRSTOrig: the originator aborts with RST (RSTO).
	CloseRSTOrig
	// CloseRSTResp: the responder aborts with RST (RSTR).
	CloseRSTResp
)

// App says what the payload bytes look like, so that dissectors and our own
// application-hint parsers see plausible traffic.
type App uint8

// Payload kinds.
const (
	// AppRaw is pseudo-random bytes.
	AppRaw App = iota
	// AppTLS starts the originator's first message with a ClientHello
	// carrying ServerName as SNI (TLSClientHelloLen bytes) and the
	// responder's first message with a ServerHello (TLSServerHelloLen
	// bytes); every other byte is TLS application-data records. The first
	// message must come from the originator and be at least as long as its
	// hello, and a message's bytes after the hello must be 0 or at least 6.
	AppTLS
	// AppHTTP makes originator messages HTTP/1.1 requests for Host
	// ServerName (GETs, or POSTs with a body above 2 KiB) and responder
	// messages 200 responses whose body fills the message. Requests need at
	// least 26+len(ServerName) bytes, responses HTTPMinResponseLen.
	AppHTTP
)

// TCPConv describes one TCP conversation for Mixer.AddTCP.
type TCPConv struct {
	// Orig sends the first SYN; Resp is the server.
	Orig, Resp Endpoint
	// VLAN tags both directions when non-zero.
	VLAN uint16
	// Start is the time of the first SYN.
	Start time.Time
	// RTT separates SYN from SYN-ACK and the FINs of a close; 0 means 1 ms,
	// at most 3 s.
	RTT time.Duration
	// Rate is the sending rate within a message in bytes per second; it sets
	// the spacing of segments. 0 means 12.5 MB/s (100 Mbit/s); at least 10 kB/s.
	Rate int64
	// MSS caps segment payloads; 0 means DefaultMSS4 or DefaultMSS6.
	MSS   int
	Setup Setup
	// SYNRetries is how many times an Unanswered SYN is retransmitted
	// (after 1, 2 and 4 s; at most 3).
	SYNRetries int
	// Messages are sent in order after the handshake of an Established
	// conversation. The Mixer copies them; the slice may be reused after
	// AddTCP returns.
	Messages []Message
	Close    Close
	// CloseDelay is the idle time before the close, at most MaxGap.
	CloseDelay time.Duration
	App        App
	// ServerName is the TLS SNI or HTTP Host.
	ServerName string
	// Seed drives sequence numbers, IP IDs, timing jitter and payload bytes.
	Seed uint64
}

// DNSQuery describes one DNS lookup over UDP for Mixer.AddDNS: a recursive
// query for an A record, answered with one A record unless Unanswered.
type DNSQuery struct {
	Client, Server Endpoint
	VLAN           uint16
	Start          time.Time
	ID             uint16
	Name           string
	// Answer is the IPv4 address in the A record.
	Answer netip.Addr
	// TTL is the answer's time to live in seconds.
	TTL uint32
	// RTT is the time from the last query to the response; 0 means 1 ms.
	RTT time.Duration
	// Retries is how many times the query is repeated (after 1, 2 and 4 s;
	// at most 3) before the response, or before giving up when Unanswered.
	Retries    int
	Unanswered bool
	// Seed drives IP IDs.
	Seed uint64
}

var errConv = errors.New("synth: invalid conversation")

func (c *TCPConv) mss() int {
	switch {
	case c.MSS > 0:
		return c.MSS
	case c.Orig.Addr.Is4():
		return DefaultMSS4
	default:
		return DefaultMSS6
	}
}

// Packets returns the number of packets the conversation produces.
func (c *TCPConv) Packets() int {
	switch c.Setup {
	case Unanswered:
		return 1 + c.SYNRetries
	case Rejected:
		return 2
	case HalfOpen:
		return 3
	}
	n := 3
	mss := c.mss()
	for _, m := range c.Messages {
		segs := (m.Len + mss - 1) / mss
		n += segs + min(segs, quickAckSegs) + (max(segs-quickAckSegs, 0)+1)/2
	}
	if c.Close == CloseFIN || c.Close == CloseFINResp {
		return n + 3
	}
	return n + 1
}

// ConnState returns the Zeek conn_state a flow tracker should give the
// conversation.
func (c *TCPConv) ConnState() string {
	switch c.Setup {
	case Unanswered:
		return "S0"
	case Rejected:
		return "REJ"
	case HalfOpen:
		return "RSTO"
	}
	switch c.Close {
	case CloseRSTOrig:
		return "RSTO"
	case CloseRSTResp:
		return "RSTR"
	}
	return "SF"
}

// Validate reports the first reason the Mixer would refuse the conversation.
func (c *TCPConv) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: tcp %v -> %v: %s", errConv, c.Orig.Addr, c.Resp.Addr, fmt.Sprintf(format, args...))
	}
	if err := validEndpoints(c.Orig, c.Resp, c.VLAN, c.Start); err != nil {
		return bad("%v", err)
	}
	if c.RTT < 0 || c.RTT > 3*time.Second {
		return bad("RTT %v outside [0, 3s]", c.RTT)
	}
	if c.Rate != 0 && c.Rate < 10_000 {
		return bad("rate %d B/s below 10 kB/s", c.Rate)
	}
	if c.MSS < 0 || c.MSS > maxMSS {
		return bad("MSS %d outside [0, %d]", c.MSS, maxMSS)
	}
	if c.Setup > HalfOpen {
		return bad("unknown setup %d", c.Setup)
	}
	if c.SYNRetries < 0 || c.SYNRetries > 3 {
		return bad("SYNRetries %d outside [0, 3]", c.SYNRetries)
	}
	if c.Close > CloseRSTResp {
		return bad("unknown close %d", c.Close)
	}
	if c.CloseDelay < 0 || c.CloseDelay > MaxGap {
		return bad("close delay %v outside [0, %v]", c.CloseDelay, MaxGap)
	}
	if c.App > AppHTTP {
		return bad("unknown app %d", c.App)
	}
	if len(c.ServerName) > tlsMaxName {
		return bad("server name longer than %d bytes", tlsMaxName)
	}
	if c.App == AppHTTP && c.ServerName == "" {
		return bad("AppHTTP needs a ServerName for the Host header")
	}
	if c.Setup != Established {
		return nil
	}
	var seen [2]bool
	for i, m := range c.Messages {
		if m.Len < 1 {
			return bad("message %d has length %d", i, m.Len)
		}
		if m.Delay < 0 || m.Delay > MaxGap {
			return bad("message %d delay %v outside [0, %v]", i, m.Delay, MaxGap)
		}
		side := 0
		if m.FromResp {
			side = 1
		}
		body := m.Len
		switch c.App {
		case AppTLS:
			if i == 0 && m.FromResp {
				return bad("TLS conversation must start with the originator")
			}
			if !seen[side] {
				body -= [2]int{TLSClientHelloLen, TLSServerHelloLen}[side]
			}
			if body < 0 || !validTLSBody(body) {
				return bad("TLS message %d of %d bytes cannot be laid out as records", i, m.Len)
			}
		case AppHTTP:
			if !m.FromResp && m.Len < httpMinRequestLen(c.ServerName) {
				return bad("HTTP request %d of %d bytes is shorter than %d", i, m.Len, httpMinRequestLen(c.ServerName))
			}
			if m.FromResp && m.Len < HTTPMinResponseLen {
				return bad("HTTP response %d of %d bytes is shorter than %d", i, m.Len, HTTPMinResponseLen)
			}
		}
		seen[side] = true
	}
	return nil
}

// Packets returns the number of packets the lookup produces.
func (q *DNSQuery) Packets() int {
	if q.Unanswered {
		return 1 + q.Retries
	}
	return 2 + q.Retries
}

// ConnState returns the Zeek conn_state of the lookup: SF when answered, S0
// otherwise.
func (q *DNSQuery) ConnState() string {
	if q.Unanswered {
		return "S0"
	}
	return "SF"
}

// Validate reports the first reason the Mixer would refuse the lookup.
func (q *DNSQuery) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: dns %v -> %v: %s", errConv, q.Client.Addr, q.Server.Addr, fmt.Sprintf(format, args...))
	}
	if err := validEndpoints(q.Client, q.Server, q.VLAN, q.Start); err != nil {
		return bad("%v", err)
	}
	if err := validDNSName(q.Name); err != nil {
		return bad("%v", err)
	}
	if !q.Unanswered && !q.Answer.Is4() {
		return bad("answer %v is not an IPv4 address", q.Answer)
	}
	if q.RTT < 0 || q.RTT > 3*time.Second {
		return bad("RTT %v outside [0, 3s]", q.RTT)
	}
	if q.Retries < 0 || q.Retries > 3 {
		return bad("retries %d outside [0, 3]", q.Retries)
	}
	return nil
}

func validEndpoints(a, b Endpoint, vlan uint16, start time.Time) error {
	switch {
	case !a.Addr.IsValid() || !b.Addr.IsValid():
		return errors.New("missing address")
	case a.Addr.Is4() != b.Addr.Is4():
		return errors.New("mixed IPv4 and IPv6")
	case a.Addr.Is4In6() || b.Addr.Is4In6():
		return errors.New("IPv4-mapped IPv6 address; use the IPv4 form")
	case a.Addr.Zone() != "" || b.Addr.Zone() != "":
		return errors.New("address with a zone")
	case vlan > 4094:
		return fmt.Errorf("VLAN %d above 4094", vlan)
	case start.IsZero() || start.UnixNano() < 0:
		return fmt.Errorf("start %v before 1970", start)
	}
	return nil
}
