// Package eval scores flowhound's detectors against ground truth.
//
// A scenario is a directory holding a capture (scenario.pcap or
// scenario.pcapng, optionally gzip-compressed) and truth.json, the
// synth.ScenarioTruth that says which activities the capture contains: the
// attacks a detector must find and the benign traps it must not flag. Run
// replays the capture through the sensor and a detect.Engine built from a
// Factory, matches every finding against the truth and reports, per finding
// kind, recall, precision, false positives on traps and per 1,000 benign
// pairs, and how long detection took. RunAll does the same for many
// scenarios and adds micro-averaged totals; Sweep generates beacon
// scenarios over a grid of period, jitter and missed beats; RealCaptures
// scores the shared real captures whose manifest gives ground truth.
//
// Every report also scores the same flow records with RITABeacons, a
// reference implementation of RITA v5's published beacon score, so that
// flowhound's beacon detector is always compared with the tool it has to
// beat.
//
// Matching rules (see Matches): a finding is about an activity when the kinds
// agree (traps have their own kinds and match findings of any kind), the
// finding's source is the activity's source, its destination is one of the
// activity's destinations or its FQDN equals or lies under the activity's
// FQDN, and its first/last seen overlaps the activity's span widened by a
// slack. Lateral-movement and scan findings about many peers (zero Dst)
// match on the source alone.
package eval
