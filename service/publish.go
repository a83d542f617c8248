package service

import (
	"context"
	"crypto/ecdh"
	"fmt"
	"io"
)

// RecordStore is the part of pikcio's DHT this package uses: a namespaced
// record store whose peers run Validator for Namespace.
// *discovery.Discovery satisfies it (with discovery.Validator(Namespace,
// Validator{})).
type RecordStore interface {
	PutRecord(ctx context.Context, key string, value []byte) error
	GetRecord(ctx context.Context, key string) ([]byte, error)
}

// Publish seals d and stores it under its DHT key. A record with a higher
// revision replaces the last (Validator.Select).
func (id *Identity) Publish(ctx context.Context, store RecordStore, rand io.Reader, d *Descriptor, contacts []*ecdh.PublicKey) error {
	raw, err := id.SealDescriptor(rand, d, contacts)
	if err != nil {
		return fmt.Errorf("seal descriptor for %s: %w", d.Period, err)
	}
	if err := store.PutRecord(ctx, DHTKey(id.blind(d.Period).pub, d.Period), raw); err != nil {
		return fmt.Errorf("publish descriptor for %s: %w", d.Period, err)
	}
	return nil
}

// Fetch gets addr's descriptor for period p and opens it (clientKey: see
// OpenDescriptor). Near a period's turnover a client that does not find
// the current one may try p's neighbours: services publish ahead.
func Fetch(ctx context.Context, store RecordStore, addr Address, p Period, clientKey *ecdh.PrivateKey) (*Descriptor, error) {
	if _, err := addr.point(); err != nil {
		return nil, err
	}
	raw, err := store.GetRecord(ctx, KeyFor(addr, p))
	if err != nil {
		return nil, fmt.Errorf("fetch descriptor for %s: %w", p, err)
	}
	return OpenDescriptor(raw, addr, p, clientKey)
}
