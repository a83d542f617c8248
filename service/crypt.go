package service

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/binary"
	"fmt"
	"io"
)

const (
	saltLen = 16
	tagLen  = 16
)

// subcredential binds the descriptor's encryption and the INTRODUCE
// handshake to the address: SHA3-256("subcredential" |
// SHA3-256("credential" | A) | A'), as in rend-spec-v3. Only who knows
// the address can compute it.
func subcredential(a Address, b BlindedKey) [32]byte {
	c := sha3.New256()
	c.Write([]byte("credential"))
	c.Write(a[:])
	s := sha3.New256()
	s.Write([]byte("subcredential"))
	s.Write(c.Sum(nil))
	s.Write(b[:])
	var out [32]byte
	copy(out[:], s.Sum(nil))
	return out
}

// aeadFor derives an AES-256-GCM key and nonce from secret material and a
// per-message salt.
func aeadFor(secret, salt []byte, info string) (cipher.AEAD, []byte, error) {
	km, err := hkdf.Key(sha256.New, secret, salt, info, 32+12)
	if err != nil {
		return nil, nil, fmt.Errorf("derive %s keys: %w", info, err)
	}
	defer clear(km)
	blk, err := aes.NewCipher(km[:32])
	if err != nil {
		return nil, nil, fmt.Errorf("aes: %w", err)
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, nil, fmt.Errorf("gcm: %w", err)
	}
	return g, append([]byte(nil), km[32:]...), nil
}

// layerSecret is SECRET_DATA | subcredential | revision.
func layerSecret(secretData []byte, subcred [32]byte, revision uint64) []byte {
	s := append(append([]byte(nil), secretData...), subcred[:]...)
	return binary.BigEndian.AppendUint64(s, revision)
}

// sealLayer encrypts one descriptor layer: salt | ciphertext+tag.
func sealLayer(rand io.Reader, secret []byte, info string, plain, aad []byte) ([]byte, error) {
	salt := make([]byte, saltLen, saltLen+len(plain)+tagLen)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return nil, fmt.Errorf("salt: %w", err)
	}
	g, nonce, err := aeadFor(secret, salt, info)
	if err != nil {
		return nil, err
	}
	return g.Seal(salt, nonce, plain, aad), nil
}

// openLayer reverses sealLayer.
func openLayer(secret []byte, info string, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < saltLen+tagLen {
		return nil, fmt.Errorf("%s layer of %d bytes: %w", info, len(sealed), ErrMalformed)
	}
	g, nonce, err := aeadFor(secret, sealed[:saltLen], info)
	if err != nil {
		return nil, err
	}
	plain, err := g.Open(nil, nonce, sealed[saltLen:], aad)
	if err != nil {
		return nil, fmt.Errorf("%s layer: %w", info, ErrDecrypt)
	}
	return plain, nil
}
