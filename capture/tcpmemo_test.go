package capture

import (
	"math/rand/v2"
	"testing"
)

// refUpdateTCP is updateTCP without the memo: every packet takes
// tcpLetters.
func refUpdateTCP(f *flowState, d *pktView, side int, orig bool) {
	ds := &f.dir[side]
	f.tcpLetters(d, ds, &f.dir[1-side], orig)
	if d.Window == 0 && d.TCPFlags&(flagRST|flagSYN) == 0 {
		f.addLogHist('W', orig, &ds.histCnt[1])
	}
	f.trackSeq(d, ds, orig)
}

// TestTCPMemoChangesNothing drives random TCP conversations through
// updateTCP and through refUpdateTCP and requires the same flow state
// (history, endpoint states, sequence tracking) after every packet.
func TestTCPMemoChangesNothing(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	flagSets := []uint8{
		flagSYN, flagSYN | flagACK, flagACK, flagACK, flagACK | flagPSH, flagACK | flagPSH,
		flagFIN | flagACK, flagRST, flagRST | flagACK, 0, flagPSH, flagFIN, flagSYN | flagFIN,
	}
	skipped := 0
	for trial := range 20000 {
		var memo, ref flowState
		memo.key.rest = 6
		memo.origSide = uint8(rng.IntN(2))
		ref = memo
		var seq [2]uint32
		seq[0], seq[1] = rng.Uint32(), rng.Uint32()
		for i := range 1 + rng.IntN(40) {
			side := rng.IntN(2)
			// Mostly one kind of conversation, now and then anything.
			fl := flagSets[rng.IntN(len(flagSets))]
			if rng.IntN(10) == 0 {
				fl = uint8(rng.Uint32())
			}
			n := 0
			if rng.IntN(2) == 0 {
				n = 1 + rng.IntN(1400)
			}
			d := pktView{Proto: 6, HasPorts: true, TCPFlags: fl, PayloadLen: n, Seq: seq[side], Window: uint16(rng.IntN(3))}
			if rng.IntN(8) == 0 {
				d.Seq -= uint32(rng.IntN(3000)) // retransmission or reordering
			}
			seq[side] += uint32(n)
			orig := uint8(side) == memo.origSide
			before := memo.dir[side].memo
			memo.updateTCP(&d, side, orig)
			refUpdateTCP(&ref, &d, side, orig)
			if memo.dir[side].memo == before && before != 0 {
				skipped++
			}
			got, want := memo, ref
			for j := range got.dir {
				got.dir[j].memo, want.dir[j].memo = 0, 0
			}
			if got != want {
				t.Fatalf("trial %d packet %d (side %d flags %#x len %d): memo state %+v\nwant %+v", trial, i, side, fl, n, got, want)
			}
		}
	}
	// The memo must actually spare packets, or the test proves nothing.
	if skipped < 10000 {
		t.Fatalf("memo skipped tcpLetters for only %d packets", skipped)
	}
}
