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
	protoID        = "pikcio-ntor3-x25519-sha256-uivgcm-aes256-2"
	hsTypeNtor     = 1
	createLen      = 2 + 32 + 32 + 8 // type, B, X, timestamp
	createdLen     = 32 + 32         // Y, AUTH
	keyMaterialLen = 2 * dirKeyLen
	// dirKeyLen is one direction's key material: the tweakable block
	// cipher's key, the keystream and hash key, the chain's tweak key, the
	// authenticator key and the initial chain value.
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
	tbc, enc, tweak, auth [32]byte
	chain                 [16]byte
}

func (d *dirKeys) load(b []byte) {
	copy(d.tbc[:], b[0:32])
	copy(d.enc[:], b[32:64])
	copy(d.tweak[:], b[64:96])
	copy(d.auth[:], b[96:128])
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
// either end: a wide-block layer per direction, each of which also
// authenticates the cells it originates and recognizes those meant for it.
// Each side processes a direction's cells in the same order, so no counters
// travel on the wire.
type layer struct {
	fwd, bwd *wideLayer
}

// wideLayer is one direction of a hop's encryption layer: a tweakable
// wide-block cipher over the whole relay body, in the UIV shape of Counter
// Galois Onion (Tor proposal 359). The body is split into the rest C (the
// first bodyLen-16 bytes) and a 16-byte tag T at its end. Adding the layer
// (wrap) to a body C' | T' is
//
//	C, g = AES-GCM-Seal(K, nonce = T'[:12], C')   (CTR under K, then GHASH of C)
//	h    = g ^ AES(K, T'[:12] | 1) ^ AES(Kj, J)   (J: the chain value)
//	T    = AES(Kt, T' ^ h) ^ h                    (LRW2: a block cipher tweaked by C and J)
//	J    = T'
//
// and removing it (open) is the inverse: h from C and J, T' =
// AES-1(Kt, T ^ h) ^ h, C' = C ^ AES-CTR(K, T'[:12] | 2). h is GHASH_H(C)
// (H = AES(K, 0), as in GCM) plus a PRF of J: a universal hash of the whole
// tweak. Any change to T or C makes T' unpredictable and so garbles all of
// C' as well; and because J follows T', every later cell through the layer
// is garbled too. So a hop that alters a cell leaves the hops after it
// nothing to recognize: no pattern survives to a colluding exit, and the
// hop the cell is for finds it unrecognized and destroys the circuit.
//
// The hop a cell is for recognizes it by its T' alone: the cell's
// originator puts auth(seq) = AES(Ka, seq) there, the next value of a
// sequence only the client and that hop can compute, and a body that was
// changed anywhere opens to a random T' instead (a 2^-128 chance of a
// match). So no separate MAC pass over the body is needed.
//
// Wrapping costs one fused AES-GCM pass; opening a GHASH pass (as GCM
// additional data, which hashes the same blocks with other lengths: fix
// corrects for them) and a CTR pass.
type wideLayer struct {
	tbc  cipher.Block // Kt
	enc  cipher.Block // K: the keystream and GCM's hash key
	gcm  cipher.AEAD  // AES-GCM under K
	tw   cipher.Block // Kj: the chain value's share of the tweak
	auth cipher.Block // Ka: the authenticators

	// fix turns GCM's tag over C as additional data under the zero nonce
	// into GHASH_H(C) as ciphertext (see newWideLayer).
	fix   [aes.BlockSize]byte
	chain [aes.BlockSize]byte
	seq   uint64              // cells originated or recognized so far
	want  [aes.BlockSize]byte // auth(seq)

	// Scratch blocks: the cipher interfaces would make locals escape.
	// The layer's owner serializes its calls.
	tp, h, j [aes.BlockSize]byte
}

// gcmNonceLen is the nonce size of the layers' AES-GCM: the first 12 bytes
// of T', which is random, so q cells of a layer share a keystream with
// probability about q^2/2^97 (2^-33 at 2^32 cells, 16 TiB, far more than
// any circuit carries). The mask block (counter 1) is never a keystream
// block (counters from 2).
const gcmNonceLen = 12

// tagLen is the size of the tag T at the end of every relay body.
const tagLen = aes.BlockSize

var zeroNonce [gcmNonceLen]byte

func newWideLayer(k *dirKeys) (*wideLayer, error) {
	w := &wideLayer{chain: k.chain}
	var err error
	for _, c := range []struct {
		b   *cipher.Block
		key []byte
	}{{&w.tbc, k.tbc[:]}, {&w.enc, k.enc[:]}, {&w.tw, k.tweak[:]}, {&w.auth, k.auth[:]}} {
		if *c.b, err = aes.NewCipher(c.key); err != nil {
			return nil, fmt.Errorf("aes: %w", err)
		}
	}
	if w.gcm, err = cipher.NewGCM(w.enc); err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	// GHASH of the same blocks as additional data (lengths A = n, C = 0)
	// and as ciphertext (A = 0, C = n) differs by a constant, since only
	// the final length block differs and GHASH is linear in it:
	// (L_aad ^ L_ct)·H. It is measured on a zero body: tag t1 with the
	// zeros as additional data, tag t2 over a plaintext chosen so that
	// the ciphertext is the zeros; both carry the zero nonce's mask m.
	n := bodyLen - tagLen
	zeros := make([]byte, n)
	var m, t1 [aes.BlockSize]byte
	w.gcm.Seal(m[:0], zeroNonce[:], nil, nil)
	w.gcm.Seal(t1[:0], zeroNonce[:], nil, zeros)
	ks := w.gcm.Seal(nil, zeroNonce[:], zeros, nil)[:n]
	t2 := w.gcm.Seal(nil, zeroNonce[:], ks, nil)[n:]
	// open's tag is GHASH_aad(C) ^ m, and GHASH_ct(C) = GHASH_aad(C) ^
	// t1 ^ t2, so fix = m ^ t1 ^ t2.
	for i := range w.fix {
		w.fix[i] = m[i] ^ t1[i] ^ t2[i]
	}
	w.setWant()
	return w, nil
}

// setWant computes auth(seq).
func (w *wideLayer) setWant() {
	clear(w.want[:8])
	binary.BigEndian.PutUint64(w.want[8:], w.seq)
	w.auth.Encrypt(w.want[:], w.want[:])
}

func xor16(dst, a, b []byte) {
	subtle.XORBytes(dst[:aes.BlockSize], a[:aes.BlockSize], b[:aes.BlockSize])
}

// open removes the layer from a body (bodyLen bytes) in place.
func (w *wideLayer) open(body []byte) {
	n := len(body) - tagLen
	c, tag := body[:n], body[n:]
	h, j := w.h[:], w.j[:]
	w.gcm.Seal(h[:0], zeroNonce[:], nil, c) // GHASH_aad(C) ^ m
	w.tw.Encrypt(j, w.chain[:])             // AES(Kj, J)
	xor16(h, h, w.fix[:])
	xor16(h, h, j)
	xor16(tag, tag, h)
	w.tbc.Decrypt(tag, tag)
	xor16(tag, tag, h) // T'
	copy(w.chain[:], tag)
	// C' = C ^ AES-CTR(K, T'[:12] | 2) is GCM's encryption under the nonce
	// T'[:12] (its first keystream block is counter 2). Seal does it in
	// one fused pass with no allocation (cipher.NewCTR copied the key
	// schedule into a new stream for every cell); the GCM tag it writes
	// over T' is not needed, and T' is put back.
	w.gcm.Seal(c[:0], w.chain[:gcmNonceLen], c, nil)
	copy(tag, w.chain[:])
}

// wrap adds the layer to a body (bodyLen bytes) in place: the inverse of
// open.
func (w *wideLayer) wrap(body []byte) {
	n := len(body) - tagLen
	tp, h, j := w.tp[:], w.h[:], w.j[:]
	copy(tp, body[n:])
	// Seal writes C over C' and GHASH_ct(C) ^ AES(K, nonce | 1) over T'.
	w.gcm.Seal(body[:0], tp[:gcmNonceLen], body[:n], nil)
	tag := body[n:]
	copy(h, tp[:gcmNonceLen])
	clear(h[gcmNonceLen:])
	h[aes.BlockSize-1] = 1
	w.enc.Encrypt(h, h)
	xor16(h, h, tag)
	w.tw.Encrypt(j, w.chain[:]) // AES(Kj, J)
	xor16(h, h, j)
	xor16(tag, tp, h)
	w.tbc.Encrypt(tag, tag)
	xor16(tag, tag, h)
	w.chain = w.tp
}

// seal originates a body from this layer's hop or client: it puts the
// next authenticator in the tag and wraps the body in this layer.
func (w *wideLayer) seal(body []byte) {
	copy(body[len(body)-tagLen:], w.want[:])
	w.seq++
	w.setWant()
	w.wrap(body)
}

// recognize reports whether an opened body is meant for this layer's end
// and intact: its tag is the next authenticator. It advances the sequence
// when it is.
func (w *wideLayer) recognize(body []byte) bool {
	if subtle.ConstantTimeCompare(body[len(body)-tagLen:], w.want[:]) != 1 {
		return false
	}
	w.seq++
	w.setWant()
	return true
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
	return &layer{fwd: fwd, bwd: bwd}, nil
}
