package live

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/flowhound/flowhound/capture/pcapfile"
)

// ringFrame is one frame to lay out in a fake ring block.
type ringFrame struct {
	mac    int // offset of the frame from its tpacket3_hdr
	data   []byte
	wire   int
	status uint32
	tci    uint16
	tpid   uint16
}

// fakeBlock lays frames out as the kernel does in a TPACKET_V3 block.
func fakeBlock(frames []ringFrame) []byte {
	b := make([]byte, 1<<16)
	ne := binary.NativeEndian
	ne.PutUint32(b[blkStatus:], unix.TP_STATUS_USER)
	ne.PutUint32(b[blkNumPkts:], uint32(len(frames)))
	ne.PutUint32(b[blkFirstPkt:], blkHeaderLen)
	off := blkHeaderLen
	for i, f := range frames {
		h := b[off:]
		size := (f.mac + len(f.data) + 15) &^ 15
		if i < len(frames)-1 {
			ne.PutUint32(h[hdrNextOffset:], uint32(size))
		}
		ne.PutUint32(h[hdrSec:], 1700000000)
		ne.PutUint32(h[hdrNsec:], uint32(i))
		ne.PutUint32(h[hdrSnaplen:], uint32(len(f.data)))
		ne.PutUint32(h[hdrLen:], uint32(f.wire))
		ne.PutUint32(h[hdrStatus:], f.status)
		ne.PutUint16(h[hdrMac:], uint16(f.mac))
		ne.PutUint32(h[hdrVlanTCI:], uint32(f.tci))
		ne.PutUint16(h[hdrVlanTPID:], f.tpid)
		copy(h[f.mac:], f.data)
		off += size
	}
	return b
}

// TestRingFrames reads a hand-made ring block: plain frames, and frames
// whose VLAN tag the kernel took off, put back in place or, where the
// kernel left no room in front of the frame, in a copy.
func TestRingFrames(t *testing.T) {
	eth := func(etherType uint16, payload string) []byte {
		f := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0}
		binary.BigEndian.PutUint16(f[12:], etherType)
		return append(f, payload...)
	}
	tagged := func(tpid, tci, etherType uint16, payload string) []byte {
		f := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 0, 0, 0}
		binary.BigEndian.PutUint16(f[12:], tpid)
		binary.BigEndian.PutUint16(f[14:], tci)
		f = binary.BigEndian.AppendUint16(f, etherType)
		return append(f, payload...)
	}
	frames := []ringFrame{
		{mac: 82, data: eth(0x0800, "plain"), wire: 1500},
		{mac: 82, data: eth(0x0800, "in place"), wire: 60, status: unix.TP_STATUS_VLAN_VALID, tci: 42},
		{mac: tpacket3HdrLen + sockaddrLLLen, data: eth(0x86dd, "copied"), wire: 60, status: unix.TP_STATUS_VLAN_VALID, tci: 0x2007},
		{mac: 82, data: eth(0x8100, "qinq"), wire: 70,
			status: unix.TP_STATUS_VLAN_VALID | unix.TP_STATUS_VLAN_TPID_VALID, tci: 100, tpid: 0x88a8},
	}
	want := []struct {
		data []byte
		wire int
	}{
		{eth(0x0800, "plain"), 1500},
		{tagged(0x8100, 42, 0x0800, "in place"), 64},
		{tagged(0x8100, 0x2007, 0x86dd, "copied"), 64},
		{tagged(0x88a8, 100, 0x8100, "qinq"), 74},
	}
	s := &Source{ring: fakeBlock(frames), nblocks: 1, ether: true, linkType: pcapfile.LinkTypeEthernet, ifNum: 3, drain: -1}
	s.stopped.Store(true) // read what the ring holds, then io.EOF
	var p pcapfile.Packet
	for i, w := range want {
		if err := s.next(&p, 0); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(p.Data, w.data) || p.WireLen != w.wire {
			t.Errorf("frame %d: got % x (wire %d), want % x (wire %d)", i, p.Data, p.WireLen, w.data, w.wire)
		}
		if p.Timestamp != 1700000000e9+int64(i) || p.Index != int64(i) || p.Interface != 3 || p.LinkType != pcapfile.LinkTypeEthernet {
			t.Errorf("frame %d: got ts %d index %d interface %d link %v", i, p.Timestamp, p.Index, p.Interface, p.LinkType)
		}
	}
	if err := s.next(&p, 0); err != io.EOF {
		t.Fatalf("after the block: %v, want io.EOF", err)
	}
	if st := binary.NativeEndian.Uint32(s.ring[blkStatus:]); st != unix.TP_STATUS_KERNEL {
		t.Errorf("block status %#x after reading, want it handed back (TP_STATUS_KERNEL)", st)
	}
	if s.Received() != 4 {
		t.Errorf("Received %d, want 4", s.Received())
	}
}
