package circuit

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The handshake is modelled on Tor's ntor-v3 (proposal 332) without its
// encrypted extension messages; see doc.go.
const (
	protoID        = "pikcio-ntor3-x25519-sha256-uivlrw-aes256-1"
	hsTypeNtor     = 1
	createLen      = 2 + 32 + 32 + 8 // type, B, X, timestamp
	createdLen     = 32 + 32         // Y, AUTH
	keyMaterialLen = 2 * dirKeyLen
	// dirKeyLen is one direction's key material: the tweakable block
	// cipher's key, the keystream key, the tweak hash key, the MAC key and
	// the initial chain value.
	dirKeyLen = 4*32 + 16
)

var (
	tKeyExtract = []byte(protoID + ":key_extract")
	tVerify     = []byte(protoID + ":verify")
	tAuth       = []byte(protoID + ":auth")
	tExpand     = protoID + ":key_expand"
)

// Handshake errors.
var (
	ErrUnknownOnionKey = errors.New("handshake names an onion key this relay does not hold")
	ErrReplay          = errors.New("handshake replayed or out of its time window")
	ErrAuth            = errors.New("handshake authentication failed")
)

// hopKeys is the key material one handshake yields: forward (client to
// relay) and backward.
type hopKeys struct {
	f, b dirKeys
}

// dirKeys are one direction's keys of a hop.
type dirKeys struct {
	tbc, ctr, hash, mac [32]byte
	chain               [16]byte
}

func (d *dirKeys) load(b []byte) {
	copy(d.tbc[:], b[0:32])
	copy(d.ctr[:], b[32:64])
	copy(d.hash[:], b[64:96])
	copy(d.mac[:], b[96:128])
	copy(d.chain[:], b[128:144])
}

func deriveKeys(seed []byte) (hopKeys, error) {
	var k hopKeys
	out, err := hkdf.Expand(sha256.New, seed, tExpand, keyMaterialLen)
	if err != nil {
		return k, fmt.Errorf("derive keys: %w", err)
	}
	k.f.load(out[:dirKeyLen])
	k.b.load(out[dirKeyLen:])
	clear(out)
	return k, nil
}

func hmacSHA256(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// ntorSecrets computes KEY_SEED and AUTH from the two shared secrets.
func ntorSecrets(xy, xb []byte, id peer.ID, b, x, y []byte, ts []byte) (seed, auth []byte) {
	secret := make([]byte, 0, 256)
	secret = append(secret, xy...)
	secret = append(secret, xb...)
	secret = append(secret, id...)
	secret = append(secret, b...)
	secret = append(secret, x...)
	secret = append(secret, y...)
	secret = append(secret, ts...)
	secret = append(secret, protoID...)
	seed = hmacSHA256(tKeyExtract, secret)
	verify := hmacSHA256(tVerify, secret)
	clear(secret)
	auth = hmacSHA256(tAuth, verify, []byte(id), b, y, x, ts, []byte(protoID), []byte("server"))
	return seed, auth
}

type ecdhKey = ecdh.PrivateKey

// clockGranularity is how coarse the clock in a CREATE is: every client
// whose clock is in the same window sends the same time, so a relay cannot
// link circuits by a client's clock skew (to the second, it could).
const clockGranularity = 5 * time.Minute

// coarseTime is now in seconds, rounded down to clockGranularity.
func coarseTime(now time.Time) int64 {
	g := int64(clockGranularity / time.Second)
	return now.Unix() / g * g
}

// clientHandshake is the client's state between CREATE and CREATED.
type clientHandshake struct {
	id  peer.ID
	b   *ecdh.PublicKey
	x   *ecdh.PrivateKey
	msg []byte
}

func newClientHandshake(id peer.ID, onionKey [32]byte, now time.Time) (*clientHandshake, error) {
	b, err := ecdh.X25519().NewPublicKey(onionKey[:])
	if err != nil {
		return nil, fmt.Errorf("onion key: %w", err)
	}
	x, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ephemeral key: %w", err)
	}
	msg := make([]byte, createLen)
	binary.BigEndian.PutUint16(msg, hsTypeNtor)
	copy(msg[2:], onionKey[:])
	copy(msg[34:], x.PublicKey().Bytes())
	binary.BigEndian.PutUint64(msg[66:], uint64(coarseTime(now)))
	return &clientHandshake{id: id, b: b, x: x, msg: msg}, nil
}

// finish checks the relay's reply and derives the hop's keys.
func (h *clientHandshake) finish(reply []byte) (hopKeys, error) {
	if len(reply) != createdLen {
		return hopKeys{}, fmt.Errorf("created of %d bytes: %w", len(reply), ErrMalformed)
	}
	y, err := ecdh.X25519().NewPublicKey(reply[:32])
	if err != nil {
		return hopKeys{}, fmt.Errorf("relay ephemeral key: %w", ErrAuth)
	}
	xy, err := h.x.ECDH(y)
	if err != nil {
		return hopKeys{}, fmt.Errorf("x25519 with Y: %w", ErrAuth)
	}
	xb, err := h.x.ECDH(h.b)
	if err != nil {
		return hopKeys{}, fmt.Errorf("x25519 with B: %w", ErrAuth)
	}
	seed, auth := ntorSecrets(xy, xb, h.id, h.b.Bytes(), h.x.PublicKey().Bytes(), reply[:32], h.msg[66:74])
	clear(xy)
	clear(xb)
	if subtle.ConstantTimeCompare(auth, reply[32:]) != 1 {
		return hopKeys{}, ErrAuth
	}
	return deriveKeys(seed)
}

// serverHandshake answers a CREATE. keys maps onion public keys to the
// private keys the relay currently accepts.
func serverHandshake(id peer.ID, msg []byte, lookup func([]byte) *ecdhKey, replay *replayCache, now time.Time) (reply []byte, k hopKeys, err error) {
	if len(msg) != createLen || binary.BigEndian.Uint16(msg) != hsTypeNtor {
		return nil, k, fmt.Errorf("create of %d bytes: %w", len(msg), ErrMalformed)
	}
	bPub, xPub, ts := msg[2:34], msg[34:66], msg[66:74]
	b := lookup(bPub)
	if b == nil {
		return nil, k, ErrUnknownOnionKey
	}
	x, err := ecdh.X25519().NewPublicKey(xPub)
	if err != nil {
		return nil, k, fmt.Errorf("client ephemeral key: %w", ErrMalformed)
	}
	if !replay.check(xPub, time.Unix(int64(binary.BigEndian.Uint64(ts)), 0), now) {
		return nil, k, ErrReplay
	}
	xb, err := b.ECDH(x)
	if err != nil {
		return nil, k, fmt.Errorf("x25519 with B: %w", ErrMalformed)
	}
	y, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, k, fmt.Errorf("ephemeral key: %w", err)
	}
	xy, err := y.ECDH(x)
	if err != nil {
		return nil, k, fmt.Errorf("x25519 with X: %w", ErrMalformed)
	}
	yPub := y.PublicKey().Bytes()
	seed, auth := ntorSecrets(xy, xb, id, bPub, xPub, yPub, ts)
	clear(xy)
	clear(xb)
	k, err = deriveKeys(seed)
	if err != nil {
		return nil, k, err
	}
	return append(yPub, auth...), k, nil
}

// layer is one hop's share of the relay crypto, from the point of view of
// either end: a wide-block layer and a MAC per direction. Each side
// processes a direction's cells in the same order, so no counters travel on
// the wire. The MAC is GMAC (AES-GCM over no plaintext) with the cell's
// sequence number as nonce, so a nonce never repeats under a key.
type layer struct {
	fwd, bwd       *wideLayer
	fwdMAC, bwdMAC *macState
}

// wideLayer is one direction of a hop's encryption layer: a tweakable
// wide-block cipher over the whole relay body, in the UIV shape of Counter
// Galois Onion (Tor proposal 359). The body is split into a 16-byte tag T
// and the rest C. Removing the layer (open) is
//
//	h  = GHASH'(J | C)                 (J: the chain value)
//	T' = AES-1(T ^ h) ^ h              (LRW2: a block cipher tweaked by C)
//	C' = C ^ AES-CTR(IV = T')
//	J  = T'
//
// and adding it (wrap) is the inverse. GHASH' is AES-GCM's tag over J | C
// as additional data under a fixed nonce: GHASH masked by a constant, which
// is as good a universal hash for the tweak. Any change to T or C makes T'
// unpredictable and so garbles all of C' as well; and because J follows T',
// every later cell through the layer is garbled too. So a hop that alters a
// cell leaves the hops after it nothing to recognize: no pattern survives to
// a colluding exit, and the hop the cell is for finds it unrecognized and
// destroys the circuit.
type wideLayer struct {
	tbc   cipher.Block
	ctr   cipher.Block
	hash  cipher.AEAD
	chain [aes.BlockSize]byte
	h     [aes.BlockSize]byte
	t     [aes.BlockSize]byte
}

func newWideLayer(k *dirKeys) (*wideLayer, error) {
	tbc, err := aes.NewCipher(k.tbc[:])
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	ctr, err := aes.NewCipher(k.ctr[:])
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	hb, err := aes.NewCipher(k.hash[:])
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	hash, err := cipher.NewGCM(hb)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return &wideLayer{tbc: tbc, ctr: ctr, hash: hash, chain: k.chain}, nil
}

var zeroNonce [12]byte

// tweak puts GHASH'(J | body[16:]) in w.h. body's tag is saved in w.t and
// restored.
func (w *wideLayer) tweak(body []byte) {
	copy(w.t[:], body[:aes.BlockSize])
	copy(body[:aes.BlockSize], w.chain[:])
	w.hash.Seal(w.h[:0], zeroNonce[:], nil, body)
	copy(body[:aes.BlockSize], w.t[:])
}

func xor16(dst, a, b []byte) {
	subtle.XORBytes(dst[:aes.BlockSize], a[:aes.BlockSize], b[:aes.BlockSize])
}

// open removes the layer from a body in place.
func (w *wideLayer) open(body []byte) {
	tag := body[:aes.BlockSize]
	w.tweak(body)
	xor16(tag, tag, w.h[:])
	w.tbc.Decrypt(tag, tag)
	xor16(tag, tag, w.h[:])
	cipher.NewCTR(w.ctr, tag).XORKeyStream(body[aes.BlockSize:], body[aes.BlockSize:])
	copy(w.chain[:], tag)
}

// wrap adds the layer to a body in place: the inverse of open.
func (w *wideLayer) wrap(body []byte) {
	tag := body[:aes.BlockSize]
	var tp [aes.BlockSize]byte // T'
	copy(tp[:], tag)
	cipher.NewCTR(w.ctr, tp[:]).XORKeyStream(body[aes.BlockSize:], body[aes.BlockSize:])
	w.tweak(body)
	xor16(tag, tp[:], w.h[:])
	w.tbc.Encrypt(tag, tag)
	xor16(tag, tag, w.h[:])
	w.chain = tp
}

func newLayer(k hopKeys) (*layer, error) {
	fwd, err := newWideLayer(&k.f)
	if err != nil {
		return nil, err
	}
	bwd, err := newWideLayer(&k.b)
	if err != nil {
		return nil, err
	}
	gmac := func(key []byte) (*macState, error) {
		blk, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("aes: %w", err)
		}
		a, err := cipher.NewGCM(blk)
		if err != nil {
			return nil, fmt.Errorf("gcm: %w", err)
		}
		return &macState{aead: a}, nil
	}
	fm, err := gmac(k.f.mac[:])
	if err != nil {
		return nil, err
	}
	bm, err := gmac(k.b.mac[:])
	if err != nil {
		return nil, err
	}
	return &layer{fwd: fwd, bwd: bwd, fwdMAC: fm, bwdMAC: bm}, nil
}

// macState is one direction's MAC key, sequence number and scratch space.
// Its owner serializes the calls.
type macState struct {
	aead  cipher.AEAD
	seq   uint64
	nonce [12]byte
	sum   [macLen]byte
	got   [macLen]byte
}

// compute puts GMAC(nonce = seq, body with the MAC field zeroed) in m.sum.
// It leaves the MAC field zeroed.
func (m *macState) compute(body []byte) {
	binary.BigEndian.PutUint64(m.nonce[4:], m.seq)
	clear(body[offMAC : offMAC+macLen])
	m.aead.Seal(m.sum[:0], m.nonce[:], nil, body)
}

// seal fills in the MAC of a plaintext body and advances the sequence.
func (m *macState) seal(body []byte) {
	m.compute(body)
	copy(body[offMAC:offMAC+macLen], m.sum[:])
	m.seq++
}

// recognize reports whether a decrypted body is meant for this layer and is
// intact; it advances the sequence number when it is. A body that is not
// recognized is left as it was.
func (m *macState) recognize(body []byte) bool {
	if body[offRecog] != 0 || body[offRecog+1] != 0 {
		return false
	}
	copy(m.got[:], body[offMAC:offMAC+macLen])
	m.compute(body)
	copy(body[offMAC:offMAC+macLen], m.got[:])
	if subtle.ConstantTimeCompare(m.sum[:], m.got[:]) != 1 {
		return false
	}
	m.seq++
	return true
}
