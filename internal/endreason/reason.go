// Package endreason is the vocabulary of a stream's end: the one-byte reason
// a circuit's END message carries and the sentinel errors it maps to. The exit
// produces these reasons, the circuit carries them, and the proxies turn them
// into SOCKS and HTTP answers; none of them needs the exit implementation.
package endreason

import (
	"errors"
	"fmt"
)

// Reason says why an exit could not open, or had to end, a stream. It travels
// in the circuit protocol's END message as one byte, so the values are part of
// the wire format and must never be renumbered.
type Reason uint8

// The reasons an exit reports. ReasonDone is a normal close.
const (
	ReasonDone        Reason = 0 // the stream ended normally
	ReasonMisc        Reason = 1 // any failure not listed below
	ReasonPolicy      Reason = 2 // the exit policy refuses the destination
	ReasonRefused     Reason = 3 // the destination refused the connection
	ReasonUnreachable Reason = 4 // no route to the destination host or network
	ReasonResolve     Reason = 5 // the name did not resolve at the exit
	ReasonTimeout     Reason = 6 // connecting timed out
	ReasonNotExit     Reason = 7 // the relay is not an exit
	ReasonProtocol    Reason = 8 // the peer broke the protocol
	ReasonReset       Reason = 9 // the connection was reset after it was open
	// ReasonCircuitFull: the circuit has as many streams as the exit
	// allows; the client should open the stream on another circuit.
	ReasonCircuitFull Reason = 10
)

// Sentinel errors, one per failure reason, for errors.Is.
var (
	ErrMisc        = errors.New("exit failure")
	ErrPolicy      = errors.New("destination refused by exit policy")
	ErrRefused     = errors.New("connection refused by destination")
	ErrUnreachable = errors.New("destination unreachable")
	ErrResolve     = errors.New("name not resolved at exit")
	ErrTimeout     = errors.New("connection to destination timed out")
	ErrNotExit     = errors.New("relay is not an exit")
	ErrProtocol    = errors.New("protocol violation")
	ErrReset       = errors.New("connection reset")
	ErrCircuitFull = errors.New("circuit takes no more streams")
)

var reasonErrs = map[Reason]error{
	ReasonMisc:        ErrMisc,
	ReasonPolicy:      ErrPolicy,
	ReasonRefused:     ErrRefused,
	ReasonUnreachable: ErrUnreachable,
	ReasonResolve:     ErrResolve,
	ReasonTimeout:     ErrTimeout,
	ReasonNotExit:     ErrNotExit,
	ReasonProtocol:    ErrProtocol,
	ReasonReset:       ErrReset,
	ReasonCircuitFull: ErrCircuitFull,
}

// Err returns the sentinel error for r, or nil for ReasonDone. Unknown values
// map to ErrMisc so that a newer peer's reason is still an error.
func (r Reason) Err() error {
	if r == ReasonDone {
		return nil
	}
	if err, ok := reasonErrs[r]; ok {
		return err
	}
	return ErrMisc
}

func (r Reason) String() string {
	if r == ReasonDone {
		return "done"
	}
	if err, ok := reasonErrs[r]; ok {
		return err.Error()
	}
	return fmt.Sprintf("reason %d", uint8(r))
}

// Carrier is an error that knows its own reason, such as exitnode's
// *DialError.
type Carrier interface {
	error
	EndReason() Reason
}

// ReasonOf classifies err into the reason an exit reports for it. An error
// in the chain that is a Carrier gives its reason; other errors that wrap one
// of the sentinels above map to its reason; anything else is ReasonMisc, and
// nil is ReasonDone.
func ReasonOf(err error) Reason {
	if err == nil {
		return ReasonDone
	}
	var c Carrier
	if errors.As(err, &c) {
		return c.EndReason()
	}
	for r, s := range reasonErrs {
		if errors.Is(err, s) {
			return r
		}
	}
	return ReasonMisc
}
