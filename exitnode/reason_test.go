package exitnode

import (
	"errors"
	"fmt"
	"testing"

	"github.com/pikcio/pikcio/internal/endreason"
)

func TestReasonErr(t *testing.T) {
	tests := []struct {
		r    endreason.Reason
		err  error
		text string
	}{
		{endreason.ReasonDone, nil, "done"},
		{endreason.ReasonMisc, endreason.ErrMisc, endreason.ErrMisc.Error()},
		{endreason.ReasonPolicy, endreason.ErrPolicy, endreason.ErrPolicy.Error()},
		{endreason.ReasonRefused, endreason.ErrRefused, endreason.ErrRefused.Error()},
		{endreason.ReasonUnreachable, endreason.ErrUnreachable, endreason.ErrUnreachable.Error()},
		{endreason.ReasonResolve, endreason.ErrResolve, endreason.ErrResolve.Error()},
		{endreason.ReasonTimeout, endreason.ErrTimeout, endreason.ErrTimeout.Error()},
		{endreason.ReasonNotExit, endreason.ErrNotExit, endreason.ErrNotExit.Error()},
		{endreason.ReasonProtocol, endreason.ErrProtocol, endreason.ErrProtocol.Error()},
		{endreason.ReasonReset, endreason.ErrReset, endreason.ErrReset.Error()},
		{endreason.Reason(200), endreason.ErrMisc, "reason 200"},
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
			if tc.r <= endreason.ReasonReset {
				if got := endreason.ReasonOf(tc.r.Err()); got != tc.r {
					t.Fatalf("endreason.ReasonOf(%v.Err()) = %v", tc.r, got)
				}
				if tc.err != nil {
					wrapped := fmt.Errorf("open stream: %w", tc.err)
					if got := endreason.ReasonOf(wrapped); got != tc.r {
						t.Fatalf("endreason.ReasonOf(wrapped) = %v", got)
					}
					if got := endreason.ReasonOf(&DialError{Reason: tc.r, Err: errors.New("cause")}); got != tc.r {
						t.Fatalf("endreason.ReasonOf(DialError) = %v", got)
					}
				}
			}
		})
	}
	if got := endreason.ReasonOf(errors.New("other")); got != endreason.ReasonMisc {
		t.Fatalf("endreason.ReasonOf(other) = %v", got)
	}
}

func TestReasonOfDialErrorWins(t *testing.T) {
	// A DialError's own endreason.Reason decides, even if its cause wraps another
	// sentinel.
	err := fmt.Errorf("stream: %w", &DialError{Reason: endreason.ReasonResolve, Err: fmt.Errorf("dns server: %w", endreason.ErrRefused)})
	for range 20 {
		if got := endreason.ReasonOf(err); got != endreason.ReasonResolve {
			t.Fatalf("endreason.ReasonOf = %v, want %v", got, endreason.ReasonResolve)
		}
	}
	if !errors.Is(err, endreason.ErrResolve) {
		t.Fatal("errors.Is does not match the DialError's sentinel")
	}
}
