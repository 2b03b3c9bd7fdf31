package live

import (
	"errors"
	"fmt"
	"time"
)

// Config is the capture of one network interface.
type Config struct {
	// Interface is the network interface's name, such as "eth1".
	Interface string
	// Workers is the number of sockets in the interface's PACKET_FANOUT
	// group. Each has its own ring and is read by its own goroutine into
	// its own flow table. Default 1 (no fanout).
	Workers int
	// RingSize is the memory of each worker's ring in bytes; the kernel
	// drops frames (and counts them) when the ring is full. Default 64 MiB.
	RingSize int
	// Snaplen is the most bytes kept of a frame. Flow byte counts use the
	// original length, so a short snaplen only hides payload (application
	// hints need the first few hundred bytes). Default 65535.
	Snaplen int
	// Promiscuous asks for frames addressed to other hosts too, as a SPAN
	// or TAP port delivers them. The interface leaves promiscuous mode when
	// the capture is closed (the kernel counts one request per socket).
	Promiscuous bool
	// Filter, when not nil, is a compiled capture filter (see
	// CompileFilter): the kernel drops the frames it rejects before they
	// reach the ring.
	Filter Filter
	// BlockTimeout is how long the kernel keeps filling a ring block before
	// handing it over half full: the most a frame waits in the kernel when
	// traffic is light. Default 50ms.
	BlockTimeout time.Duration
}

// Defaults for the zero fields of a Config.
const (
	DefaultRingSize     = 64 << 20
	DefaultSnaplen      = 65535
	DefaultBlockTimeout = 50 * time.Millisecond
	// blockSize is the size of one ring block. 1 MiB holds a few hundred
	// full-size frames, so the kernel wakes the reader rarely under load.
	blockSize = 1 << 20
	// minRingSize keeps at least a few blocks in a ring.
	minRingSize = 1 << 20
	// MaxSnaplen is the largest snaplen accepted (as pcapfile's).
	MaxSnaplen = 256 << 10
	// MaxWorkers bounds a fanout group (the kernel allows 65536 members).
	MaxWorkers = 256
)

// ErrUnsupported is returned by Open where AF_PACKET does not exist.
var ErrUnsupported = errors.New("live capture needs Linux (AF_PACKET)")

// withDefaults returns c with its zero fields defaulted, or an error naming
// the interface and the bad setting.
func (c Config) withDefaults() (Config, error) {
	if c.Workers == 0 {
		c.Workers = 1
	}
	if c.RingSize == 0 {
		c.RingSize = DefaultRingSize
	}
	if c.Snaplen == 0 {
		c.Snaplen = DefaultSnaplen
	}
	if c.BlockTimeout == 0 {
		c.BlockTimeout = DefaultBlockTimeout
	}
	switch {
	case c.Interface == "" || len(c.Interface) > 15:
		return c, fmt.Errorf("live: not an interface name: %q", c.Interface)
	case c.Workers < 1 || c.Workers > MaxWorkers:
		return c, fmt.Errorf("live: %s: workers must be between 1 and %d, got %d", c.Interface, MaxWorkers, c.Workers)
	case c.RingSize < minRingSize:
		return c, fmt.Errorf("live: %s: ring size must be at least 1 MiB, got %d bytes", c.Interface, c.RingSize)
	case c.Snaplen < 64 || c.Snaplen > MaxSnaplen:
		return c, fmt.Errorf("live: %s: snaplen must be between 64 and %d, got %d", c.Interface, MaxSnaplen, c.Snaplen)
	case c.BlockTimeout < time.Millisecond || c.BlockTimeout > 10*time.Second:
		return c, fmt.Errorf("live: %s: block timeout must be between 1ms and 10s, got %v", c.Interface, c.BlockTimeout)
	}
	return c, nil
}

// KernelStats are a socket's counters kept by the kernel
// (PACKET_STATISTICS), summed since the socket was opened.
type KernelStats struct {
	// Packets are the frames that passed the filter, dropped ones
	// included.
	Packets uint64
	// Drops are frames lost because the ring was full: the reader did not
	// keep up.
	Drops uint64
	// Freezes counts the times the ring filled up.
	Freezes uint64
}

// Add adds o to s.
func (s *KernelStats) Add(o KernelStats) {
	s.Packets += o.Packets
	s.Drops += o.Drops
	s.Freezes += o.Freezes
}
