package tistest

import (
	"context"
	"fmt"
	"strings"
	"sync"

	record "github.com/libp2p/go-libp2p-record"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/pikcio/pikcio/tis"
)

// Records is an in-memory tis.RecordStore, the DHT of one node without
// the network: a PUT is checked by the validator of its key's namespace
// (a key without one is refused, as the DHT does) and kept only if the
// validator selects it over the value held; a GET returns the value held
// or an error wrapping routing.ErrNotFound.
type Records struct {
	validators map[string]record.Validator

	mu   sync.Mutex
	m    map[string][]byte
	err  error
	puts int
}

var _ tis.RecordStore = (*Records)(nil)

// NewRecords returns an empty store with validators by namespace
// (tis.RevocationNamespace, trust.Namespace, ...).
func NewRecords(validators map[string]record.Validator) *Records {
	return &Records{validators: validators, m: map[string][]byte{}}
}

// PutRecord implements tis.RecordStore.
func (r *Records) PutRecord(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	v, err := r.validator(key)
	if err != nil {
		return err
	}
	if err := v.Validate(key, value); err != nil {
		return fmt.Errorf("put record %s: %w", key, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.puts++
	if r.err != nil {
		return r.err
	}
	if old, ok := r.m[key]; ok {
		i, err := v.Select(key, [][]byte{value, old})
		if err != nil {
			return fmt.Errorf("put record %s: %w", key, err)
		}
		if i != 0 {
			return fmt.Errorf("put record %s: can't replace a newer value with an older value", key)
		}
	}
	r.m[key] = append([]byte(nil), value...)
	return nil
}

// GetRecord implements tis.RecordStore.
func (r *Records) GetRecord(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return nil, r.err
	}
	v, ok := r.m[key]
	if !ok {
		return nil, fmt.Errorf("get record %s: %w", key, routing.ErrNotFound)
	}
	return append([]byte(nil), v...), nil
}

// Set stores value under key without any check, as a malicious DHT
// server answers what it likes.
func (r *Records) Set(key string, value []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.m[key] = append([]byte(nil), value...)
}

// Get returns what is stored under key, without an error.
func (r *Records) Get(key string) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.m[key]
	return v, ok
}

// Fail makes every later call fail with err (nil: work again), as a DHT
// without peers does.
func (r *Records) Fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// Puts counts the PUTs that passed validation.
func (r *Records) Puts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.puts
}

func (r *Records) validator(key string) (record.Validator, error) {
	ns, _, ok := strings.Cut(strings.TrimPrefix(key, "/"), "/")
	if !ok || !strings.HasPrefix(key, "/") {
		return nil, fmt.Errorf("put record %s: %w", key, record.ErrInvalidRecordType)
	}
	v, ok := r.validators[ns]
	if !ok {
		return nil, fmt.Errorf("put record %s: %w", key, record.ErrInvalidRecordType)
	}
	return v, nil
}
