package service

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/internal/wire"
)

// Descriptor wire format (all integers big-endian); see doc.go.
//
//	record = version u8 (1) | period u64 | period length u32 (minutes) |
//	         revision u64 | blinded key [32] | u16 length | outer layer |
//	         signature [64] under the blinded key over sigContext | all before it
//	outer layer (plaintext) = auth u8 (0 open, 1 contacts) |
//	         [auth 1: ephemeral X25519 [32] | u16 n | n × (client id [8] | sealed cookie [48])] |
//	         u16 length | inner layer
//	inner layer (plaintext) = pow difficulty u8 | pow seed [32] | u8 n |
//	         n × (u8 length | relay peer ID | auth key [32] | enc key [32]) |
//	         zero padding to a multiple of innerPad
const (
	descVersion   = 1
	headerLen     = 1 + 8 + 4 + 8 + 32
	sigContext    = "pikcio-svc-descriptor-v1"
	outerInfo     = "pikcio-svc-desc-outer-v1"
	innerInfo     = "pikcio-svc-desc-inner-v1"
	clientInfo    = "pikcio-svc-client-auth-v1"
	cookieLen     = 32
	clientIDLen   = 8
	clientEntry   = clientIDLen + cookieLen + tagLen
	clientPad     = 16 // client lists are padded with fake entries to a multiple of this
	innerPad      = 512
	authOpen      = 0
	authContacts  = 1
	minRecordSize = headerLen + 2 + saltLen + tagLen + 64
)

// IntroPoint is one introduction point as the descriptor names it.
type IntroPoint struct {
	// Relay is the introduction point's peer ID.
	Relay peer.ID
	// AuthKey is the Ed25519 key the service established the intro point
	// under: INTRODUCE names it so the relay knows which circuit to
	// forward to. One per intro point, unlinkable to the service key.
	AuthKey [32]byte
	// EncKey is the service's X25519 key for INTRODUCE messages that come
	// through this intro point.
	EncKey [32]byte
}

// PoWParams asks clients for a proof of work with each INTRODUCE.
type PoWParams struct {
	// Difficulty is the number of leading zero bits required; 0: none.
	Difficulty uint8
	// Seed makes puzzles of one descriptor useless under the next.
	Seed [32]byte
}

// Descriptor is what a service publishes for one period.
type Descriptor struct {
	Period Period
	// Revision orders the descriptors of one period: the highest wins.
	// Set it with Identity.Revision, so that it grows with time and does
	// not link the service's records of two periods.
	Revision    uint64
	IntroPoints []IntroPoint
	PoW         PoWParams
	// ContactsOnly: only the clients listed when sealing can read the
	// intro points.
	ContactsOnly bool
}

// Record is a descriptor as a DHT server sees it: its signature checked,
// its layers still encrypted.
type Record struct {
	Period   Period
	Revision uint64
	Blinded  BlindedKey
	header   []byte
	outer    []byte
}

// Key is the DHT key the record belongs under.
func (r *Record) Key() string { return DHTKey(r.Blinded, r.Period) }

// ParseRecord decodes a descriptor record and checks its signature under
// the blinded key it carries. It does not check the period against a
// clock (Validator does) nor link the key to any address (no one can,
// without the address).
func ParseRecord(raw []byte) (*Record, error) {
	if len(raw) > MaxDescriptorSize {
		return nil, fmt.Errorf("descriptor of %d bytes, cap %d: %w", len(raw), MaxDescriptorSize, ErrTooLarge)
	}
	if len(raw) < minRecordSize {
		return nil, fmt.Errorf("descriptor of %d bytes: %w", len(raw), ErrMalformed)
	}
	r := newReader(raw)
	if v := r.U8("version"); v != descVersion {
		return nil, fmt.Errorf("descriptor version %d: %w", v, ErrMalformed)
	}
	rec := &Record{}
	rec.Period.Number = r.U64("period")
	mins := r.U32("period length")
	if mins == 0 {
		return nil, fmt.Errorf("descriptor period of zero length: %w", ErrMalformed)
	}
	rec.Period.Length = time.Duration(mins) * time.Minute
	rec.Revision = r.U64("revision")
	rec.Blinded = take32(r, "blinded key")
	if !rec.Blinded.usable() {
		return nil, fmt.Errorf("blinded key is not a point of large order: %w", ErrMalformed)
	}
	rec.header = raw[:headerLen]
	rec.outer = r.Bytes16("outer layer", MaxDescriptorSize)
	sig := r.Take(64, "signature")
	r.End("descriptor")
	if err := r.Err(); err != nil {
		return nil, err
	}
	signed := raw[:len(raw)-64]
	if !rec.Blinded.Verify(append([]byte(sigContext), signed...), sig) {
		return nil, ErrBadSignature
	}
	return rec, nil
}

// SealDescriptor encodes and signs d for the service. With
// d.ContactsOnly, only the holders of the private halves of contacts can
// read the intro points; the list is padded with fake entries.
func (id *Identity) SealDescriptor(rand io.Reader, d *Descriptor, contacts []*ecdh.PublicKey) ([]byte, error) {
	if len(d.IntroPoints) > MaxIntroPoints {
		return nil, fmt.Errorf("%d intro points, cap %d: %w", len(d.IntroPoints), MaxIntroPoints, ErrTooLarge)
	}
	if d.PoW.Difficulty > MaxPoWDifficulty {
		return nil, fmt.Errorf("pow difficulty %d, cap %d: %w", d.PoW.Difficulty, MaxPoWDifficulty, ErrTooLarge)
	}
	if len(contacts) > MaxClients {
		return nil, fmt.Errorf("%d contacts, cap %d: %w", len(contacts), MaxClients, ErrTooLarge)
	}
	if d.Period.Length < time.Minute || d.Period.Length%time.Minute != 0 {
		return nil, fmt.Errorf("period length %s is not whole minutes", d.Period.Length)
	}
	signer := id.blind(d.Period)
	sub := subcredential(id.addr, signer.pub)

	header := make([]byte, 0, headerLen)
	header = append(header, descVersion)
	header = binary.BigEndian.AppendUint64(header, d.Period.Number)
	header = binary.BigEndian.AppendUint32(header, uint32(d.Period.minutes()))
	header = binary.BigEndian.AppendUint64(header, d.Revision)
	header = append(header, signer.pub[:]...)

	inner, err := encodeInner(d)
	if err != nil {
		return nil, err
	}
	innerSecret := signer.pub[:]
	outer := []byte{authOpen}
	if d.ContactsOnly {
		var cookie [cookieLen]byte
		if _, err := io.ReadFull(rand, cookie[:]); err != nil {
			return nil, fmt.Errorf("descriptor cookie: %w", err)
		}
		outer[0] = authContacts
		outer, err = appendClients(rand, outer, sub, cookie[:], contacts)
		if err != nil {
			return nil, err
		}
		innerSecret = append(append([]byte(nil), signer.pub[:]...), cookie[:]...)
		clear(cookie[:])
	}
	sealedInner, err := sealLayer(rand, layerSecret(innerSecret, sub, d.Revision), innerInfo, inner, header)
	if err != nil {
		return nil, err
	}
	outer = wire.AppendBytes16(outer, sealedInner)
	sealedOuter, err := sealLayer(rand, layerSecret(signer.pub[:], sub, d.Revision), outerInfo, outer, header)
	if err != nil {
		return nil, err
	}
	if len(sealedOuter) > 0xffff {
		return nil, fmt.Errorf("outer layer of %d bytes: %w", len(sealedOuter), ErrTooLarge)
	}
	rec := wire.AppendBytes16(header, sealedOuter)
	rec = append(rec, signer.sign(append([]byte(sigContext), rec...))...)
	if len(rec) > MaxDescriptorSize {
		return nil, fmt.Errorf("descriptor of %d bytes, cap %d: %w", len(rec), MaxDescriptorSize, ErrTooLarge)
	}
	return rec, nil
}

func encodeInner(d *Descriptor) ([]byte, error) {
	b := []byte{d.PoW.Difficulty}
	b = append(b, d.PoW.Seed[:]...)
	b = append(b, byte(len(d.IntroPoints)))
	for i, ip := range d.IntroPoints {
		if len(ip.Relay) == 0 || len(ip.Relay) > maxPeerIDLen {
			return nil, fmt.Errorf("intro point %d: relay peer ID of %d bytes: %w", i, len(ip.Relay), ErrMalformed)
		}
		b = append(b, byte(len(ip.Relay)))
		b = append(b, ip.Relay...)
		b = append(b, ip.AuthKey[:]...)
		b = append(b, ip.EncKey[:]...)
	}
	if pad := len(b) % innerPad; pad != 0 {
		b = append(b, make([]byte, innerPad-pad)...)
	}
	return b, nil
}

func decodeInner(plain []byte, d *Descriptor) error {
	r := newReader(plain)
	d.PoW.Difficulty = r.U8("pow difficulty")
	d.PoW.Seed = take32(r, "pow seed")
	n := int(r.U8("intro point count"))
	if err := r.Err(); err != nil {
		return err
	}
	if d.PoW.Difficulty > MaxPoWDifficulty {
		return fmt.Errorf("pow difficulty %d, cap %d: %w", d.PoW.Difficulty, MaxPoWDifficulty, ErrMalformed)
	}
	if n > MaxIntroPoints {
		return fmt.Errorf("%d intro points, cap %d: %w", n, MaxIntroPoints, ErrMalformed)
	}
	used := 1 + 32 + 1
	d.IntroPoints = make([]IntroPoint, 0, n)
	for i := range n {
		raw := r.Take(int(r.U8("relay peer ID length")), "relay peer ID")
		ip := IntroPoint{AuthKey: take32(r, "intro auth key"), EncKey: take32(r, "intro enc key")}
		if err := r.Err(); err != nil {
			return err
		}
		id, err := peer.IDFromBytes(raw)
		if err != nil {
			return fmt.Errorf("intro point %d: relay peer ID: %w", i, ErrMalformed)
		}
		ip.Relay = id
		d.IntroPoints = append(d.IntroPoints, ip)
		used += 1 + len(raw) + 64
	}
	return zeroPadding(plain[used:], "inner layer")
}

// clientKeys derives a contact's entry ID and cookie key from the X25519
// secret it shares with the descriptor's ephemeral key.
func clientKeys(shared []byte, sub [32]byte) (id [clientIDLen]byte, key []byte, err error) {
	km, err := hkdf.Key(sha256.New, shared, sub[:], clientInfo, clientIDLen+32)
	if err != nil {
		return id, nil, fmt.Errorf("derive client keys: %w", err)
	}
	copy(id[:], km)
	return id, km[clientIDLen:], nil
}

func appendClients(rand io.Reader, out []byte, sub [32]byte, cookie []byte, contacts []*ecdh.PublicKey) ([]byte, error) {
	eph, err := ecdh.X25519().GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("descriptor ephemeral key: %w", err)
	}
	n := (len(contacts) + clientPad - 1) / clientPad * clientPad
	if n == 0 {
		n = clientPad
	}
	out = append(out, eph.PublicKey().Bytes()...)
	out = binary.BigEndian.AppendUint16(out, uint16(n))
	entries := make([][]byte, 0, n)
	for i, c := range contacts {
		shared, err := eph.ECDH(c)
		if err != nil {
			return nil, fmt.Errorf("contact %d key: %w", i, err)
		}
		cid, key, err := clientKeys(shared, sub)
		clear(shared)
		if err != nil {
			return nil, err
		}
		g, nonce, err := aeadFor(key, nil, clientInfo)
		clear(key)
		if err != nil {
			return nil, err
		}
		entries = append(entries, g.Seal(append([]byte(nil), cid[:]...), nonce, cookie, nil))
	}
	for len(entries) < n {
		fake := make([]byte, clientEntry)
		if _, err := io.ReadFull(rand, fake); err != nil {
			return nil, fmt.Errorf("fake client entry: %w", err)
		}
		entries = append(entries, fake)
	}
	// Real entries would otherwise always come first.
	for i := len(entries) - 1; i > 0; i-- {
		var jb [8]byte
		if _, err := io.ReadFull(rand, jb[:]); err != nil {
			return nil, fmt.Errorf("shuffle: %w", err)
		}
		j := int(binary.BigEndian.Uint64(jb[:]) % uint64(i+1))
		entries[i], entries[j] = entries[j], entries[i]
	}
	for _, e := range entries {
		out = append(out, e...)
	}
	return out, nil
}

// findCookie returns the descriptor cookie from the client list, if the
// client holding key is on it.
func findCookie(r *wire.Reader, sub [32]byte, key *ecdh.PrivateKey) ([]byte, error) {
	ephRaw := r.Take(32, "descriptor ephemeral key")
	n := int(r.U16("client count"))
	if r.Err() == nil && n > MaxClients+clientPad {
		return nil, fmt.Errorf("%d client entries: %w", n, ErrMalformed)
	}
	list := r.Take(n*clientEntry, "client entries")
	if err := r.Err(); err != nil {
		return nil, err
	}
	if key == nil {
		return nil, ErrNotAuthorized
	}
	eph, err := ecdh.X25519().NewPublicKey(ephRaw)
	if err != nil {
		return nil, fmt.Errorf("descriptor ephemeral key: %w", ErrMalformed)
	}
	shared, err := key.ECDH(eph)
	if err != nil {
		return nil, fmt.Errorf("descriptor ephemeral key: %w", ErrMalformed)
	}
	cid, ck, err := clientKeys(shared, sub)
	clear(shared)
	if err != nil {
		return nil, err
	}
	defer clear(ck)
	g, nonce, err := aeadFor(ck, nil, clientInfo)
	if err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		e := list[i*clientEntry : (i+1)*clientEntry]
		if subtle.ConstantTimeCompare(e[:clientIDLen], cid[:]) != 1 {
			continue
		}
		cookie, err := g.Open(nil, nonce, e[clientIDLen:], nil)
		if err == nil && len(cookie) == cookieLen {
			return cookie, nil
		}
	}
	return nil, ErrNotAuthorized
}

// decodeOuter parses the outer layer's plaintext: it sets d.ContactsOnly
// and returns the descriptor cookie (nil for an open descriptor) and the
// sealed inner layer.
func decodeOuter(outer []byte, sub [32]byte, clientKey *ecdh.PrivateKey, d *Descriptor) (cookie, sealedInner []byte, err error) {
	r := newReader(outer)
	switch auth := r.U8("auth type"); {
	case r.Err() != nil:
		return nil, nil, r.Err()
	case auth == authOpen:
	case auth == authContacts:
		d.ContactsOnly = true
		if cookie, err = findCookie(r, sub, clientKey); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, fmt.Errorf("auth type %d: %w", auth, ErrMalformed)
	}
	sealedInner = r.Bytes16("inner layer", len(outer))
	r.End("outer layer")
	if err := r.Err(); err != nil {
		clear(cookie)
		return nil, nil, err
	}
	return cookie, sealedInner, nil
}

// OpenDescriptor checks raw as addr's descriptor for period p and
// decrypts it. For a contacts-only descriptor, clientKey is the client's
// X25519 key (nil: the result is ErrNotAuthorized).
func OpenDescriptor(raw []byte, addr Address, p Period, clientKey *ecdh.PrivateKey) (*Descriptor, error) {
	if _, err := addr.point(); err != nil {
		return nil, err
	}
	rec, err := ParseRecord(raw)
	if err != nil {
		return nil, err
	}
	blinded := addr.Blind(p)
	if rec.Period != p || rec.Blinded != blinded {
		return nil, fmt.Errorf("descriptor for %s, not %s of this address: %w", rec.Period, p, ErrKeyMismatch)
	}
	sub := subcredential(addr, blinded)
	outer, err := openLayer(layerSecret(blinded[:], sub, rec.Revision), outerInfo, rec.outer, rec.header)
	if err != nil {
		return nil, err
	}
	d := &Descriptor{Period: rec.Period, Revision: rec.Revision}
	cookie, sealedInner, err := decodeOuter(outer, sub, clientKey, d)
	if err != nil {
		return nil, err
	}
	innerSecret := append(append([]byte(nil), blinded[:]...), cookie...)
	clear(cookie)
	inner, err := openLayer(layerSecret(innerSecret, sub, rec.Revision), innerInfo, sealedInner, rec.header)
	if err != nil {
		return nil, err
	}
	if err := decodeInner(inner, d); err != nil {
		return nil, err
	}
	return d, nil
}
