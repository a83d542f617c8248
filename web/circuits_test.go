package web

import (
	"reflect"
	"testing"
	"time"
)

func TestShortIDAndRole(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"12D3KooWGzBcvMfNDGBhVs1tPiWpuEHqxsGdxGqDCNJbtWD2ac2P", "tWD2ac2P"},
		{"short", "short"},
		{"12345678", "12345678"},
		{"", ""},
	} {
		if got := ShortID(tc.in); got != tc.want {
			t.Errorf("ShortID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		i, n int
		want string
	}{
		{0, 3, "guard"}, {1, 3, "middle"}, {2, 3, "exit"},
		{0, 1, "exit"}, {0, 2, "guard"}, {1, 4, "middle"}, {2, 4, "middle"},
	} {
		if got := HopRole(tc.i, tc.n); got != tc.want {
			t.Errorf("HopRole(%d, %d) = %q, want %q", tc.i, tc.n, got, tc.want)
		}
	}
}

func TestCircuits(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ids := []string{"peer-aaaaaaaaguard1", "peer-bbbbbbbbmiddle", "peer-ccccccccexit01"}
	band := &Band{Min: 40, Max: 60}
	hop := func(id string) (*Band, string) {
		if id == ids[1] {
			return band, "alice"
		}
		return nil, ""
	}
	cs := []PoolCircuit{
		{ID: 7, Group: 0, Created: now.Add(-90 * time.Second), Hops: ids, BytesUp: 1, BytesDown: 2, Streams: 3, StreamsOpened: 4},
		{ID: 8, Group: 2, Created: now.Add(-time.Second), Hops: ids[:1]},
		{ID: 9, Group: 2, Retired: true, Created: now},
	}
	got := Circuits(now, cs, hop)
	want := []CircuitStatus{
		{ID: 7, Age: 90, BytesUp: 1, BytesDown: 2, Streams: 3, StreamsOpened: 4, State: "clean", Hops: []HopStatus{
			{ID: "aaguard1", PeerID: ids[0], Role: "guard"},
			{ID: "bbmiddle", PeerID: ids[1], Role: "middle", TCI: band, Contact: "alice"},
			{ID: "ccexit01", PeerID: ids[2], Role: "exit"},
		}},
		{ID: 8, Group: 2, Age: 1, State: "in use", Hops: []HopStatus{{ID: "aaguard1", PeerID: ids[0], Role: "exit"}}},
		{ID: 9, Group: 2, State: "retired", Hops: []HopStatus{}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if got := Circuits(now, cs[:1], nil); got[0].Hops[1].TCI != nil || got[0].Hops[1].Contact != "" {
		t.Fatalf("without a hop function: %+v", got[0].Hops[1])
	}
	if got := Circuits(now, nil, hop); got == nil || len(got) != 0 {
		t.Fatalf("no circuits: %#v, want an empty list (JSON [])", got)
	}
}
