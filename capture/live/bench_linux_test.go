package live

import (
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/flowhound/flowhound/capture"
	"github.com/flowhound/flowhound/capture/pcapfile"
)

// BenchmarkRing measures frames per second through a ring on the test veth:
// a raw socket in nsB sends 64-byte UDP frames (1,000 flows) as fast as it
// can; the reader in nsA reads them, alone ("ring") or into a sensor
// ("sensor"). Both sides share the machine's cores, so this is the rate of
// the whole path, sender included; the dropped metric says whether the
// reader kept up.
func BenchmarkRing(b *testing.B) {
	tn := newTestNet(b)
	for _, withSensor := range []bool{false, true} {
		name := "ring"
		if withSensor {
			name = "sensor"
		}
		b.Run(name, func(b *testing.B) {
			var srcs []*Source
			err := inNetns(tn.nsA, func() (err error) {
				srcs, err = OpenInterface(Config{Interface: tn.ifA, RingSize: 64 << 20, BlockTimeout: 5 * time.Millisecond}, 0)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			src := srcs[0]
			defer src.Close()
			frames := benchFrames(1000)
			var sent atomic.Int64
			stop := make(chan struct{})
			senderDone := make(chan error, 1)
			go func() { senderDone <- sendFrames(tn, frames, b.N, &sent, stop) }()

			sensor := capture.NewSensor(capture.Config{Table: capture.DefaultTableConfig()}, nil)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var p pcapfile.Packet
			got := 0
			for got < b.N {
				err := src.next(&p, 200*time.Millisecond)
				if err == errIdle {
					if sent.Load() == int64(b.N) {
						break // the rest was dropped
					}
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
				if withSensor {
					sensor.Packet(&p)
				}
				got++
			}
			elapsed := time.Since(start)
			b.StopTimer()
			close(stop)
			if err := <-senderDone; err != nil {
				b.Fatal(err)
			}
			st, _ := src.Stats()
			b.ReportMetric(float64(got)/elapsed.Seconds(), "pkts/s")
			b.ReportMetric(float64(st.Drops)/float64(b.N), "dropped/op")
		})
	}
}

// benchFrames builds n minimal UDP frames from nsB to nsA, one per source
// port.
func benchFrames(n int) [][]byte {
	dmac, _ := net.ParseMAC(macA)
	smac, _ := net.ParseMAC(macB)
	out := make([][]byte, n)
	for i := range out {
		f := append(append(append([]byte{}, dmac...), smac...), 0x08, 0x00)
		f = append(f, 0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 99, 0, 2, 10, 99, 0, 1)
		f = binary.BigEndian.AppendUint16(f, uint16(20000+i))
		f = append(f, 0x1f, 0x90, 0, 12, 0, 0, 1, 2, 3, 4)
		out[i] = append(f, make([]byte, 64-len(f))...)
	}
	return out
}

// sendFrames sends n frames from nsB through a raw socket.
func sendFrames(tn *testNet, frames [][]byte, n int, sent *atomic.Int64, stop chan struct{}) error {
	var fd int
	var to unix.SockaddrLinklayer
	err := inNetns(tn.nsB, func() (err error) {
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(tn.ifB)
		if err != nil {
			return err
		}
		if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
			return err
		}
		to = unix.SockaddrLinklayer{Ifindex: int(ifr.Uint32()), Halen: 6}
		return nil
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for i := 0; i < n; i++ {
		select {
		case <-stop:
			return nil
		default:
		}
		if err := unix.Sendto(fd, frames[i%len(frames)], 0, &to); err != nil {
			if err == unix.ENOBUFS {
				i--
				continue
			}
			return err
		}
		sent.Add(1)
	}
	return nil
}
