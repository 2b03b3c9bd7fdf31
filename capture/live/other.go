//go:build !linux

package live

import (
	"time"

	"github.com/flowhound/flowhound/capture/pcapfile"
)

// Source is one capture socket; on this system there are none.
type Source struct{}

// OpenInterface returns ErrUnsupported.
func OpenInterface(Config, int) ([]*Source, error) { return nil, ErrUnsupported }

// DropPrivileges returns ErrUnsupported.
func DropPrivileges(string) error { return ErrUnsupported }

// Next returns ErrUnsupported.
func (s *Source) Next(*pcapfile.Packet) error { return ErrUnsupported }

func (s *Source) next(*pcapfile.Packet, time.Duration) error { return ErrUnsupported }

// Stop does nothing.
func (s *Source) Stop() {}

// Received returns 0.
func (s *Source) Received() int64 { return 0 }

// Stats returns ErrUnsupported.
func (s *Source) Stats() (KernelStats, error) { return KernelStats{}, ErrUnsupported }

// Close does nothing.
func (s *Source) Close() error { return nil }
