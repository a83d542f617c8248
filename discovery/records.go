package discovery

import (
	"context"
	"fmt"
)

// The DHT is also a store of other signed records than descriptors: a
// namespace added with the Validator option ("/ns/...") is validated and
// chosen among by its own record.Validator on every node that runs the
// same option. tis keeps the revocation list there, trust the bundles and
// seed lists; both use a *Discovery through tis.RecordStore.

// PutRecord stores value under key ("/ns/...", ns added with Validator)
// in this node's DHT store and at the closest DHT servers. It fails when
// the validator refuses the value or this node holds a better one.
func (d *Discovery) PutRecord(ctx context.Context, key string, value []byte) error {
	if err := d.dht.PutValue(ctx, key, value); err != nil {
		return fmt.Errorf("put record %s: %w", key, err)
	}
	return nil
}

// GetRecord returns the best valid value under key among this node's and
// the closest DHT servers' (by the namespace's Select), or an error
// wrapping routing.ErrNotFound.
func (d *Discovery) GetRecord(ctx context.Context, key string) ([]byte, error) {
	v, err := d.dht.GetValue(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get record %s: %w", key, err)
	}
	return v, nil
}
