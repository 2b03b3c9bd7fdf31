package eval

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/flowhound/flowhound/capture/synth"
	"github.com/flowhound/flowhound/detect"
)

// DefaultSlack widens an activity's [Start, End] when matching findings to
// it: flow records reach the detectors only when a flow ends or times out,
// and detectors may date a finding by the window that raised it.
const DefaultSlack = 2 * time.Minute

// Matches reports whether finding f is about activity a:
//
//   - the kinds agree, unless a is a benign trap: a trap's kind names the
//     trap ("ntp", "backup", ...), so a finding of any kind on it is a false
//     positive on that trap;
//   - f.Src is a.Src (for a lateral-movement chain, any hop but the last);
//   - f.Dst is one of a.Dsts (or the next hop of a chain), or f.FQDN equals
//     a.FQDN or is a subdomain of it; a lateral-movement or scan finding with
//     zero Dst and no FQDN (one about many peers) matches on the source
//     alone;
//   - [f.FirstSeen, f.LastSeen] (f.Time when they are unset) overlaps
//     [a.Start-slack, a.End+slack]; a zero a.Start or a.End leaves that side
//     open.
func Matches(a *synth.Activity, f *detect.Finding, slack time.Duration) bool {
	if !a.Benign && string(f.Kind) != a.Kind {
		return false
	}
	return matchesPeers(a, f) && matchesTime(a, f, slack)
}

func matchesPeers(a *synth.Activity, f *detect.Finding) bool {
	chain := detect.Kind(a.Kind) == detect.KindLateralMovement && len(a.Chain) > 1
	srcHop := -1 // f.Src's position in the chain
	if chain {
		srcHop = slices.Index(a.Chain[:len(a.Chain)-1], f.Src)
	}
	if f.Src != a.Src && srcHop < 0 {
		return false
	}
	manyPeers := (f.Kind == detect.KindLateralMovement || f.Kind == detect.KindScan) && !f.Dst.IsValid() && f.FQDN == ""
	if manyPeers {
		return true
	}
	if f.Dst.IsValid() {
		if f.Src == a.Src && slices.Contains(a.Dsts, f.Dst) {
			return true
		}
		if srcHop >= 0 && a.Chain[srcHop+1] == f.Dst {
			return true
		}
	}
	return f.FQDN != "" && a.FQDN != "" && UnderDomain(f.FQDN, a.FQDN)
}

func matchesTime(a *synth.Activity, f *detect.Finding, slack time.Duration) bool {
	first, last := f.FirstSeen, f.LastSeen
	if first.IsZero() {
		first = f.Time
	}
	if last.IsZero() || last.Before(first) {
		last = first
		if f.Time.After(last) {
			last = f.Time
		}
	}
	if !a.End.IsZero() && first.After(a.End.Add(slack)) {
		return false
	}
	if !a.Start.IsZero() && last.Before(a.Start.Add(-slack)) {
		return false
	}
	return true
}

// UnderDomain reports whether name equals domain or is a subdomain of it,
// ignoring case and a trailing dot ("a.b.example.com" is under
// "example.com"; "badexample.com" is not).
func UnderDomain(name, domain string) bool {
	name = strings.ToLower(strings.TrimSuffix(name, "."))
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	if name == "" || domain == "" {
		return false
	}
	return name == domain || strings.HasSuffix(name, "."+domain)
}

// Classes of a finding, from the best to the worst.
const (
	// ClassTP: it matches an activity of its own kind.
	ClassTP = "tp"
	// ClassRelated: it matches a malicious activity of another kind (a
	// long-connection finding on a C2 session, say). It is neither a true
	// nor a false positive of its kind and is left out of precision.
	ClassRelated = "related"
	// ClassTrap: it matches a benign trap only: a false positive.
	ClassTrap = "trap"
	// ClassUnlabelled: it matches nothing in the truth: a false positive.
	ClassUnlabelled = "unlabelled"
)

// classify sorts a finding into a class and lists the activities it
// matches (indices into acts), best class first.
func classify(acts []synth.Activity, f *detect.Finding, slack time.Duration) (class string, matched []int) {
	var tp, related, traps []int
	for i := range acts {
		a := &acts[i]
		if !matchesPeers(a, f) || !matchesTime(a, f, slack) {
			continue
		}
		switch {
		case a.Benign:
			traps = append(traps, i)
		case a.Kind == string(f.Kind):
			tp = append(tp, i)
		default:
			related = append(related, i)
		}
	}
	switch {
	case len(tp) > 0:
		return ClassTP, tp
	case len(related) > 0:
		return ClassRelated, related
	case len(traps) > 0:
		return ClassTrap, traps
	}
	return ClassUnlabelled, nil
}

// addrIn reports whether a is in set.
func addrIn(set []netip.Addr, a netip.Addr) bool { return slices.Contains(set, a) }
