package capture

import (
	"encoding/binary"
	"errors"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Link types the decoder accepts (pcap LINKTYPE_* values).
const (
	linkNull     = 0
	linkEthernet = 1
	linkRaw      = 101
	linkLoop     = 108
	linkSLL      = 113
	linkIPv4     = 228
	linkIPv6     = 229
	linkSLL2     = 276
)

// Tunnel is the kind of the outermost tunnel a packet arrived in.
type Tunnel uint8

// Tunnel kinds.
const (
	TunnelNone Tunnel = iota
	TunnelGRE
	TunnelERSPAN
	TunnelVXLAN
	TunnelGeneve
	TunnelIPIP // IPv4 or IPv6 carried directly in IPv4/IPv6 (protocols 4 and 41)
)

var tunnelNames = [...]string{"", "gre", "erspan", "vxlan", "geneve", "ipip"}

func (t Tunnel) String() string {
	if int(t) < len(tunnelNames) {
		return tunnelNames[t]
	}
	return "unknown"
}

// Decoded is what the decoder extracts from one frame: the innermost IP
// header's 5-tuple and everything the flow table needs from the packet. It is
// reused from packet to packet; slices alias the frame.
type Decoded struct {
	// HasIP is set when an IP header was decoded; the fields below it are
	// meaningful only then.
	HasIP bool
	IPv6  bool
	// Src and Dst hold the innermost addresses, IPv4 as IPv4-mapped IPv6.
	Src, Dst [16]byte
	Proto    uint8
	// HasPorts is set when the transport header was decoded (for ICMP the
	// ports hold type and code).
	HasPorts         bool
	SrcPort, DstPort uint16
	// IPLen is the innermost IP packet length from its header: total length
	// for IPv4, 40 + payload length (+ extension headers) for IPv6. For
	// snaplen-truncated frames it exceeds what was captured.
	IPLen int
	// PayloadLen is the transport payload length implied by the headers (not
	// by what was captured); Payload is the captured part of it.
	PayloadLen int
	Payload    []byte
	// L3 is the captured innermost IP packet, header first: what
	// de-duplication compares, since mirror tunnels wrap identical packets
	// in headers that differ.
	L3 []byte

	// Fragments: Frag is set when an IP header on the way in was a
	// fragment (the outermost one, for a tunnel whose outer packets were
	// fragmented); FragOffset > 0 means the frame carries no further
	// headers. FragSrc, FragDst, FragProto and FragID identify the
	// datagram the fragment belongs to.
	Frag             bool
	FragOffset       uint16
	FragID           uint32
	FragProto        uint8
	FragSrc, FragDst [16]byte

	TCPFlags uint8
	Seq, Ack uint32
	Window   uint16

	// Encapsulation.
	NVLAN    uint8
	VLANs    [2]uint16
	NMPLS    uint8
	MPLS     [2]uint32
	Tunnel   Tunnel
	OuterSrc [16]byte
	OuterDst [16]byte
	OuterV6  bool
	VNI      uint32

	ipDepth    int
	truncated  bool         // caplen < wire length
	problem    *DecodeError // first non-fatal problem, reported after decoding
	pendTunnel Tunnel       // tunnel seen in the outer packet, confirmed by an inner IP header
	pendVNI    uint32
	// fastOnly: since the last full reset only fastDecode wrote d, so
	// decodeInto may use resetFast.
	fastOnly bool
}

func (d *Decoded) reset(truncated bool) {
	*d = Decoded{truncated: truncated}
}

// resetFast is reset for a Decoded that only fastDecode has written since
// its last reset: every field fastDecode leaves alone is still zero, and of
// the fields it writes, these are the ones it may leave unwritten. Zeroing
// the whole struct (about 300 bytes) per packet is a measurable share of
// the fast path.
func (d *Decoded) resetFast(truncated bool) {
	d.truncated = truncated
	d.IPv6 = false
	d.Payload = nil
	d.Seq, d.Ack, d.TCPFlags, d.Window = 0, 0, 0, 0
}

// TCP flag bits as in the TCP header.
const (
	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagPSH = 0x08
	flagACK = 0x10
	flagURG = 0x20
)

// DecodeError is a kind of decode problem, counted per kind. The values are
// comparable sentinels so counting them never allocates.
type DecodeError struct{ kind ErrorKind }

func (e *DecodeError) Error() string { return "decode: " + e.kind.String() }

// Kind returns what went wrong.
func (e *DecodeError) Kind() ErrorKind { return e.kind }

// ErrorKind enumerates decode problems.
type ErrorKind uint8

// Decode problem kinds, reported in the run summary.
const (
	ErrTruncated    ErrorKind = iota // a header runs past the captured bytes
	ErrBadHeaderLen                  // a header length field is impossible
	ErrBadIPLength                   // IP total/payload length disagrees with the frame
	ErrBadVersion                    // IP version nibble does not match
	ErrUnsupported                   // a link type, ethertype or tunnel we do not decode
	ErrNonIP                         // a frame without IP (ARP, LLDP, STP, ...)
	ErrTooDeep                       // too many nested encapsulations
	ErrPanic                         // a decoder panicked (a bug; counted, not fatal)
	numErrorKinds
)

var errorKindNames = [numErrorKinds]string{"truncated", "bad_header_length", "bad_ip_length", "bad_ip_version", "unsupported", "non_ip", "too_deep", "panic"}

func (k ErrorKind) String() string {
	if k < numErrorKinds {
		return errorKindNames[k]
	}
	return "unknown"
}

var (
	errTruncated    = &DecodeError{ErrTruncated}
	errBadHeaderLen = &DecodeError{ErrBadHeaderLen}
	errBadIPLength  = &DecodeError{ErrBadIPLength}
	errBadVersion   = &DecodeError{ErrBadVersion}
	errUnsupported  = &DecodeError{ErrUnsupported}
	errNonIP        = &DecodeError{ErrNonIP}
	errTooDeep      = &DecodeError{ErrTooDeep}
)

// maxIPDepth bounds nested IP headers (tunnels within tunnels).
const maxIPDepth = 6

// Decoder turns frames into Decoded summaries. It wraps gopacket
// DecodingLayerParsers over preallocated, allocation-free layers of our own
// that write straight into the Decoded. One Decoder per goroutine.
type Decoder struct {
	// NoFastPath sends every frame through the DecodingLayerParser (for
	// tests that compare the two paths).
	NoFastPath bool

	d       *Decoded
	parsers [4]*gopacket.DecodingLayerParser // by first layer: ethernet, ipv4, ipv6, linux sll
	layers  []gopacket.LayerType
}

const (
	firstEthernet = iota
	firstIPv4
	firstIPv6
	firstSLL
)

// NewDecoder returns a Decoder writing into a Decoded it owns.
func NewDecoder() *Decoder {
	dec := &Decoder{d: new(Decoded), layers: make([]gopacket.LayerType, 0, 32)}
	d := dec.d
	all := []gopacket.DecodingLayer{
		&ethLayer{base{d: d}}, &vlanLayer{base{d: d}}, &mplsLayer{base{d: d}},
		&ipv4Layer{base{d: d}}, &ipv6Layer{base{d: d}},
		&greLayer{base{d: d}}, &erspanLayer{base{d: d}}, &vxlanLayer{base{d: d}}, &geneveLayer{base{d: d}},
		&tcpLayer{base{d: d}}, &udpLayer{base{d: d}}, &icmpLayer{base{d: d}}, &sctpLayer{base{d: d}},
		&sllLayer{base{d: d}},
	}
	for i, first := range [...]gopacket.LayerType{layers.LayerTypeEthernet, layers.LayerTypeIPv4, layers.LayerTypeIPv6, layers.LayerTypeLinuxSLL} {
		var dlc gopacket.DecodingLayerContainer = gopacket.DecodingLayerSparse(nil)
		for _, l := range all {
			dlc = dlc.Put(l)
		}
		p := gopacket.NewDecodingLayerParser(first)
		p.SetDecodingLayerContainer(dlc)
		p.IgnoreUnsupported = true
		dec.parsers[i] = p
	}
	return dec
}

// decodeInto is Decode into a Decoded the caller owns, so that several
// frames can be decoded ahead of the flow table.
func (dec *Decoder) decodeInto(d *Decoded, data []byte, linkType uint16, wireLen int) error {
	tryFast := linkType == linkEthernet && !dec.NoFastPath
	if tryFast {
		if d.fastOnly {
			d.resetFast(len(data) < wireLen)
		} else {
			d.reset(len(data) < wireLen)
		}
		if fastDecode(d, data) {
			d.fastOnly = true
			return nil
		}
	}
	dd, err := dec.decode(data, linkType, wireLen, !tryFast)
	*d = *dd
	d.fastOnly = false
	return err
}

// Decode decodes one frame of the given link type. wireLen is the frame's
// original length. The returned Decoded is owned by the Decoder and
// overwritten by the next call. A non-nil error is a *DecodeError; the
// Decoded still holds what was decoded before the problem (HasIP may be set).
func (dec *Decoder) Decode(data []byte, linkType uint16, wireLen int) (d *Decoded, err error) {
	return dec.decode(data, linkType, wireLen, true)
}

// decode is Decode; fast false skips the fast path (the caller tried it).
func (dec *Decoder) decode(data []byte, linkType uint16, wireLen int, fast bool) (d *Decoded, err error) {
	d = dec.d
	d.reset(len(data) < wireLen)
	first := firstEthernet
	switch linkType {
	case linkEthernet:
		if fast && !dec.NoFastPath {
			if fastDecode(d, data) {
				return d, nil
			}
			d.reset(len(data) < wireLen)
		}
	case linkRaw, linkIPv4, linkIPv6:
		if len(data) == 0 {
			return d, errTruncated
		}
		switch data[0] >> 4 {
		case 4:
			first = firstIPv4
		case 6:
			first = firstIPv6
		default:
			return d, errBadVersion
		}
	case linkNull, linkLoop:
		if len(data) < 4 {
			return d, errTruncated
		}
		// DLT_NULL stores the address family in the capturing host's byte
		// order; DLT_LOOP in network order. Accept either reading.
		fam := binary.LittleEndian.Uint32(data)
		if fam > 0xffff {
			fam = binary.BigEndian.Uint32(data)
		}
		switch fam {
		case 2:
			first = firstIPv4
		case 10, 24, 28, 30: // AF_INET6 on Linux, NetBSD/OpenBSD, FreeBSD, Darwin
			first = firstIPv6
		default:
			return d, errNonIP
		}
		data = data[4:]
	case linkSLL:
		first = firstSLL
	case linkSLL2:
		if len(data) < 20 {
			return d, errTruncated
		}
		var ok bool
		if first, ok = firstForEtherType(binary.BigEndian.Uint16(data)); !ok {
			return d, errNonIP
		}
		data = data[20:]
	default:
		return d, errUnsupported
	}
	defer func() {
		// Our layers are written to be panic-free; this is a last line of
		// defence so that one hostile frame cannot stop a sensor.
		if r := recover(); r != nil {
			err = &DecodeError{ErrPanic}
		}
	}()
	p := dec.parsers[first]
	p.IgnorePanic = true
	if e := p.DecodeLayers(data, &dec.layers); e != nil {
		if de, ok := e.(*DecodeError); ok {
			return d, de
		}
		return d, errUnsupported
	}
	if !d.HasIP {
		return d, errNonIP
	}
	if d.problem != nil {
		return d, d.problem
	}
	return d, nil
}

func firstForEtherType(et uint16) (int, bool) {
	switch layers.EthernetType(et) {
	case layers.EthernetTypeIPv4:
		return firstIPv4, true
	case layers.EthernetTypeIPv6:
		return firstIPv6, true
	case layers.EthernetTypeDot1Q, layers.EthernetTypeQinQ, 0x9100, layers.EthernetTypeMPLSUnicast, layers.EthernetTypeMPLSMulticast:
		return firstEthernet, false
	}
	return 0, false
}

// nextForEtherType maps an EtherType to the layer that decodes it.
func nextForEtherType(et uint16) gopacket.LayerType {
	switch et {
	case 0x0800:
		return layers.LayerTypeIPv4
	case 0x86dd:
		return layers.LayerTypeIPv6
	case 0x8100, 0x88a8, 0x9100:
		return layers.LayerTypeDot1Q
	case 0x8847, 0x8848:
		return layers.LayerTypeMPLS
	case 0x6558: // transparent Ethernet bridging (GRE, GENEVE)
		return layers.LayerTypeEthernet
	}
	return gopacket.LayerTypeZero
}

// base carries what every layer shares: the Decoded it writes and the
// payload and next layer it found.
type base struct {
	d       *Decoded
	payload []byte
	next    gopacket.LayerType
}

func (b *base) LayerPayload() []byte                   { return b.payload }
func (b *base) NextLayerType() gopacket.LayerType      { return b.next }
func (b *base) setNext(t gopacket.LayerType, p []byte) { b.next, b.payload = t, p }

type ethLayer struct{ base }

func (l *ethLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeEthernet }
func (l *ethLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 14 {
		return errTruncated
	}
	et := binary.BigEndian.Uint16(data[12:])
	next := nextForEtherType(et)
	if next == gopacket.LayerTypeZero {
		l.setNext(gopacket.LayerTypeZero, nil)
		return nil
	}
	l.setNext(next, data[14:])
	return nil
}

type vlanLayer struct{ base }

func (l *vlanLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeDot1Q }
func (l *vlanLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 4 {
		return errTruncated
	}
	d := l.d
	if int(d.NVLAN) < len(d.VLANs) {
		d.VLANs[d.NVLAN] = binary.BigEndian.Uint16(data) & 0x0fff
	}
	if d.NVLAN < 255 {
		d.NVLAN++
	}
	if d.NVLAN > 8 {
		return errTooDeep
	}
	l.setNext(nextForEtherType(binary.BigEndian.Uint16(data[2:])), data[4:])
	return nil
}

type mplsLayer struct{ base }

func (l *mplsLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeMPLS }
func (l *mplsLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	d := l.d
	for i := 0; ; i += 4 {
		if len(data) < i+4 {
			return errTruncated
		}
		if i >= 64 {
			return errTooDeep
		}
		v := binary.BigEndian.Uint32(data[i:])
		if int(d.NMPLS) < len(d.MPLS) {
			d.MPLS[d.NMPLS] = v >> 12
		}
		d.NMPLS++
		if v&0x100 == 0 { // not bottom of stack
			continue
		}
		rest := data[i+4:]
		if len(rest) == 0 {
			l.setNext(gopacket.LayerTypeZero, nil)
			return nil
		}
		// MPLS does not say what it carries; guess like every tool does.
		switch rest[0] >> 4 {
		case 4:
			l.setNext(layers.LayerTypeIPv4, rest)
		case 6:
			l.setNext(layers.LayerTypeIPv6, rest)
		case 0: // pseudowire control word, then Ethernet
			if len(rest) < 4 {
				return errTruncated
			}
			l.setNext(layers.LayerTypeEthernet, rest[4:])
		default:
			l.setNext(gopacket.LayerTypeZero, nil)
		}
		return nil
	}
}

type sllLayer struct{ base }

func (l *sllLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeLinuxSLL }
func (l *sllLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 16 {
		return errTruncated
	}
	l.setNext(nextForEtherType(binary.BigEndian.Uint16(data[14:])), data[16:])
	return nil
}

// enterIP is called by both IP layers before they overwrite the innermost
// addresses. When an inner IP header follows the first one, the packet was
// tunnelled: the first header's addresses become the outer endpoints, and
// the tunnel an outer layer announced is confirmed.
func (d *Decoded) enterIP() error {
	if d.ipDepth >= maxIPDepth {
		return errTooDeep
	}
	if d.ipDepth == 1 && d.HasIP {
		d.OuterSrc, d.OuterDst, d.OuterV6 = d.Src, d.Dst, d.IPv6
		d.Tunnel, d.VNI = d.pendTunnel, d.pendVNI
		if d.Tunnel == TunnelNone {
			d.Tunnel = TunnelIPIP
		}
	}
	d.ipDepth++
	// Inner headers replace every transport detail of the outer packet.
	// Fragment identity stays: later fragments of a fragmented outer packet
	// carry only the outer header, so that is how they find their flow.
	d.HasPorts, d.SrcPort, d.DstPort = false, 0, 0
	d.TCPFlags, d.Seq, d.Ack, d.Window = 0, 0, 0, 0
	d.Payload, d.PayloadLen = nil, 0
	return nil
}

// setProblem records a problem that does not stop decoding.
func (d *Decoded) setProblem(e *DecodeError) {
	if d.problem == nil {
		d.problem = e
	}
}

// setFrag records the datagram a fragment belongs to, unless an outer
// header was already a fragment.
func (d *Decoded) setFrag(offset uint16, id uint32, proto uint8) {
	if d.Frag {
		return
	}
	d.Frag, d.FragOffset, d.FragID, d.FragProto = true, offset, id, proto
	d.FragSrc, d.FragDst = d.Src, d.Dst
}

var v4Prefix = [12]byte{10: 0xff, 11: 0xff}

type ipv4Layer struct{ base }

func (l *ipv4Layer) CanDecode() gopacket.LayerClass { return layers.LayerTypeIPv4 }
func (l *ipv4Layer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	d := l.d
	if len(data) < 20 {
		return errTruncated
	}
	if data[0]>>4 != 4 {
		return errBadVersion
	}
	ihl := int(data[0]&0x0f) * 4
	if ihl < 20 {
		return errBadHeaderLen
	}
	if len(data) < ihl {
		return errTruncated
	}
	if err := d.enterIP(); err != nil {
		return err
	}
	total := int(binary.BigEndian.Uint16(data[2:]))
	switch {
	case total == 0 && !d.truncated:
		// TSO/GSO super-frames captured before segmentation leave it zero.
		total = len(data)
	case total < ihl:
		total = len(data)
		d.setProblem(errBadIPLength)
	case total > len(data) && d.Frag:
		// Inside a fragment of an outer packet: the rest of this packet
		// comes in the outer packet's later fragments, which count on
		// their own.
		total = len(data)
	case total > len(data) && !d.truncated:
		// Not cut by the snaplen, yet shorter than the header claims.
		d.setProblem(errBadIPLength)
		total = len(data)
	}
	d.HasIP, d.IPv6 = true, false
	copy(d.Src[:12], v4Prefix[:])
	copy(d.Src[12:], data[12:16])
	copy(d.Dst[:12], v4Prefix[:])
	copy(d.Dst[12:], data[16:20])
	d.Proto = data[9]
	d.IPLen = total
	d.PayloadLen = total - ihl
	end := total
	if end > len(data) {
		end = len(data)
	}
	payload := data[ihl:end]
	d.Payload = payload
	d.L3 = data[:end]
	frag := binary.BigEndian.Uint16(data[6:])
	if frag&0x3fff != 0 { // MF set or offset non-zero
		off := (frag & 0x1fff) * 8
		d.setFrag(off, uint32(binary.BigEndian.Uint16(data[4:])), d.Proto)
		if off != 0 {
			l.setNext(gopacket.LayerTypeFragment, nil)
			return nil
		}
	}
	l.setNext(nextForIPProto(d.Proto), payload)
	return nil
}

func nextForIPProto(p uint8) gopacket.LayerType {
	switch p {
	case 6:
		return layers.LayerTypeTCP
	case 17:
		return layers.LayerTypeUDP
	case 1:
		return layers.LayerTypeICMPv4
	case 58:
		return layers.LayerTypeICMPv6
	case 132:
		return layers.LayerTypeSCTP
	case 47:
		return layers.LayerTypeGRE
	case 4:
		return layers.LayerTypeIPv4
	case 41:
		return layers.LayerTypeIPv6
	}
	return gopacket.LayerTypeZero
}

type ipv6Layer struct{ base }

func (l *ipv6Layer) CanDecode() gopacket.LayerClass { return layers.LayerTypeIPv6 }
func (l *ipv6Layer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	d := l.d
	if len(data) < 40 {
		return errTruncated
	}
	if data[0]>>4 != 6 {
		return errBadVersion
	}
	if err := d.enterIP(); err != nil {
		return err
	}
	plen := int(binary.BigEndian.Uint16(data[4:]))
	switch {
	case plen == 0 && !d.truncated:
		plen = len(data) - 40 // jumbogram or GSO
	case 40+plen > len(data) && d.Frag:
		plen = len(data) - 40 // inside a fragment of an outer packet
	case 40+plen > len(data) && !d.truncated:
		d.setProblem(errBadIPLength)
		plen = len(data) - 40
	}
	d.HasIP, d.IPv6 = true, true
	copy(d.Src[:], data[8:24])
	copy(d.Dst[:], data[24:40])
	d.IPLen = 40 + plen
	end := 40 + plen
	if end > len(data) {
		end = len(data)
	}
	d.L3 = data[:end]
	next := data[6]
	off := 40
	// Walk extension headers inside this layer so that they need no layer
	// types of their own.
	for hops := 0; ; hops++ {
		if hops > 16 {
			return errTooDeep
		}
		switch next {
		case 0, 43, 60, 135, 139, 140: // hop-by-hop, routing, destination, mobility, HIP, shim6
			if end < off+8 {
				return errTruncated
			}
			next, off = data[off], off+(int(data[off+1])+1)*8
			continue
		case 51: // AH: length in 4-octet units minus 2
			if end < off+8 {
				return errTruncated
			}
			next, off = data[off], off+(int(data[off+1])+2)*4
			continue
		case 44: // fragment
			if end < off+8 {
				return errTruncated
			}
			fo := binary.BigEndian.Uint16(data[off+2:]) &^ 7
			next = data[off]
			d.setFrag(fo, binary.BigEndian.Uint32(data[off+4:]), next)
			off += 8
			if fo != 0 {
				if off > end {
					return errBadHeaderLen
				}
				d.Proto = next
				d.PayloadLen = 40 + plen - off
				d.Payload = data[off:end]
				l.setNext(gopacket.LayerTypeFragment, nil)
				return nil
			}
			continue
		}
		break
	}
	if off > end {
		return errBadHeaderLen
	}
	d.Proto = next
	d.PayloadLen = 40 + plen - off
	d.Payload = data[off:end]
	l.setNext(nextForIPProto(next), d.Payload)
	return nil
}

type greLayer struct{ base }

func (l *greLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeGRE }
func (l *greLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 4 {
		return errTruncated
	}
	flags := binary.BigEndian.Uint16(data)
	if flags&0x7 != 0 || flags&0x4000 != 0 { // PPTP's enhanced GRE, or source routing
		return errUnsupported
	}
	hl := 4
	if flags&0x8000 != 0 { // checksum present
		hl += 4
	}
	var key uint32
	if flags&0x2000 != 0 { // key present
		if len(data) < hl+4 {
			return errTruncated
		}
		key = binary.BigEndian.Uint32(data[hl:])
		hl += 4
	}
	seq := flags&0x1000 != 0
	if seq {
		hl += 4
	}
	if len(data) < hl {
		return errTruncated
	}
	proto := binary.BigEndian.Uint16(data[2:])
	tunnel := TunnelGRE
	var next gopacket.LayerType
	switch proto {
	case 0x88be: // ERSPAN type II has a sequence number; type I has none and no header
		tunnel = TunnelERSPAN
		if seq {
			next = layers.LayerTypeERSPANII
		} else {
			next = layers.LayerTypeEthernet
		}
	case 0x22eb: // ERSPAN type III
		tunnel = TunnelERSPAN
		next = layers.LayerTypeERSPANII
	default:
		next = nextForEtherType(proto)
	}
	l.markTunnel(tunnel, key, flags&0x2000 != 0)
	l.setNext(next, data[hl:])
	return nil
}

// markTunnel announces the tunnel of the outermost packet; enterIP
// confirms it when an inner IP header follows.
func (l *base) markTunnel(t Tunnel, id uint32, hasID bool) {
	d := l.d
	if d.ipDepth == 1 && d.pendTunnel == TunnelNone {
		d.pendTunnel = t
		if hasID {
			d.pendVNI = id
		}
	}
}

type erspanLayer struct{ base }

func (l *erspanLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeERSPANII }
func (l *erspanLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		return errTruncated
	}
	session := uint32(binary.BigEndian.Uint16(data[2:]) & 0x03ff)
	switch data[0] >> 4 {
	case 1: // type II
		l.setSession(session)
		l.setNext(layers.LayerTypeEthernet, data[8:])
	case 2: // type III: 12 bytes, plus 8 when the O flag says a platform sub-header follows
		hl := 12
		if len(data) < hl {
			return errTruncated
		}
		if data[11]&0x01 != 0 {
			hl += 8
		}
		if len(data) < hl {
			return errTruncated
		}
		l.setSession(session)
		switch (data[10] >> 2) & 0x1f { // frame type
		case 0:
			l.setNext(layers.LayerTypeEthernet, data[hl:])
		case 2:
			inner := data[hl:]
			if len(inner) > 0 && inner[0]>>4 == 6 {
				l.setNext(layers.LayerTypeIPv6, inner)
			} else {
				l.setNext(layers.LayerTypeIPv4, inner)
			}
		default:
			return errUnsupported
		}
	default:
		return errUnsupported
	}
	return nil
}

func (l *erspanLayer) setSession(s uint32) {
	if l.d.ipDepth == 1 && l.d.pendTunnel == TunnelERSPAN {
		l.d.pendVNI = s
	}
}

type vxlanLayer struct{ base }

func (l *vxlanLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeVXLAN }
func (l *vxlanLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		return errTruncated
	}
	l.markTunnel(TunnelVXLAN, binary.BigEndian.Uint32(data[4:])>>8, true)
	l.setNext(layers.LayerTypeEthernet, data[8:])
	return nil
}

type geneveLayer struct{ base }

func (l *geneveLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeGeneve }
func (l *geneveLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	if len(data) < 8 {
		return errTruncated
	}
	if data[0]>>6 != 0 {
		return errUnsupported
	}
	hl := 8 + int(data[0]&0x3f)*4
	if len(data) < hl {
		return errTruncated
	}
	l.markTunnel(TunnelGeneve, binary.BigEndian.Uint32(data[4:])>>8, true)
	l.setNext(nextForEtherType(binary.BigEndian.Uint16(data[2:])), data[hl:])
	return nil
}

type tcpLayer struct{ base }

func (l *tcpLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeTCP }
func (l *tcpLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	d := l.d
	if len(data) < 20 {
		return errTruncated
	}
	hl := int(data[12]>>4) * 4
	if hl < 20 {
		return errBadHeaderLen
	}
	d.HasPorts = true
	d.SrcPort = binary.BigEndian.Uint16(data)
	d.DstPort = binary.BigEndian.Uint16(data[2:])
	d.Seq = binary.BigEndian.Uint32(data[4:])
	d.Ack = binary.BigEndian.Uint32(data[8:])
	d.TCPFlags = data[13]
	d.Window = binary.BigEndian.Uint16(data[14:])
	if hl > d.PayloadLen && !d.Frag {
		d.PayloadLen, d.Payload = 0, nil
		l.setNext(gopacket.LayerTypeZero, nil)
		return errBadHeaderLen
	}
	d.PayloadLen -= hl
	if d.PayloadLen < 0 {
		d.PayloadLen = 0
	}
	if len(data) < hl {
		d.Payload = nil
	} else {
		d.Payload = data[hl:]
	}
	l.setNext(gopacket.LayerTypeZero, nil)
	return nil
}

type udpLayer struct{ base }

func (l *udpLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeUDP }
func (l *udpLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	d := l.d
	if len(data) < 8 {
		return errTruncated
	}
	d.HasPorts = true
	d.SrcPort = binary.BigEndian.Uint16(data)
	d.DstPort = binary.BigEndian.Uint16(data[2:])
	d.PayloadLen -= 8
	if d.PayloadLen < 0 {
		d.PayloadLen = 0
	}
	d.Payload = data[8:]
	l.setNext(gopacket.LayerTypeZero, nil)
	if d.Frag || len(d.Payload) < 8 {
		return nil
	}
	// Tunnels are recognised by their well-known destination port and a
	// plausible header, so ordinary traffic on those ports stays a flow.
	switch d.DstPort {
	case 4789, 8472: // VXLAN (IANA, Linux legacy)
		if d.Payload[0]&0x08 != 0 {
			l.setNext(layers.LayerTypeVXLAN, d.Payload)
		}
	case 6081:
		if d.Payload[0]>>6 == 0 {
			l.setNext(layers.LayerTypeGeneve, d.Payload)
		}
	}
	return nil
}

type icmpLayer struct{ base }

func (l *icmpLayer) CanDecode() gopacket.LayerClass {
	return gopacket.NewLayerClass([]gopacket.LayerType{layers.LayerTypeICMPv4, layers.LayerTypeICMPv6})
}
func (l *icmpLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	d := l.d
	if len(data) < 4 {
		return errTruncated
	}
	// Zeek's convention: the ICMP type travels as the originator port and
	// the code as the responder port.
	d.HasPorts = true
	d.SrcPort = uint16(data[0])
	d.DstPort = uint16(data[1])
	d.PayloadLen -= 4
	if d.PayloadLen < 0 {
		d.PayloadLen = 0
	}
	d.Payload = data[4:]
	l.setNext(gopacket.LayerTypeZero, nil)
	return nil
}

type sctpLayer struct{ base }

func (l *sctpLayer) CanDecode() gopacket.LayerClass { return layers.LayerTypeSCTP }
func (l *sctpLayer) DecodeFromBytes(data []byte, _ gopacket.DecodeFeedback) error {
	d := l.d
	if len(data) < 12 {
		return errTruncated
	}
	d.HasPorts = true
	d.SrcPort = binary.BigEndian.Uint16(data)
	d.DstPort = binary.BigEndian.Uint16(data[2:])
	d.PayloadLen -= 12
	if d.PayloadLen < 0 {
		d.PayloadLen = 0
	}
	d.Payload = data[12:]
	l.setNext(gopacket.LayerTypeZero, nil)
	return nil
}

// IsDecodeError reports whether err is a decode problem and of which kind.
func IsDecodeError(err error) (ErrorKind, bool) {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.kind, true
	}
	return 0, false
}
