// Package pcapfile reads packet capture files quickly and without trusting
// them.
//
// # Formats
//
// The format is recognised by its magic bytes, never by the file name:
//
//   - pcap: microsecond (a1b2c3d4) and nanosecond (a1b23c4d) magics in either
//     byte order, including files older than version 2.3 whose record header
//     has the two length fields swapped (handled as libpcap does), and the
//     24-byte record header of the "modified" Kuznetzov format (a1b2cd34).
//     The link type is the low 16 bits of the header's network field; the
//     upper bits (FCS length) are ignored.
//   - pcapng: any number of sections in either byte order, each resetting the
//     interface list; Interface Description Blocks with if_tsresol (both the
//     power-of-10 and power-of-2 forms) and if_tsoffset; Enhanced, Simple
//     and the obsolete Packet Blocks. Every other block type is skipped. A
//     Simple Packet Block has no timestamp; it is given the timestamp of the
//     packet before it.
//   - either of them compressed with gzip, decompressed as a stream.
//
// # Memory and lifetime
//
// Open maps a regular uncompressed file read-only, and Packet.Data points
// into that mapping. Everything else (stdin, gzip, NewReader, or a file that
// cannot be mapped) is read through one buffer per Reader that Data points
// into. Either way Data is valid only until the next call to Next or Close;
// copy it to keep it. Next itself allocates nothing.
//
// A mapped file must not be truncated while it is read. If it is, the
// Reader returns an *Error instead of crashing, but a caller still holding
// Data from before the truncation can fault when it touches it. Read files
// that another process may rewrite (a tcpdump -W ring, say) through
// NewReader instead.
//
// # Errors
//
// Every length in a file is checked before it is used. A problem is
// reported as an *Error that names the file, the index of the packet being
// read and the byte offset (in the decompressed stream) of the record or
// block at fault, and wraps a cause that errors.Is can test:
// io.ErrUnexpectedEOF for a file cut short, ErrNotCapture, ErrMalformed or
// ErrUnsupported. A Reader stops at its first error and returns it again on
// every later call.
//
// # Concurrency
//
// A Reader or Source is not safe for concurrent use. Use one per goroutine.
package pcapfile
