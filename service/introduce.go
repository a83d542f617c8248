package service

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// The INTRODUCE / RENDEZVOUS handshake is rend-spec-v3's hs-ntor with
// the house primitives (X25519, HMAC-SHA256, HKDF-SHA256, AES-256-GCM):
//
//	client: x, X fresh; intro_secret = B^x | AUTH_KEY | X | B | PROTOID
//	        (ENC_KEY, NONCE) = HKDF-SHA256(intro_secret, salt = subcredential, PROTOID:hs_enc)
//	        INTRODUCE1 = version | AUTH_KEY | X | pow nonce | u16 length |
//	                     AES-GCM(ENC_KEY, NONCE, plaintext, aad = everything before the length)
//	        plaintext  = time u64 | cookie [20] | u8 length | rendezvous relay peer ID |
//	                     rendezvous onion key [32] | zero padding to introPlainLen
//	service: y, Y fresh; rend_secret = X^y | X^b | AUTH_KEY | B | X | Y | subcredential | PROTOID
//	        KEY_SEED = HMAC(PROTOID:key_extract, rend_secret)
//	        verify   = HMAC(PROTOID:verify, rend_secret)
//	        AUTH     = HMAC(PROTOID:auth, verify | AUTH_KEY | B | Y | X | PROTOID | "server")
//	        RENDEZVOUS1 = cookie | Y | AUTH; the rendezvous relay forwards RENDEZVOUS2 = Y | AUTH
//	both:   Kf | Kb | Df | Db = HKDF-Expand-SHA256(KEY_SEED, PROTOID:key_expand, 128)
//
// B is the intro point's enc key, b its private half, held only by the
// service. X^y makes the stream keys forward secret: a later theft of b
// does not open recorded streams.
const (
	hsProtoID    = "pikcio-hs-ntor-x25519-sha256-aes256gcm-1"
	introVersion = 1
	// CookieLen is the size of a rendezvous cookie.
	CookieLen = 20
	// PoWNonceLen is the size of a proof-of-work nonce.
	PoWNonceLen    = 8
	introHeaderLen = 1 + 32 + 32 + PoWNonceLen
	introPlainLen  = 8 + CookieLen + 1 + maxPeerIDLen + 32
	// IntroduceLen is the fixed size of an INTRODUCE1/2 message.
	IntroduceLen = introHeaderLen + 2 + introPlainLen + tagLen
	// Rendezvous1Len and Rendezvous2Len are the fixed sizes of the
	// service's reply before and after the rendezvous relay strips the cookie.
	Rendezvous1Len = CookieLen + 32 + 32
	Rendezvous2Len = 32 + 32
	keyMaterialLen = 4 * 32
)

var (
	tHsEnc      = hsProtoID + ":hs_enc"
	tKeyExtract = []byte(hsProtoID + ":key_extract")
	tVerify     = []byte(hsProtoID + ":verify")
	tAuth       = []byte(hsProtoID + ":auth")
	tExpand     = hsProtoID + ":key_expand"
)

// Keys is the end-to-end key material of one rendezvous: forward and
// backward AES keys and MAC keys, forward being client to service. It has
// the shape of one circuit hop's keys, for the virtual hop the joined
// circuit adds at each end (see doc.go).
type Keys struct {
	Kf, Kb, Df, Db [32]byte
}

// Seed is the key material as one string, from which package circuit
// makes the virtual hop's layer. The caller should clear it after use.
func (k Keys) Seed() []byte {
	return append(append(append(append(make([]byte, 0, keyMaterialLen), k.Kf[:]...), k.Kb[:]...), k.Df[:]...), k.Db[:]...)
}

func deriveKeys(seed []byte) (Keys, error) {
	var k Keys
	out, err := hkdf.Expand(sha256.New, seed, tExpand, keyMaterialLen)
	if err != nil {
		return k, fmt.Errorf("derive stream keys: %w", err)
	}
	copy(k.Kf[:], out[0:32])
	copy(k.Kb[:], out[32:64])
	copy(k.Df[:], out[64:96])
	copy(k.Db[:], out[96:128])
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

func introAEADSecret(bx, authKey, x, b []byte) []byte {
	s := make([]byte, 0, 4*32+len(hsProtoID))
	s = append(s, bx...)
	s = append(s, authKey...)
	s = append(s, x...)
	s = append(s, b...)
	return append(s, hsProtoID...)
}

func rendSecrets(xy, xb, authKey, b, x, y []byte, sub [32]byte) (seed, auth []byte) {
	s := make([]byte, 0, 7*32+len(hsProtoID))
	for _, p := range [][]byte{xy, xb, authKey, b, x, y, sub[:]} {
		s = append(s, p...)
	}
	s = append(s, hsProtoID...)
	seed = hmacSHA256(tKeyExtract, s)
	verify := hmacSHA256(tVerify, s)
	clear(s)
	auth = hmacSHA256(tAuth, verify, authKey, b, y, x, []byte(hsProtoID), []byte("server"))
	return seed, auth
}

// RendezvousPoint is the relay a client asks the service to meet it at.
type RendezvousPoint struct {
	Relay peer.ID
	// OnionKey is the relay's X25519 onion key, so the service can extend
	// a circuit to it without a directory lookup.
	OnionKey [32]byte
}

// Introduction is an INTRODUCE as the service reads it.
type Introduction struct {
	// AuthKey names the intro point it came through.
	AuthKey    [32]byte
	Rendezvous RendezvousPoint
	Cookie     [CookieLen]byte
	Time       time.Time
}

// Introduce1Header is the part of an INTRODUCE1 the introduction point
// reads: which intro circuit to forward it on. The rest is opaque to it.
type Introduce1Header struct {
	AuthKey [32]byte
	// X is the client's fresh ephemeral key: new for every INTRODUCE.
	X        [32]byte
	PoWNonce [PoWNonceLen]byte
}

// ParseIntroduce1 checks an INTRODUCE1's framing and returns its clear
// header: what an intro point needs, and all it can learn.
func ParseIntroduce1(msg []byte) (Introduce1Header, error) {
	var h Introduce1Header
	if len(msg) != IntroduceLen {
		return h, fmt.Errorf("introduce of %d bytes, want %d: %w", len(msg), IntroduceLen, ErrMalformed)
	}
	r := newReader(msg)
	if v := r.U8("introduce version"); v != introVersion {
		return h, fmt.Errorf("introduce version %d: %w", v, ErrMalformed)
	}
	h.AuthKey = take32(r, "auth key")
	h.X = take32(r, "client key")
	copy(h.PoWNonce[:], r.Take(PoWNonceLen, "pow nonce"))
	if n := r.U16("sealed length"); int(n) != introPlainLen+tagLen {
		return h, fmt.Errorf("introduce sealed part of %d bytes: %w", n, ErrMalformed)
	}
	r.Take(introPlainLen+tagLen, "sealed part")
	r.End("introduce")
	return h, r.Err()
}

// ClientIntroduction is the client's state between INTRODUCE1 and
// RENDEZVOUS2.
type ClientIntroduction struct {
	// Message is the INTRODUCE1 to send through the intro point.
	Message []byte
	// Cookie is the rendezvous cookie to establish at the rendezvous
	// relay (ESTABLISH_RENDEZVOUS) before sending Message.
	Cookie  [CookieLen]byte
	x       *ecdh.PrivateKey
	authKey [32]byte
	b       [32]byte
	sub     [32]byte
}

// Introduce builds an INTRODUCE1 for the service at addr through intro
// point ip of its descriptor d, asking it to meet at rp. It solves the
// descriptor's proof of work first, which ctx bounds.
func Introduce(ctx context.Context, rand io.Reader, addr Address, d *Descriptor, ip IntroPoint, rp RendezvousPoint, now time.Time) (*ClientIntroduction, error) {
	if _, err := addr.point(); err != nil {
		return nil, err
	}
	if len(rp.Relay) == 0 || len(rp.Relay) > maxPeerIDLen {
		return nil, fmt.Errorf("rendezvous peer ID of %d bytes: %w", len(rp.Relay), ErrMalformed)
	}
	B, err := ecdh.X25519().NewPublicKey(ip.EncKey[:])
	if err != nil {
		return nil, fmt.Errorf("intro enc key: %w", err)
	}
	x, err := ecdh.X25519().GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("ephemeral key: %w", err)
	}
	c := &ClientIntroduction{x: x, authKey: ip.AuthKey, b: ip.EncKey, sub: subcredential(addr, addr.Blind(d.Period))}
	if _, err := io.ReadFull(rand, c.Cookie[:]); err != nil {
		return nil, fmt.Errorf("rendezvous cookie: %w", err)
	}
	var X [32]byte
	copy(X[:], x.PublicKey().Bytes())
	nonce, err := SolvePoW(ctx, d.PoW, ip.AuthKey, X)
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 0, IntroduceLen)
	msg = append(msg, introVersion)
	msg = append(msg, ip.AuthKey[:]...)
	msg = append(msg, X[:]...)
	msg = append(msg, nonce[:]...)
	aad := msg[:introHeaderLen:introHeaderLen]
	msg = binary.BigEndian.AppendUint16(msg, introPlainLen+tagLen)

	plain := make([]byte, 0, introPlainLen)
	plain = binary.BigEndian.AppendUint64(plain, uint64(now.Unix()))
	plain = append(plain, c.Cookie[:]...)
	plain = append(plain, byte(len(rp.Relay)))
	plain = append(plain, rp.Relay...)
	plain = append(plain, rp.OnionKey[:]...)
	plain = plain[:introPlainLen]

	bx, err := x.ECDH(B)
	if err != nil {
		return nil, fmt.Errorf("x25519 with intro enc key: %w", err)
	}
	secret := introAEADSecret(bx, ip.AuthKey[:], X[:], ip.EncKey[:])
	clear(bx)
	g, n, err := aeadFor(secret, c.sub[:], tHsEnc)
	clear(secret)
	if err != nil {
		return nil, err
	}
	c.Message = g.Seal(msg, n, plain, aad)
	return c, nil
}

// Finish checks the service's RENDEZVOUS2 and derives the stream keys.
func (c *ClientIntroduction) Finish(rendezvous2 []byte) (Keys, error) {
	if len(rendezvous2) != Rendezvous2Len {
		return Keys{}, fmt.Errorf("rendezvous2 of %d bytes: %w", len(rendezvous2), ErrMalformed)
	}
	Y, err := ecdh.X25519().NewPublicKey(rendezvous2[:32])
	if err != nil {
		return Keys{}, fmt.Errorf("service ephemeral key: %w", ErrAuth)
	}
	B, err := ecdh.X25519().NewPublicKey(c.b[:])
	if err != nil {
		return Keys{}, fmt.Errorf("intro enc key: %w", ErrAuth)
	}
	xy, err := c.x.ECDH(Y)
	if err != nil {
		return Keys{}, fmt.Errorf("x25519 with Y: %w", ErrAuth)
	}
	xb, err := c.x.ECDH(B)
	if err != nil {
		return Keys{}, fmt.Errorf("x25519 with B: %w", ErrAuth)
	}
	seed, auth := rendSecrets(xy, xb, c.authKey[:], c.b[:], c.x.PublicKey().Bytes(), rendezvous2[:32], c.sub)
	clear(xy)
	clear(xb)
	if subtle.ConstantTimeCompare(auth, rendezvous2[32:]) != 1 {
		return Keys{}, ErrAuth
	}
	return deriveKeys(seed)
}

// ParseRendezvous1 splits a RENDEZVOUS1 into the cookie the rendezvous
// relay matches circuits by and the RENDEZVOUS2 it forwards to the client.
func ParseRendezvous1(msg []byte) (cookie [CookieLen]byte, rendezvous2 []byte, err error) {
	if len(msg) != Rendezvous1Len {
		return cookie, nil, fmt.Errorf("rendezvous1 of %d bytes, want %d: %w", len(msg), Rendezvous1Len, ErrMalformed)
	}
	copy(cookie[:], msg[:CookieLen])
	return cookie, msg[CookieLen:], nil
}

// IntroKeys are the service's private keys for one introduction point.
type IntroKeys struct {
	Relay peer.ID
	auth  ed25519.PrivateKey
	enc   *ecdh.PrivateKey
}

// NewIntroKeys makes fresh keys for an intro point at relay.
func NewIntroKeys(rand io.Reader, relay peer.ID) (*IntroKeys, error) {
	_, auth, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("intro auth key: %w", err)
	}
	enc, err := ecdh.X25519().GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("intro enc key: %w", err)
	}
	return &IntroKeys{Relay: relay, auth: auth, enc: enc}, nil
}

// Point is the public view of k, for the descriptor.
func (k *IntroKeys) Point() IntroPoint {
	ip := IntroPoint{Relay: k.Relay}
	copy(ip.AuthKey[:], k.auth.Public().(ed25519.PublicKey))
	copy(ip.EncKey[:], k.enc.PublicKey().Bytes())
	return ip
}
