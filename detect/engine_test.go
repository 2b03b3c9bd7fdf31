package detect

import (
	"net/netip"
	"testing"
	"time"

	"github.com/flowhound/flowhound/flow"
)

// proposer proposes the scores it is given, one per record.
type proposer struct{ scores []float64 }

func (p *proposer) Kind() Kind { return KindBeacon }
func (p *proposer) Observe(r *flow.Record, propose func(*Finding)) {
	s := p.scores[0]
	p.scores = p.scores[1:]
	propose(&Finding{UID: "F1", Kind: KindBeacon, Score: s, Src: r.OrigAddr})
}
func (p *proposer) Tick(time.Time, func(*Finding)) {}
func (p *proposer) Stats() DetectorStats           { return DetectorStats{} }

func TestEngineNewThenMaterialUpdates(t *testing.T) {
	var got []Finding
	p := &proposer{scores: []float64{0.70, 0.72, 0.76, 0.76, 0.91, 0.92}}
	e := NewEngine("s1", func(f *Finding) { got = append(got, *f) }, p)
	r := &flow.Record{OrigAddr: netip.MustParseAddr("10.0.0.1"), End: time.Unix(100, 0)}
	for range 6 {
		e.Record(r)
	}
	// 0.70 new; 0.72 too small a move; 0.76 moves 0.06 (update);
	// 0.76 again nothing; 0.91 update (and severity critical); 0.92 nothing.
	if len(got) != 3 || got[0].Status != StatusNew || got[1].Status != StatusUpdate || got[2].Score != 0.91 {
		t.Fatalf("emissions: %+v", got)
	}
	if got[2].Severity != SeverityCritical || got[0].Sensor != "s1" || !got[0].Time.Equal(time.Unix(100, 0)) {
		t.Fatalf("severity/sensor/time: %+v", got[2])
	}
	if st := e.Stats(); st.New != 1 || st.Updates != 2 || st.Proposals != 6 {
		t.Fatalf("stats %+v", st)
	}
}
