package trust

import (
	"encoding/binary"
	"time"

	"github.com/pikcio/pikcio/internal/wire"
)

// Encodings are canonical: a version byte, a record kind byte, fields in a
// fixed order, big-endian integers, variable fields prefixed with a uint16
// length and bounded by a cap, no trailing bytes. Signatures are over a
// per-kind context string followed by the encoding without the signature,
// so a decoded record re-encodes to the bytes that were signed.

const (
	recordVersion = 1

	kindVouch       = 1
	kindWithdrawal  = 2
	kindAttestation = 3
	kindRelayScore  = 4
	kindBundle      = 5
	kindSeedList    = 6
)

// validTime reports whether t is whole seconds in the encodable range.
func validTime(t time.Time) bool {
	u := t.Unix()
	return u >= 0 && u < wire.MaxUnix && t.Nanosecond() == 0
}

func appendTime(b []byte, t time.Time) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
}

// readHeader reads and checks the version and kind bytes.
func readHeader(r *wire.Reader, kind byte, what string) {
	if v := r.U8(what + " version"); r.Err() == nil && v != recordVersion {
		r.Fail("%s version %d", what, v)
	}
	if k := r.U8(what + " kind"); r.Err() == nil && k != kind {
		r.Fail("%s: record kind %d", what, k)
	}
}
