package pcapfile

// prefetchRange asks the CPU to start loading p[0:n] into its caches. It
// never faults and reads nothing the caller can see.
//
//go:noescape
func prefetchRange(p *byte, n int)
