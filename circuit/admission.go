package circuit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Admission by token.
//
// A client may put an admission token in the CREATE cell it sends its
// first hop, after the handshake message:
//
//	CREATE = cmd | u16 length | handshake | u16 token length | token | zero padding
//
// A token length of zero (the zero padding of a CREATE without a token)
// means none. The token travels in the cell's padding, so a circuit with
// a token costs no byte and no round trip more than one without, and a
// link observer sees the same fixed-size cell either way. Only the first
// hop reads it: an EXTEND carries only the handshake, and a middle or
// exit relay sees a relay as its previous hop.
//
// The relay asks RelayOptions.AdmitCircuit once the CREATE has arrived
// and the handshake budget allows it, before any handshake work: the
// hook gets the previous hop's peer ID and the token (nil without one),
// and its error, classified by the sentinels below, picks the DESTROY
// reason the client sees.

// MaxTokenSize caps the token a CREATE carries.
const MaxTokenSize = CellSize - 3 - maxHandshake - 2

// Errors an admission hook wraps to say why it refused; the relay answers
// each with its own DESTROY reason. Any other error is
// DestroyNotAdmitted.
var (
	// ErrTokenMissing: the previous hop presented no token and is not
	// admitted without one.
	ErrTokenMissing = errors.New("no admission token")
	// ErrTokenSpent: the token was already redeemed (a double spend).
	ErrTokenSpent = errors.New("admission token already spent")
	// ErrTokenInvalid: the token is malformed, forged, made for another
	// guard, expired, or signed by a key this relay does not hold (e.g.
	// another TIS's).
	ErrTokenInvalid = errors.New("admission token invalid")
)

// admitReason maps an admission hook's error to the DESTROY reason.
func admitReason(err error) DestroyReason {
	switch {
	case errors.Is(err, ErrTokenMissing):
		return DestroyTokenMissing
	case errors.Is(err, ErrTokenSpent):
		return DestroyTokenSpent
	case errors.Is(err, ErrTokenInvalid):
		return DestroyTokenInvalid
	default:
		return DestroyNotAdmitted
	}
}

// putCreate fills cell with a CREATE carrying hs and, when not empty,
// token.
func putCreate(cell []byte, hs, token []byte) error {
	if len(token) > MaxTokenSize {
		return fmt.Errorf("admission token of %d bytes, over %d: %w", len(token), MaxTokenSize, ErrMalformed)
	}
	putHandshake(cell, cmdCreate, hs)
	if len(token) > 0 {
		off := 3 + len(hs)
		binary.BigEndian.PutUint16(cell[off:], uint16(len(token)))
		copy(cell[off+2:], token)
	}
	return nil
}

// getCreate returns a CREATE cell's handshake and token (nil without
// one). Both alias cell.
func getCreate(cell []byte) (hs, token []byte, err error) {
	hs, err = getHandshake(cell)
	if err != nil {
		return nil, nil, err
	}
	off := 3 + len(hs)
	n := int(binary.BigEndian.Uint16(cell[off:]))
	switch {
	case n == 0:
		return hs, nil, nil
	case n > MaxTokenSize || off+2+n > len(cell):
		return nil, nil, fmt.Errorf("admission token length %d: %w", n, ErrMalformed)
	}
	return hs, cell[off+2 : off+2+n], nil
}

// admitCircuit asks RelayOptions.AdmitCircuit about a CREATE from prev
// carrying token, and returns the reason to refuse it, DestroyNone to go
// on.
func (r *Relay) admitCircuit(prev peer.ID, token []byte) DestroyReason {
	ctx, cancel := context.WithTimeout(r.stop, r.opts.HandshakeTimeout)
	defer cancel()
	if err := r.opts.AdmitCircuit(ctx, prev, token); err != nil {
		r.log.WithError(err).Debug("circuit not admitted")
		return admitReason(err)
	}
	return DestroyNone
}
