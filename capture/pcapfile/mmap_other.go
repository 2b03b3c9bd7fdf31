//go:build !linux

package pcapfile

import (
	"errors"
	"os"
)

// Elsewhere files are streamed; mmap is an optimisation, not a feature.
func mmapFile(*os.File, int64) ([]byte, error) { return nil, errors.ErrUnsupported }

func munmap([]byte) error { return nil }
