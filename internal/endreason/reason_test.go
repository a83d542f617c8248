package endreason

import "testing"

func TestReasonWireValues(t *testing.T) {
	// The values travel in END messages and must never change.
	want := map[Reason]uint8{
		ReasonDone: 0, ReasonMisc: 1, ReasonPolicy: 2, ReasonRefused: 3, ReasonUnreachable: 4,
		ReasonResolve: 5, ReasonTimeout: 6, ReasonNotExit: 7, ReasonProtocol: 8, ReasonReset: 9, ReasonCircuitFull: 10,
	}
	for r, v := range want {
		if uint8(r) != v {
			t.Errorf("%v = %d, want %d", r, uint8(r), v)
		}
	}
}
