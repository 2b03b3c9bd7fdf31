package synth

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// PacketWriter receives frames in non-decreasing time order. Both PcapWriter
// and PcapngWriter implement it; a test may supply its own.
type PacketWriter interface {
	// WritePacket writes one frame seen at ts (nanoseconds since the Unix
	// epoch). frame holds the bytes to store, wireLen the frame's length on
	// the wire (at least len(frame)). The writer does not keep frame.
	WritePacket(ts int64, frame []byte, wireLen int) error
	// Flush writes out anything buffered.
	Flush() error
}

// LinkTypeEthernet is the pcap link type of the frames Packet builds.
const LinkTypeEthernet = 1

// writeBufSize is large because generation is usually bound by the cost of
// handing bytes to the kernel; 1 MiB makes that a few hundred syscalls per GB.
const writeBufSize = 1 << 20

// defaultSnaplen is recorded in file headers when no snaplen is set; it is
// what libpcap uses, and larger than any frame we build.
const defaultSnaplen = 262144

// ErrClosed is returned by writes after Close.
var ErrClosed = errors.New("synth: writer is closed")

// PcapWriter writes a classic little-endian pcap file. It buffers its output;
// call Flush or Close when done. It does not close the underlying writer.
// Errors are sticky: after one, every later call returns it.
type PcapWriter struct {
	sticky
	snaplen int
	nanos   bool
	hdr     [16]byte
}

// NewPcapWriter writes the pcap file header to w and returns a writer for its
// records. Frames longer than snaplen (when snaplen > 0) are stored cut to
// snaplen bytes with their original length kept in the record header. With
// nanos the file has nanosecond timestamps (magic a1b23c4d), otherwise
// microseconds.
func NewPcapWriter(w io.Writer, linkType uint16, snaplen int, nanos bool) (*PcapWriter, error) {
	if snaplen < 0 {
		return nil, fmt.Errorf("synth: pcap snaplen %d is negative", snaplen)
	}
	pw := &PcapWriter{sticky: sticky{w: bufio.NewWriterSize(w, writeBufSize)}, snaplen: snaplen, nanos: nanos}
	var h [24]byte
	magic := uint32(0xa1b2c3d4)
	if nanos {
		magic = 0xa1b23c4d
	}
	binary.LittleEndian.PutUint32(h[0:], magic)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	fileSnap := snaplen
	if fileSnap == 0 {
		fileSnap = defaultSnaplen
	}
	binary.LittleEndian.PutUint32(h[16:], uint32(fileSnap))
	binary.LittleEndian.PutUint32(h[20:], uint32(linkType))
	if _, err := pw.w.Write(h[:]); err != nil {
		return nil, fmt.Errorf("synth: writing pcap header: %w", err)
	}
	return pw, nil
}

// WritePacket implements PacketWriter.
func (pw *PcapWriter) WritePacket(ts int64, frame []byte, wireLen int) error {
	if pw.err != nil {
		return pw.err
	}
	if err := checkRecord(ts, frame, wireLen); err != nil {
		return err
	}
	capLen := len(frame)
	if pw.snaplen > 0 && capLen > pw.snaplen {
		capLen = pw.snaplen
	}
	sec, frac := ts/1e9, ts%1e9
	if !pw.nanos {
		frac /= 1000
	}
	h := &pw.hdr
	binary.LittleEndian.PutUint32(h[0:], uint32(sec))
	binary.LittleEndian.PutUint32(h[4:], uint32(frac))
	binary.LittleEndian.PutUint32(h[8:], uint32(capLen))
	binary.LittleEndian.PutUint32(h[12:], uint32(wireLen))
	if err := pw.write(h[:]); err != nil {
		return err
	}
	if err := pw.write(frame[:capLen]); err != nil {
		return err
	}
	return nil
}

// PcapngWriter writes a little-endian pcapng file with one section and one
// interface whose timestamps have nanosecond resolution (if_tsresol=9); each
// frame is an Enhanced Packet Block. Buffering, snaplen and error behaviour
// are those of PcapWriter.
type PcapngWriter struct {
	sticky
	snaplen int
	hdr     [28]byte
}

// NewPcapngWriter writes the section header and interface description blocks
// to w and returns a writer for the packets.
func NewPcapngWriter(w io.Writer, linkType uint16, snaplen int) (*PcapngWriter, error) {
	if snaplen < 0 {
		return nil, fmt.Errorf("synth: pcapng snaplen %d is negative", snaplen)
	}
	pw := &PcapngWriter{sticky: sticky{w: bufio.NewWriterSize(w, writeBufSize)}, snaplen: snaplen}
	le := binary.LittleEndian

	// Section Header Block with shb_userappl, so a reader can tell where the
	// file came from.
	const app = "flowhound synth"
	appPad := pad4(len(app))
	shbLen := 28 + 4 + appPad + 4
	shb := make([]byte, shbLen)
	le.PutUint32(shb[0:], 0x0A0D0D0A)
	le.PutUint32(shb[4:], uint32(shbLen))
	le.PutUint32(shb[8:], 0x1A2B3C4D)
	le.PutUint16(shb[12:], 1)
	le.PutUint16(shb[14:], 0)
	le.PutUint64(shb[16:], ^uint64(0)) // section length unknown
	le.PutUint16(shb[24:], 4)          // shb_userappl
	le.PutUint16(shb[26:], uint16(len(app)))
	copy(shb[28:], app)
	// opt_endofopt is the four zero bytes after the padded option.
	le.PutUint32(shb[shbLen-4:], uint32(shbLen))

	// Interface Description Block: if_tsresol = 9 (10^-9 s), opt_endofopt.
	var idb [32]byte
	le.PutUint32(idb[0:], 1)
	le.PutUint32(idb[4:], uint32(len(idb)))
	le.PutUint16(idb[8:], linkType)
	le.PutUint32(idb[12:], uint32(snaplen)) // 0 means no limit in pcapng
	le.PutUint16(idb[16:], 9)
	le.PutUint16(idb[18:], 1)
	idb[20] = 9
	le.PutUint32(idb[28:], uint32(len(idb)))

	if _, err := pw.w.Write(shb); err != nil {
		return nil, fmt.Errorf("synth: writing pcapng section header: %w", err)
	}
	if _, err := pw.w.Write(idb[:]); err != nil {
		return nil, fmt.Errorf("synth: writing pcapng interface block: %w", err)
	}
	return pw, nil
}

// WritePacket implements PacketWriter.
func (pw *PcapngWriter) WritePacket(ts int64, frame []byte, wireLen int) error {
	if pw.err != nil {
		return pw.err
	}
	if err := checkRecord(ts, frame, wireLen); err != nil {
		return err
	}
	capLen := len(frame)
	if pw.snaplen > 0 && capLen > pw.snaplen {
		capLen = pw.snaplen
	}
	padded := pad4(capLen)
	total := 32 + padded
	le := binary.LittleEndian
	h := &pw.hdr
	le.PutUint32(h[0:], 6)
	le.PutUint32(h[4:], uint32(total))
	le.PutUint32(h[8:], 0)
	le.PutUint32(h[12:], uint32(uint64(ts)>>32))
	le.PutUint32(h[16:], uint32(ts))
	le.PutUint32(h[20:], uint32(capLen))
	le.PutUint32(h[24:], uint32(wireLen))
	var tail [8]byte // up to 3 padding bytes, then the trailing length
	n := padded - capLen
	le.PutUint32(tail[n:], uint32(total))
	if err := pw.write(h[:]); err != nil {
		return err
	}
	if err := pw.write(frame[:capLen]); err != nil {
		return err
	}
	if err := pw.write(tail[:n+4]); err != nil {
		return err
	}
	return nil
}

// checkRecord rejects what a pcap record header cannot represent. It is not
// sticky: a bad argument does not poison the file.
func checkRecord(ts int64, frame []byte, wireLen int) error {
	if ts < 0 || ts/1e9 > 1<<32-1 {
		return fmt.Errorf("synth: timestamp %d ns outside the pcap range", ts)
	}
	if wireLen < len(frame) || wireLen > 1<<31 {
		return fmt.Errorf("synth: wire length %d for a %d-byte frame", wireLen, len(frame))
	}
	return nil
}

func pad4(n int) int { return (n + 3) &^ 3 }

// sticky is the buffered output both writers share: the first error sticks
// and every later call returns it.
type sticky struct {
	w   *bufio.Writer
	err error
}

func (s *sticky) write(p []byte) error {
	if _, err := s.w.Write(p); err != nil {
		s.err = err
		return err
	}
	return nil
}

// Flush implements PacketWriter.
func (s *sticky) Flush() error {
	if s.err != nil {
		return s.err
	}
	if err := s.w.Flush(); err != nil {
		s.err = err
	}
	return s.err
}

// Close flushes the writer; later writes fail with ErrClosed. It does not
// close the underlying io.Writer.
func (s *sticky) Close() error {
	err := s.Flush()
	if s.err == nil {
		s.err = ErrClosed
	}
	return err
}
