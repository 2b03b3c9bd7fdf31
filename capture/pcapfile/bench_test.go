package pcapfile

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"
)

const benchPackets = 100_000

// benchSizes is a mix of Ethernet frame sizes: ACKs, full segments and a
// few in between. Their mean is 709 bytes.
var benchSizes = []int{60, 1514, 590, 74, 1514, 128, 1400, 66, 342, 1402}

func benchFrames(write func(i int, ts uint64, data []byte)) {
	var buf [1514]byte
	for i := range buf {
		buf[i] = byte(i)
	}
	for i := range benchPackets {
		write(i, uint64(t0)*1e6+uint64(i)*37, buf[:benchSizes[i%len(benchSizes)]])
	}
}

func benchPcap() []byte {
	var b bytes.Buffer
	b.Write(pcapFile(le, magicMicro, 1))
	benchFrames(func(_ int, ts uint64, data []byte) {
		b.Write(pcapRec(le, false, rec{sec: uint32(ts / 1e6), frac: uint32(ts % 1e6), data: data}))
	})
	return b.Bytes()
}

func benchPcapng() []byte {
	var b bytes.Buffer
	b.Write(cat(ngSHB(le, 1, 0), ngIDB(le, LinkTypeEthernet, 0), ngIDB(le, LinkTypeRaw, 0, ngOpt(le, optIfTsresol, []byte{9}))))
	benchFrames(func(i int, ts uint64, data []byte) {
		b.Write(ngEPB(le, uint32(i%2), ts*uint64(1+999*(i%2)), 0, data))
	})
	return b.Bytes()
}

func BenchmarkReadPcap(b *testing.B)   { benchRead(b, benchPcap()) }
func BenchmarkReadPcapng(b *testing.B) { benchRead(b, benchPcapng()) }

// benchRead times one Next per op, reopening the file when it ends, so
// allocs/op is what a packet costs.
func benchRead(b *testing.B, data []byte) {
	dir := b.TempDir()
	plain := filepath.Join(dir, "bench")
	if err := os.WriteFile(plain, data, 0o600); err != nil {
		b.Fatal(err)
	}
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	w.Write(data)
	w.Close()
	compressed := filepath.Join(dir, "bench.gz")
	if err := os.WriteFile(compressed, gz.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	for _, m := range []struct {
		name string
		open func() (*Reader, error)
	}{
		{"mmap", func() (*Reader, error) { return Open(plain) }},
		{"stream", func() (*Reader, error) { return openFile(plain, false) }},
		{"gzip", func() (*Reader, error) { return Open(compressed) }},
	} {
		b.Run(m.name, func(b *testing.B) {
			r, err := m.open()
			if err != nil {
				b.Fatal(err)
			}
			var p Packet
			var sink byte
			n := 0
			b.SetBytes(int64(len(data) / benchPackets))
			b.ReportAllocs()
			for b.Loop() {
				err := r.Next(&p)
				if err == io.EOF {
					r.Close()
					if r, err = m.open(); err == nil {
						err = r.Next(&p)
					}
				}
				if err != nil {
					b.Fatal(err)
				}
				sink ^= p.Data[len(p.Data)-1]
				n++
			}
			r.Close()
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "packets/s")
			_ = sink
		})
	}
}
