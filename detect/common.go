package detect

import (
	"crypto/sha1"
	"encoding/hex"
	"net/netip"
	"strings"

	"github.com/flowhound/flowhound/flow"
)

// FindingUID derives a finding's uid from its kind and the parts that
// identify the activity (source, destination or name, port...), so that the
// same activity always gets the same uid across updates, restarts and
// replays.
func FindingUID(kind Kind, parts ...string) string {
	h := sha1.New()
	h.Write([]byte(kind))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	var sum [sha1.Size]byte
	return "F" + hex.EncodeToString(h.Sum(sum[:0])[:12])
}

// Outbound reports whether a record goes from the home networks to outside.
func Outbound(r *flow.Record) bool { return r.LocalOrig && !r.LocalResp }

// Internal reports whether both sides are in the home networks.
func Internal(r *flow.Record) bool { return r.LocalOrig && r.LocalResp }

// RecordName returns the name the originator used for the responder, best
// evidence first: an explicit proxy's target host, TLS SNI, HTTP Host.
// Ports are stripped and the result is lower case.
func RecordName(r *flow.Record) string {
	a := r.App
	if a == nil {
		return ""
	}
	n := a.HTTPProxyTarget
	if n == "" {
		n = a.TLSSNI
	}
	if n == "" {
		n = a.HTTPHost
	}
	return normalizeHost(n)
}

func normalizeHost(h string) string {
	if h == "" {
		return ""
	}
	if strings.HasPrefix(h, "[") { // [v6]:port
		if i := strings.IndexByte(h, ']'); i > 0 {
			h = h[1:i]
		}
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.Count(h, ":") == 1 {
		h = h[:i]
	}
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// RegisteredDomain approximates the registrable domain of a DNS name: the
// last two labels, or three when the second-level label is a common
// public-suffix part (co.uk, com.au, ...). It is used to group DNS tunnel
// queries, so over-grouping is harmless and no suffix list is carried.
func RegisteredDomain(name string) string {
	name = strings.TrimSuffix(name, ".")
	last := strings.LastIndexByte(name, '.')
	if last < 0 {
		return name
	}
	second := strings.LastIndexByte(name[:last], '.')
	if second < 0 {
		return name
	}
	switch name[second+1 : last] {
	case "co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go":
		if len(name)-last-1 == 2 { // a country code TLD
			if third := strings.LastIndexByte(name[:second], '.'); third >= 0 {
				return name[third+1:]
			}
			return name
		}
	}
	return name[second+1:]
}

// Prevalence counts, per destination, how many distinct internal sources
// talk to it, up to a cap: a destination every host uses (the update
// server, the monitoring collector) is rarely C2. Memory is bounded by
// maxKeys destinations; when full, the table is cleared and relearned.
type Prevalence struct {
	cap     int
	maxKeys int
	m       map[string]*prevEntry
}

type prevEntry struct {
	srcs []netip.Addr
}

// NewPrevalence tracks up to maxKeys destinations, counting at most cap
// sources each.
func NewPrevalence(cap, maxKeys int) *Prevalence {
	return &Prevalence{cap: cap, maxKeys: maxKeys, m: map[string]*prevEntry{}}
}

// Observe records that src used dst (an address or a name) and returns the
// number of distinct sources seen for dst, at most the cap.
func (p *Prevalence) Observe(dst string, src netip.Addr) int {
	e := p.m[dst]
	if e == nil {
		if len(p.m) >= p.maxKeys {
			clear(p.m)
		}
		e = &prevEntry{}
		p.m[dst] = e
	}
	for _, s := range e.srcs {
		if s == src {
			return len(e.srcs)
		}
	}
	if len(e.srcs) < p.cap {
		e.srcs = append(e.srcs, src)
	}
	return len(e.srcs)
}

// Count returns the distinct sources seen for dst (at most the cap).
func (p *Prevalence) Count(dst string) int {
	if e := p.m[dst]; e != nil {
		return len(e.srcs)
	}
	return 0
}

// Len is the number of destinations tracked.
func (p *Prevalence) Len() int { return len(p.m) }
