package live

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/flowhound/flowhound/capture/pcapfile"
)

// Source is one AF_PACKET socket with its TPACKET_V3 ring: one member of an
// interface's fanout group. It is a capture.PacketSource.
//
// Next must be called from one goroutine at a time; Stop, Stats and
// Received may be called from any goroutine, Close once Next has returned
// for the last time.
type Source struct {
	iface    string
	ifNum    int // Packet.Interface
	linkType pcapfile.LinkType
	ether    bool // frames start with an Ethernet header (VLAN tags can be put back)

	fd   int
	file *os.File // registers fd with the runtime poller
	raw  syscall.RawConn
	ring []byte

	nblocks int
	cur     int  // block being read
	holding bool // cur belongs to us until released
	left    int  // packets of cur not yet returned
	off     int  // offset in cur of the next packet
	index   int64
	scratch []byte // a frame with its VLAN tag put back, when it cannot be done in place

	stopped      atomic.Bool
	drain        int       // blocks still to read after Stop; -1 before Stop is seen
	drainUntil   time.Time // when to give up waiting for the last block after Stop
	blockTimeout time.Duration
	received     atomic.Int64

	statsMu sync.Mutex
	stats   KernelStats
	closed  bool
}

// Layout of the ring (linux/if_packet.h). A block starts with struct
// tpacket_block_desc; its frames with struct tpacket3_hdr followed by a
// struct sockaddr_ll.
const (
	blkStatus      = 8  // tpacket_hdr_v1.block_status
	blkNumPkts     = 12 // tpacket_hdr_v1.num_pkts
	blkFirstPkt    = 16 // tpacket_hdr_v1.offset_to_first_pkt
	blkHeaderLen   = 48
	hdrNextOffset  = 0
	hdrSec         = 4
	hdrNsec        = 8
	hdrSnaplen     = 12
	hdrLen         = 16
	hdrStatus      = 20
	hdrMac         = 24
	hdrVlanTCI     = 32
	hdrVlanTPID    = 36
	tpacket3HdrLen = 48 // TPACKET_ALIGN(sizeof(struct tpacket3_hdr))
	sockaddrLLLen  = 20
	frameSize      = 2048 // tp_frame_size; TPACKET_V3 frames are variable, this only has to divide the block
)

// OpenInterface opens cfg.Workers sockets on one interface, joined in one
// PACKET_FANOUT_HASH group when there are more than one. num is stamped on
// the packets as their Packet.Interface.
//
// The sockets receive nothing until every member has joined the group, so
// a flow is never split between members at start-up.
func OpenInterface(cfg Config, num int) ([]*Source, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	srcs := make([]*Source, 0, cfg.Workers)
	fail := func(err error) ([]*Source, error) {
		for _, s := range srcs {
			s.Close()
		}
		return nil, err
	}
	group := 0
	for i := 0; i < cfg.Workers; i++ {
		s, err := openSocket(&cfg, num)
		if err != nil {
			return fail(err)
		}
		srcs = append(srcs, s)
		if cfg.Workers == 1 {
			break
		}
		// The first member asks the kernel for an unused group id (no
		// clash with another program's group); the others join it.
		// PACKET_FANOUT_HASH hashes the flow symmetrically
		// (__skb_get_hash_symmetric), so both directions meet.
		// No ROLLOVER: it would move a busy flow to another member.
		mode := unix.PACKET_FANOUT_HASH
		if i == 0 {
			mode |= unix.PACKET_FANOUT_FLAG_UNIQUEID
		}
		if err := unix.SetsockoptInt(s.fd, unix.SOL_PACKET, unix.PACKET_FANOUT, group|mode<<16); err != nil {
			return fail(fmt.Errorf("live: %s: joining fanout group: %w", cfg.Interface, err))
		}
		if i == 0 {
			v, err := unix.GetsockoptInt(s.fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
			if err != nil {
				return fail(fmt.Errorf("live: %s: reading fanout group: %w", cfg.Interface, err))
			}
			group = v & 0xffff
		}
	}
	// Now let frames in: every member at once, so the hash decides from
	// the first frame on.
	prog := cfg.Filter.withSnaplen(cfg.Snaplen)
	for _, s := range srcs {
		if err := attachFilter(s.fd, prog); err != nil {
			return fail(fmt.Errorf("live: %s: attaching the capture filter: %w", cfg.Interface, err))
		}
		// Nobody changes the filter after this, even with the socket.
		if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_LOCK_FILTER, 1); err != nil {
			return fail(fmt.Errorf("live: %s: locking the capture filter: %w", cfg.Interface, err))
		}
	}
	return srcs, nil
}

// openSocket creates one socket, bound to the interface with its ring set
// up, that accepts no frame yet (OpenInterface lets them in).
func openSocket(cfg *Config, num int) (_ *Source, err error) {
	name := cfg.Interface
	// Protocol 0: the socket receives nothing until bind names one.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.EPERM) {
			return nil, fmt.Errorf("live: %s: opening an AF_PACKET socket needs CAP_NET_RAW: %w", name, err)
		}
		return nil, fmt.Errorf("live: %s: socket: %w", name, err)
	}
	s := &Source{iface: name, ifNum: num, fd: fd, drain: -1, blockTimeout: cfg.BlockTimeout}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	wrap := func(what string, err error) error { return fmt.Errorf("live: %s: %s: %w", name, what, err) }

	// The interface is looked up through the socket, so it is found in
	// the network namespace the socket was created in.
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return nil, wrap("interface name", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		if errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("live: %s: no such network interface", name)
		}
		return nil, wrap("interface index", err)
	}
	ifindex := int(ifr.Uint32())
	ifr, _ = unix.NewIfreq(name)
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return nil, wrap("interface type", err)
	}
	// ifr_hwaddr.sa_family is the ARPHRD_ type.
	switch hw := ifr.Uint16(); hw {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		s.linkType, s.ether = pcapfile.LinkTypeEthernet, true
	case unix.ARPHRD_NONE, unix.ARPHRD_IPGRE, unix.ARPHRD_TUNNEL, unix.ARPHRD_TUNNEL6, unix.ARPHRD_SIT:
		// Layer 3 devices (tun, WireGuard, IP tunnels): frames are IP
		// packets.
		s.linkType = pcapfile.LinkTypeRaw
	default:
		return nil, fmt.Errorf("live: %s: unsupported interface type (ARPHRD %d)", name, hw)
	}

	// Nothing passes until OpenInterface has built the fanout group.
	if err := attachFilter(fd, Filter{{Op: bpfRetK, K: 0}}); err != nil {
		return nil, wrap("attaching a drop-all filter", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return nil, wrap("TPACKET_V3", err)
	}
	bs := blockSize
	for bs < cfg.Snaplen+tpacket3HdrLen+sockaddrLLLen+64 {
		bs *= 2
	}
	bs = min(bs, cfg.RingSize)
	bs &^= os.Getpagesize() - 1
	s.nblocks = cfg.RingSize / bs
	req := unix.TpacketReq3{
		Block_size:     uint32(bs),
		Block_nr:       uint32(s.nblocks),
		Frame_size:     frameSize,
		Frame_nr:       uint32(bs / frameSize * s.nblocks),
		Retire_blk_tov: uint32(cfg.BlockTimeout / time.Millisecond),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return nil, wrap(fmt.Sprintf("ring of %d blocks of %d bytes", s.nblocks, bs), err)
	}
	s.ring, err = unix.Mmap(fd, 0, bs*s.nblocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, wrap("mapping the ring", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		return nil, wrap("bind", err)
	}
	if cfg.Promiscuous {
		// A membership, not IFF_PROMISC: the kernel counts it per socket
		// and takes it back when the socket closes, even on a crash.
		mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return nil, wrap("promiscuous mode", err)
		}
	}
	s.file = os.NewFile(uintptr(fd), "packet:"+name)
	if s.raw, err = s.file.SyscallConn(); err != nil {
		return nil, wrap("poller", err)
	}
	return s, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func attachFilter(fd int, f Filter) error {
	ins := make([]unix.SockFilter, len(f))
	for i, in := range f {
		ins[i] = unix.SockFilter{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	prog := unix.SockFprog{Len: uint16(len(ins)), Filter: &ins[0]}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog)
}

// Interface returns the name of the interface the source reads.
func (s *Source) Interface() string { return s.iface }

// LinkType returns the link type of the frames.
func (s *Source) LinkType() pcapfile.LinkType { return s.linkType }

// Next returns the next frame, waiting for one as long as it takes. Its
// Data points into the ring and is valid until the next call to Next. After
// Stop, Next returns the frames the ring held at that moment and those of
// the block the kernel was filling (it hands it over within the block
// timeout), then io.EOF.
//
// Frames whose VLAN tag the kernel (or the NIC) took off are given it back,
// so that VLAN ids reach the flow records as they do from a capture file.
func (s *Source) Next(p *pcapfile.Packet) error {
	for {
		if err := s.next(p, 0); err != errIdle {
			return err
		}
	}
}

// next is Next that gives up with errIdle after idle (0: never).
func (s *Source) next(p *pcapfile.Packet, idle time.Duration) error {
	for {
		if s.left > 0 {
			if s.frame(p) {
				return nil
			}
			s.left = 0 // a damaged block: skip the rest of it
		}
		if s.holding {
			s.release()
		}
		stopping := s.stopped.Load()
		if stopping && s.drain < 0 {
			// Read what the ring holds now, and the block the kernel is
			// filling, which it hands over within its timeout.
			s.drain = s.nblocks + 1
			s.drainUntil = time.Now().Add(2 * s.blockTimeout)
		}
		if stopping && s.drain == 0 {
			return s.eof()
		}
		if s.blockReady() {
			b := s.block()
			s.holding = true
			s.left = int(binary.NativeEndian.Uint32(b[blkNumPkts:]))
			s.off = int(binary.NativeEndian.Uint32(b[blkFirstPkt:]))
			if s.drain > 0 {
				s.drain--
			}
			continue
		}
		if stopping {
			left := time.Until(s.drainUntil)
			if left <= 0 {
				return s.eof()
			}
			if err := s.wait(left, false); err != nil && err != errIdle {
				return err
			}
			continue
		}
		if err := s.wait(idle, true); err != nil {
			return err
		}
	}
}

func (s *Source) eof() error {
	s.received.Store(s.index)
	return io.EOF
}

// block returns the current block.
func (s *Source) block() []byte {
	bs := len(s.ring) / s.nblocks
	return s.ring[s.cur*bs : (s.cur+1)*bs : (s.cur+1)*bs]
}

// statusWord is the block's block_status, shared with the kernel.
func (s *Source) statusWord() *uint32 {
	return (*uint32)(unsafe.Pointer(&s.block()[blkStatus]))
}

func (s *Source) blockReady() bool {
	return atomic.LoadUint32(s.statusWord())&unix.TP_STATUS_USER != 0
}

// release hands the current block back to the kernel and moves on.
func (s *Source) release() {
	atomic.StoreUint32(s.statusWord(), unix.TP_STATUS_KERNEL)
	s.holding = false
	s.left = 0
	s.cur++
	if s.cur == s.nblocks {
		s.cur = 0
	}
	s.received.Store(s.index)
}

// frame fills p from the packet at s.off of the current block and moves
// on. It reports false when the header does not fit the block.
func (s *Source) frame(p *pcapfile.Packet) bool {
	b := s.block()
	off := s.off
	if off < blkHeaderLen || off > len(b)-tpacket3HdrLen {
		return false
	}
	h := b[off : off+tpacket3HdrLen]
	next := int(binary.NativeEndian.Uint32(h[hdrNextOffset:]))
	snap := int(binary.NativeEndian.Uint32(h[hdrSnaplen:]))
	wire := int(binary.NativeEndian.Uint32(h[hdrLen:]))
	status := binary.NativeEndian.Uint32(h[hdrStatus:])
	mac := int(binary.NativeEndian.Uint16(h[hdrMac:]))
	if mac < tpacket3HdrLen || off+mac+snap > len(b) {
		return false
	}
	data := b[off+mac : off+mac+snap]
	if s.ether && status&unix.TP_STATUS_VLAN_VALID != 0 && snap >= 12 {
		tpid := uint16(unix.ETH_P_8021Q)
		if status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
			tpid = binary.NativeEndian.Uint16(h[hdrVlanTPID:])
		}
		data = s.putVLAN(b, off, mac, data, tpid, uint16(binary.NativeEndian.Uint32(h[hdrVlanTCI:])))
		wire += 4
	}
	p.Data = data
	p.Timestamp = int64(binary.NativeEndian.Uint32(h[hdrSec:]))*1e9 + int64(binary.NativeEndian.Uint32(h[hdrNsec:]))
	p.WireLen = wire
	p.LinkType = s.linkType
	p.Interface = s.ifNum
	p.Index = s.index
	s.index++
	s.left--
	s.off = off + next
	if next == 0 && s.left > 0 {
		s.left = 0 // a broken chain: the rest of the block cannot be found
	}
	return true
}

// putVLAN puts the 802.1Q tag back between the MAC addresses and the
// EtherType. The kernel leaves padding between the frame's header and its
// data (a struct sockaddr_ll, then alignment), so the addresses can usually
// move 4 bytes to the front in place; otherwise the frame is copied.
func (s *Source) putVLAN(b []byte, off, mac int, data []byte, tpid, tci uint16) []byte {
	var out []byte
	if mac-4 >= tpacket3HdrLen+sockaddrLLLen {
		start := off + mac - 4
		copy(b[start:start+12], data[:12])
		out = b[start : off+mac+len(data)]
	} else {
		if cap(s.scratch) < len(data)+4 {
			s.scratch = make([]byte, 0, max(len(data)+4, 2048))
		}
		out = s.scratch[:len(data)+4]
		copy(out, data[:12])
		copy(out[16:], data[12:])
	}
	binary.BigEndian.PutUint16(out[12:], tpid)
	binary.BigEndian.PutUint16(out[14:], tci)
	return out
}

// wait blocks until the kernel hands over a block, d passes (errIdle; 0
// waits for ever) or, with wakeOnStop, Stop is called.
func (s *Source) wait(d time.Duration, wakeOnStop bool) error {
	var deadline time.Time
	if d > 0 {
		deadline = time.Now().Add(d)
	}
	// Stop sets the flag before it moves the deadline, and the check below
	// runs after this deadline is set, so a Stop is never missed.
	if err := s.file.SetReadDeadline(deadline); err != nil {
		return fmt.Errorf("live: %s: %w", s.iface, err)
	}
	err := s.raw.Read(func(uintptr) bool { return wakeOnStop && s.stopped.Load() || s.blockReady() })
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		if wakeOnStop && s.stopped.Load() {
			return nil
		}
		return s.checkError()
	case errors.Is(err, os.ErrClosed):
		return io.EOF
	}
	return fmt.Errorf("live: %s: %w", s.iface, err)
}

// checkError turns a pending socket error into the idle result: the
// interface going down is weathered (frames come back with it), the
// interface disappearing ends the capture.
func (s *Source) checkError() error {
	v, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err == nil && v != 0 {
		if e := unix.Errno(v); e == unix.ENODEV || e == unix.ENXIO {
			return fmt.Errorf("live: %s: interface removed: %w", s.iface, e)
		}
	}
	return errIdle
}

// Stop makes Next return io.EOF once it has read what the ring holds (see
// Next). It may be called from any goroutine, more than once.
func (s *Source) Stop() {
	s.stopped.Store(true)
	if s.file != nil {
		s.file.SetReadDeadline(time.Unix(1, 0))
	}
}

// Received returns the frames Next has returned, as of the last block
// handed back to the kernel. It may be called from any goroutine.
func (s *Source) Received() int64 { return s.received.Load() }

// Stats returns the kernel's counters for this socket since it was opened.
// After Close it returns the last counters read.
func (s *Source) Stats() (KernelStats, error) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if s.closed {
		return s.stats, nil
	}
	return s.readStats()
}

// readStats adds the kernel's counters to s.stats: reading them resets
// them. statsMu must be held.
func (s *Source) readStats() (KernelStats, error) {
	st, err := unix.GetsockoptTpacketStatsV3(s.fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
	if err != nil {
		return s.stats, fmt.Errorf("live: %s: PACKET_STATISTICS: %w", s.iface, err)
	}
	s.stats.Add(KernelStats{Packets: uint64(st.Packets), Drops: uint64(st.Drops), Freezes: uint64(st.Freeze_q_cnt)})
	return s.stats, nil
}

// Close reads the kernel's counters a last time, unmaps the ring and closes
// the socket. Next must not be running.
func (s *Source) Close() error {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.readStats()
	var err error
	if s.ring != nil {
		err = unix.Munmap(s.ring)
		s.ring = nil
	}
	if s.file != nil {
		if cerr := s.file.Close(); err == nil {
			err = cerr
		}
	} else if cerr := unix.Close(s.fd); err == nil {
		err = cerr
	}
	return err
}
