package capture

import "unsafe"

// prefetch asks the CPU to start loading the cache line at p. It never
// faults and changes nothing the program can see; the flow table uses it to
// overlap the cache misses of a batch of packets.
//
//go:noescape
func prefetch(p unsafe.Pointer)
