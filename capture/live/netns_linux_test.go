package live

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowhound/flowhound/flow"
)

// A testNet is two network namespaces joined by a veth pair:
//
//	nsA: ifA 10.99.0.1/24
//	nsB: ifB 10.99.0.2/24
//
// The tests capture on ifA, inside nsA. Both namespaces are made quiet so
// that every frame on the link is test traffic: IPv6 is off (no router or
// neighbour solicitations) and the neighbours are static (no ARP).
type testNet struct {
	nsA, nsB string
	ifA, ifB string
}

const (
	addrA    = "10.99.0.1"
	addrB    = "10.99.0.2"
	macA     = "02:00:0a:63:00:01"
	macB     = "02:00:0a:63:00:02"
	nsPrefix = "fhlive-"
)

// requireRoot skips the test unless it can create network namespaces.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live capture tests need root (CAP_NET_RAW, CAP_NET_ADMIN, CAP_SYS_ADMIN for network namespaces); CI runs them as root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("live capture tests need `ip netns` (Debian package iproute2): ip not found")
	}
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newTestNet builds the namespaces; they are deleted when the test ends,
// whether it passes or not.
func newTestNet(t testing.TB) *testNet {
	t.Helper()
	requireRoot(t)
	removeStaleNamespaces()
	id := strconv.Itoa(os.Getpid() % 1000000)
	tn := &testNet{nsA: nsPrefix + id + "-a", nsB: nsPrefix + id + "-b", ifA: "fhl" + id + "a", ifB: "fhl" + id + "b"}
	if err := ipCmd("netns", "add", tn.nsA); err != nil {
		t.Skipf("`ip netns` is unavailable here: %v", err)
	}
	t.Cleanup(func() { ipCmd("netns", "del", tn.nsA) })
	if err := ipCmd("netns", "add", tn.nsB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ipCmd("netns", "del", tn.nsB) })
	for _, ns := range []string{tn.nsA, tn.nsB} {
		if err := inNetns(ns, disableIPv6); err != nil {
			t.Fatal(err)
		}
	}
	// gso_max_segs 1: TCP sends one segment per frame, so the frames
	// captured are the segments the sockets count (tcpi_segs_out).
	steps := [][]string{
		{"-n", tn.nsA, "link", "add", tn.ifA, "address", macA, "gso_max_segs", "1", "type", "veth",
			"peer", "name", tn.ifB, "address", macB, "gso_max_segs", "1", "netns", tn.nsB},
		{"-n", tn.nsA, "addr", "add", addrA + "/24", "dev", tn.ifA},
		{"-n", tn.nsB, "addr", "add", addrB + "/24", "dev", tn.ifB},
		{"-n", tn.nsA, "neigh", "replace", addrB, "lladdr", macB, "dev", tn.ifA, "nud", "permanent"},
		{"-n", tn.nsB, "neigh", "replace", addrA, "lladdr", macA, "dev", tn.ifB, "nud", "permanent"},
		{"-n", tn.nsA, "link", "set", tn.ifA, "up"},
		{"-n", tn.nsB, "link", "set", tn.ifB, "up"},
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			t.Fatal(err)
		}
	}
	return tn
}

// removeStaleNamespaces deletes namespaces left by test processes that were
// killed before their cleanup ran.
func removeStaleNamespaces() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		rest, ok := strings.CutPrefix(name, nsPrefix)
		if !ok {
			continue
		}
		pidStr, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid()%1000000 {
			continue
		}
		if _, err := os.Stat("/proc/" + pidStr); err == nil {
			continue // that test is still running
		}
		ipCmd("netns", "del", name)
	}
}

func disableIPv6() error {
	for _, p := range []string{"/proc/sys/net/ipv6/conf/all/disable_ipv6", "/proc/sys/net/ipv6/conf/default/disable_ipv6"} {
		if err := os.WriteFile(p, []byte("1"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// inNetns runs f on an OS thread switched into the named network namespace:
// sockets f creates belong to that namespace for their lifetime. If the
// thread cannot be switched back it is thrown away with its goroutine.
func inNetns(name string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + name)
		if err != nil {
			errc <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", name, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns back from %s: %w", name, err)
			return // the goroutine exits locked: the runtime ends the thread
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// The traffic: a server in nsA; clients in nsB send a request and read a
// response of a size they ask for. Bulk transfers go to port bulkPort,
// the beacon to beaconPort.
const (
	bulkPort   = 7001
	beaconPort = 7002
)

// server accepts connections in nsA on every address.
type server struct {
	lns []net.Listener
	wg  sync.WaitGroup
}

func startServer(t testing.TB, tn *testNet) *server {
	t.Helper()
	s := &server{}
	err := inNetns(tn.nsA, func() error {
		for _, port := range []int{bulkPort, beaconPort} {
			ln, err := net.Listen("tcp4", ":"+strconv.Itoa(port))
			if err != nil {
				return err
			}
			s.lns = append(s.lns, ln)
		}
		return nil
	})
	if err != nil {
		s.close()
		t.Fatal(err)
	}
	for _, ln := range s.lns {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					serveConn(c)
				}()
			}
		}()
	}
	t.Cleanup(s.close)
	return s
}

func (s *server) close() {
	for _, ln := range s.lns {
		ln.Close()
	}
	s.wg.Wait()
}

// serveConn reads an 8-byte response size, then the request up to the
// client's FIN, writes the response and closes.
func serveConn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var hdr [8]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		return
	}
	writeN(c, int(binary.BigEndian.Uint64(hdr[:])))
}

func writeN(w io.Writer, n int) error {
	buf := make([]byte, 32<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	for n > 0 {
		k, err := w.Write(buf[:min(n, len(buf))])
		if err != nil {
			return err
		}
		n -= k
	}
	return nil
}

// sent is what the sender knows about a flow: the ground truth its record
// is checked against.
type sent struct {
	proto                flow.Proto
	src, dst             netip.AddrPort
	origBytes, respBytes uint64 // payload
	origPkts, respPkts   uint64
	state                string   // Zeek conn_state
	vlans                []uint16 // outermost first
}

func (s sent) String() string {
	return fmt.Sprintf("%v %v -> %v (%d/%d bytes, %d/%d pkts)", s.proto, s.src, s.dst, s.origBytes, s.respBytes, s.origPkts, s.respPkts)
}

// exchange connects from nsB to dst:port, sends req bytes of request (plus
// the 8-byte header), reads resp bytes back and reports what went over the
// wire, as the client's socket counted it (TCP_INFO segments in and out).
func exchange(tn *testNet, dst string, port, req, resp int) (sent, error) {
	var conn *net.TCPConn
	err := inNetns(tn.nsB, func() error {
		c, err := net.DialTimeout("tcp4", net.JoinHostPort(dst, strconv.Itoa(port)), 5*time.Second)
		if err == nil {
			conn = c.(*net.TCPConn)
		}
		return err
	})
	if err != nil {
		return sent{}, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var hdr [8]byte
	binary.BigEndian.PutUint64(hdr[:], uint64(resp))
	if _, err := conn.Write(hdr[:]); err != nil {
		return sent{}, err
	}
	if err := writeN(conn, req); err != nil {
		return sent{}, err
	}
	if err := conn.CloseWrite(); err != nil {
		return sent{}, err
	}
	n, err := io.Copy(io.Discard, conn)
	if err != nil {
		return sent{}, err
	}
	if n != int64(resp) {
		return sent{}, fmt.Errorf("read %d response bytes, want %d", n, resp)
	}
	// The server's FIN has arrived; give our ACK of it a moment to leave,
	// then read the socket's segment counters.
	time.Sleep(20 * time.Millisecond)
	rc, err := conn.SyscallConn()
	if err != nil {
		return sent{}, err
	}
	var info *unix.TCPInfo
	var ierr error
	rc.Control(func(fd uintptr) { info, ierr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO) })
	if ierr != nil {
		return sent{}, ierr
	}
	return sent{
		proto: flow.ProtoTCP,
		src:   conn.LocalAddr().(*net.TCPAddr).AddrPort(),
		dst:   conn.RemoteAddr().(*net.TCPAddr).AddrPort(),
		// The 8-byte header is payload too.
		origBytes: uint64(8 + req), respBytes: uint64(resp),
		origPkts: uint64(info.Segs_out), respPkts: uint64(info.Segs_in),
		state: "SF",
	}, nil
}

// injectVLAN sends n UDP datagrams of size bytes from nsB to nsA as raw
// Ethernet frames carrying the given VLAN tags (outermost first). The
// receiving kernel takes the outer tag off into packet metadata, as a NIC
// with VLAN offload does, so the capture has to put it back. nsA drops
// the frames (it has no VLAN interface), so nothing answers.
func injectVLAN(tn *testNet, vlans []uint16, srcPort, dstPort uint16, n, size int) (sent, error) {
	src, dst := netip.MustParseAddr("10.99.0.2"), netip.MustParseAddr("10.99.0.1")
	frame := make([]byte, 0, 64+size)
	dmac, _ := net.ParseMAC(macA)
	smac, _ := net.ParseMAC(macB)
	frame = append(frame, dmac...)
	frame = append(frame, smac...)
	for i, id := range vlans {
		tpid := uint16(0x8100)
		if i == 0 && len(vlans) > 1 {
			tpid = 0x88a8
		}
		frame = binary.BigEndian.AppendUint16(frame, tpid)
		frame = binary.BigEndian.AppendUint16(frame, id)
	}
	frame = binary.BigEndian.AppendUint16(frame, 0x0800)
	ip := len(frame)
	frame = append(frame, 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0)
	frame = append(frame, src.AsSlice()...)
	frame = append(frame, dst.AsSlice()...)
	binary.BigEndian.PutUint16(frame[ip+2:], uint16(20+8+size))
	var sum uint32
	for i := ip; i < ip+20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(frame[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(frame[ip+10:], ^uint16(sum))
	frame = binary.BigEndian.AppendUint16(frame, srcPort)
	frame = binary.BigEndian.AppendUint16(frame, dstPort)
	frame = binary.BigEndian.AppendUint16(frame, uint16(8+size))
	frame = append(frame, 0, 0) // no UDP checksum
	frame = append(frame, make([]byte, size)...)

	err := inNetns(tn.nsB, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq(tn.ifB)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
			return err
		}
		to := &unix.SockaddrLinklayer{Ifindex: int(ifr.Uint32()), Halen: 6}
		copy(to.Addr[:], dmac)
		for i := 0; i < n; i++ {
			if err := unix.Sendto(fd, frame, 0, to); err != nil {
				return err
			}
		}
		return nil
	})
	return sent{
		proto: flow.ProtoUDP,
		src:   netip.AddrPortFrom(src, srcPort), dst: netip.AddrPortFrom(dst, dstPort),
		origBytes: uint64(n * size), origPkts: uint64(n),
		state: "S0", vlans: vlans,
	}, err
}

// traffic runs the test traffic: bulk transfers in both directions,
// concurrently, a beacon of 8 short connections 0.5 s apart, and two bursts
// of VLAN-tagged datagrams (802.1Q, and 802.1ad over 802.1Q). It returns
// every flow's ground truth, ordered by source port.
func traffic(t testing.TB, tn *testNet) []sent {
	t.Helper()
	type job struct {
		port      int
		req, resp int
		delay     time.Duration
	}
	jobs := []job{
		{port: bulkPort, req: 100, resp: 200_000},
		{port: bulkPort, req: 300_000, resp: 50},
		{port: bulkPort, req: 1000, resp: 1000},
		{port: bulkPort, req: 64_000, resp: 64_000},
		{port: bulkPort, req: 0, resp: 1_000_000},
	}
	for i := 0; i < 8; i++ {
		jobs = append(jobs, job{port: beaconPort, req: 56, resp: 120, delay: time.Duration(i) * 500 * time.Millisecond})
	}
	out := make([]sent, len(jobs)+2)
	errs := make([]error, len(jobs)+2)
	var wg sync.WaitGroup
	start := time.Now()
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Until(start.Add(j.delay)))
			out[i], errs[i] = exchange(tn, addrA, j.port, j.req, j.resp)
		}()
	}
	n := len(jobs)
	out[n], errs[n] = injectVLAN(tn, []uint16{42}, 5000, 5001, 20, 300)
	out[n+1], errs[n+1] = injectVLAN(tn, []uint16{100, 42}, 5100, 5101, 7, 1000)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].src.Port() < out[j].src.Port() })
	return out
}
