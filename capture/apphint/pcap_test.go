package apphint

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Test-only helpers to walk the shared real captures and ask tshark about them.

// pcapsDir returns the shared capture folder, which sits beside the checkout
// (repoRoot/../shared/pcaps), or skips the test when it is absent.
func pcapsDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("go.mod not found above the test directory; cannot locate shared captures")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "pcaps")
	if st, err := os.Stat(p); err != nil || !st.IsDir() {
		t.Skipf("shared captures not found at %s (expected beside the checkout); skipping real-traffic test", p)
	}
	return p
}

// frame is one captured packet reduced to what the parsers need.
type frame struct {
	num      int // 1-based, as tshark's frame.number
	src, dst netip.AddrPort
	tcp      bool
	syn, ack bool
	seq      uint32
	payload  []byte
}

// readFrames reads a pcap or pcapng file and decodes IPv4/IPv6 TCP and UDP
// packets with gopacket. Other packets keep their frame number but no ports.
func readFrames(t testing.TB, path string) []frame {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := splitCapture(data)
	if err != nil {
		t.Fatalf("%s: %v", filepath.Base(path), err)
	}
	frames := make([]frame, 0, len(raw))
	for i, r := range raw {
		f := frame{num: i + 1}
		p := gopacket.NewPacket(r.data, layers.LinkType(r.link), gopacket.DecodeOptions{NoCopy: true, Lazy: true})
		var srcIP, dstIP netip.Addr
		switch nl := p.NetworkLayer().(type) {
		case *layers.IPv4:
			srcIP, _ = netip.AddrFromSlice(nl.SrcIP.To4())
			dstIP, _ = netip.AddrFromSlice(nl.DstIP.To4())
		case *layers.IPv6:
			srcIP, _ = netip.AddrFromSlice(nl.SrcIP)
			dstIP, _ = netip.AddrFromSlice(nl.DstIP)
		}
		switch tl := p.TransportLayer().(type) {
		case *layers.TCP:
			f.tcp, f.syn, f.ack, f.seq = true, tl.SYN, tl.ACK, tl.Seq
			f.src = netip.AddrPortFrom(srcIP, uint16(tl.SrcPort))
			f.dst = netip.AddrPortFrom(dstIP, uint16(tl.DstPort))
			f.payload = tl.Payload
		case *layers.UDP:
			f.src = netip.AddrPortFrom(srcIP, uint16(tl.SrcPort))
			f.dst = netip.AddrPortFrom(dstIP, uint16(tl.DstPort))
			f.payload = tl.Payload
		}
		frames = append(frames, f)
	}
	return frames
}

type rawPacket struct {
	link uint32
	data []byte
}

// splitCapture splits a classic pcap (either byte order, µs or ns) or a
// pcapng file into packets.
func splitCapture(d []byte) ([]rawPacket, error) {
	if len(d) < 24 {
		return nil, errors.New("file too short")
	}
	var bo binary.ByteOrder
	switch {
	case bytes.Equal(d[:4], []byte{0xd4, 0xc3, 0xb2, 0xa1}), bytes.Equal(d[:4], []byte{0x4d, 0x3c, 0xb2, 0xa1}):
		bo = binary.LittleEndian
	case bytes.Equal(d[:4], []byte{0xa1, 0xb2, 0xc3, 0xd4}), bytes.Equal(d[:4], []byte{0xa1, 0xb2, 0x3c, 0x4d}):
		bo = binary.BigEndian
	case bytes.Equal(d[:4], []byte{0x0a, 0x0d, 0x0d, 0x0a}):
		return splitPcapng(d)
	default:
		return nil, fmt.Errorf("unknown capture magic % x", d[:4])
	}
	link := bo.Uint32(d[20:]) & 0x0fffffff
	var out []rawPacket
	for p := 24; p+16 <= len(d); {
		n := int(bo.Uint32(d[p+8:]))
		if p+16+n > len(d) {
			break // cut short in the middle of a packet
		}
		out = append(out, rawPacket{link, d[p+16 : p+16+n]})
		p += 16 + n
	}
	return out, nil
}

func splitPcapng(d []byte) ([]rawPacket, error) {
	var bo binary.ByteOrder = binary.LittleEndian
	var links []uint32
	var out []rawPacket
	for p := 0; p+12 <= len(d); {
		typ := bo.Uint32(d[p:])
		if typ == 0x0a0d0d0a { // section header: byte order may change
			if bytes.Equal(d[p+8:p+12], []byte{0x1a, 0x2b, 0x3c, 0x4d}) {
				bo = binary.BigEndian
			} else {
				bo = binary.LittleEndian
			}
			links = links[:0]
		}
		n := int(bo.Uint32(d[p+4:]))
		if n < 12 || n%4 != 0 || p+n > len(d) {
			return out, fmt.Errorf("bad pcapng block length %d at %d", n, p)
		}
		body := d[p+8 : p+n-4]
		switch typ {
		case 1: // interface description
			links = append(links, uint32(bo.Uint16(body)))
		case 6: // enhanced packet
			ifc, capLen := int(bo.Uint32(body)), int(bo.Uint32(body[12:]))
			if ifc >= len(links) || 20+capLen > len(body) {
				return out, fmt.Errorf("bad enhanced packet block at %d", p)
			}
			out = append(out, rawPacket{links[ifc], body[20 : 20+capLen]})
		case 3: // simple packet
			if len(links) == 0 {
				return out, fmt.Errorf("simple packet before interface at %d", p)
			}
			capLen := min(int(bo.Uint32(body)), len(body)-4)
			out = append(out, rawPacket{links[0], body[4 : 4+capLen]})
		case 2: // obsolete packet block
			ifc, capLen := int(bo.Uint16(body)), int(bo.Uint32(body[12:]))
			if ifc >= len(links) || 20+capLen > len(body) {
				return out, fmt.Errorf("bad packet block at %d", p)
			}
			out = append(out, rawPacket{links[ifc], body[20 : 20+capLen]})
		}
		p += n
	}
	return out, nil
}

// tsharkRows runs tshark with a display filter and returns one row of fields
// per matching frame; multiple occurrences of a field are joined with ','.
// ok is false when tshark is not installed.
func tsharkRows(t testing.TB, file, filter string, fields ...string) (rows [][]string, ok bool) {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		return nil, false
	}
	args := []string{"-n", "-r", file, "-Y", filter, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, f := range fields {
		args = append(args, "-e", f)
	}
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if line == "" {
			continue
		}
		row := strings.Split(line, "\t")
		for len(row) < len(fields) {
			row = append(row, "")
		}
		rows = append(rows, row)
	}
	return rows, true
}

// splitList splits a tshark aggregated field; "" gives nil.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
