package exitnode

import (
	"errors"
	"fmt"
	"testing"
)

func TestReasonWireValues(t *testing.T) {
	// The values travel in END messages and must never change.
	want := map[Reason]uint8{
		ReasonDone: 0, ReasonMisc: 1, ReasonPolicy: 2, ReasonRefused: 3, ReasonUnreachable: 4,
		ReasonResolve: 5, ReasonTimeout: 6, ReasonNotExit: 7, ReasonProtocol: 8, ReasonReset: 9,
	}
	for r, v := range want {
		if uint8(r) != v {
			t.Errorf("%v = %d, want %d", r, uint8(r), v)
		}
	}
}

func TestReasonErr(t *testing.T) {
	tests := []struct {
		r    Reason
		err  error
		text string
	}{
		{ReasonDone, nil, "done"},
		{ReasonMisc, ErrMisc, ErrMisc.Error()},
		{ReasonPolicy, ErrPolicy, ErrPolicy.Error()},
		{ReasonRefused, ErrRefused, ErrRefused.Error()},
		{ReasonUnreachable, ErrUnreachable, ErrUnreachable.Error()},
		{ReasonResolve, ErrResolve, ErrResolve.Error()},
		{ReasonTimeout, ErrTimeout, ErrTimeout.Error()},
		{ReasonNotExit, ErrNotExit, ErrNotExit.Error()},
		{ReasonProtocol, ErrProtocol, ErrProtocol.Error()},
		{ReasonReset, ErrReset, ErrReset.Error()},
		{Reason(200), ErrMisc, "reason 200"},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			if err := tc.r.Err(); err != tc.err {
				t.Fatalf("Err() = %v, want %v", err, tc.err)
			}
			if s := tc.r.String(); s != tc.text {
				t.Fatalf("String() = %q, want %q", s, tc.text)
			}
			// Known reasons survive the round trip through an error.
			if tc.r <= ReasonReset {
				if got := ReasonOf(tc.r.Err()); got != tc.r {
					t.Fatalf("ReasonOf(%v.Err()) = %v", tc.r, got)
				}
				if tc.err != nil {
					wrapped := fmt.Errorf("open stream: %w", tc.err)
					if got := ReasonOf(wrapped); got != tc.r {
						t.Fatalf("ReasonOf(wrapped) = %v", got)
					}
					if got := ReasonOf(&DialError{Reason: tc.r, Err: errors.New("cause")}); got != tc.r {
						t.Fatalf("ReasonOf(DialError) = %v", got)
					}
				}
			}
		})
	}
	if got := ReasonOf(errors.New("other")); got != ReasonMisc {
		t.Fatalf("ReasonOf(other) = %v", got)
	}
}

func TestReasonOfDialErrorWins(t *testing.T) {
	// A DialError's own Reason decides, even if its cause wraps another
	// sentinel.
	err := fmt.Errorf("stream: %w", &DialError{Reason: ReasonResolve, Err: fmt.Errorf("dns server: %w", ErrRefused)})
	for range 20 {
		if got := ReasonOf(err); got != ReasonResolve {
			t.Fatalf("ReasonOf = %v, want %v", got, ReasonResolve)
		}
	}
	if !errors.Is(err, ErrResolve) {
		t.Fatal("errors.Is does not match the DialError's sentinel")
	}
}
