//go:build !amd64

package pcapfile

func prefetchRange(p *byte, n int) {}
