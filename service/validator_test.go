package service

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	record "github.com/libp2p/go-libp2p-record"
)

func TestValidator(t *testing.T) {
	s := newTestService(t, 2, 0, ServerOptions{})
	v := Validator{Now: func() time.Time { return testNow }}
	p := s.desc.Period
	raw := s.seal(t, s.desc)
	key := KeyFor(s.id.Address(), p)
	if !strings.HasPrefix(key, "/"+Namespace+"/") {
		t.Fatalf("key %q outside the namespace", key)
	}
	if err := v.Validate(key, raw); err != nil {
		t.Fatalf("valid record: %v", err)
	}
	old := *s.desc
	old.Period = Period{Number: p.Number - 2, Length: p.Length}
	prev := old
	prev.Period = Period{Number: p.Number - 1, Length: p.Length}
	far := *s.desc
	far.Period = Period{Number: p.Number + 2, Length: p.Length}
	hourly := *s.desc
	hourly.Period = PeriodAt(testNow, time.Hour)
	other := newTestService(t, 1, 0, ServerOptions{})
	tampered := bytes.Clone(raw)
	tampered[len(tampered)-3] ^= 1
	tests := []struct {
		name  string
		key   string
		value []byte
		want  error
	}{
		{"previous period", KeyFor(s.id.Address(), prev.Period), s.seal(t, &prev), nil},
		{"two periods old", KeyFor(s.id.Address(), old.Period), s.seal(t, &old), ErrStale},
		{"two periods ahead", KeyFor(s.id.Address(), far.Period), s.seal(t, &far), ErrStale},
		{"other period length", KeyFor(s.id.Address(), hourly.Period), s.seal(t, &hourly), ErrStale},
		{"under another service's key", KeyFor(other.id.Address(), p), raw, ErrKeyMismatch},
		{"under another period's key", KeyFor(s.id.Address(), p.Next()), raw, ErrKeyMismatch},
		{"other namespace", "/pikcio-desc/x", raw, ErrKeyMismatch},
		{"tampered", key, tampered, ErrBadSignature},
		{"garbage", key, []byte("hello"), ErrMalformed},
		{"oversize", key, make([]byte, MaxDescriptorSize+1), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(tt.key, tt.value)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Validate: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestValidatorSelectNewest(t *testing.T) {
	s := newTestService(t, 1, 0, ServerOptions{})
	v := Validator{Now: func() time.Time { return testNow }}
	key := KeyFor(s.id.Address(), s.desc.Period)
	var vals [][]byte
	for _, rev := range []uint64{5, 9, 7} {
		d := *s.desc
		d.Revision = rev
		vals = append(vals, s.seal(t, &d))
	}
	// A forged record with a higher revision (broken signature) loses.
	d := *s.desc
	d.Revision = 100
	forged := s.seal(t, &d)
	forged[len(forged)-1] ^= 1
	vals = append(vals, forged, []byte("junk"))
	i, err := v.Select(key, vals)
	if err != nil || i != 1 {
		t.Fatalf("Select = %d, %v; want 1 (revision 9)", i, err)
	}
	if _, err := v.Select(key, vals[3:]); err == nil {
		t.Fatal("Select chose among invalid records")
	}
	// The namespaced validator works as libp2p's DHT will use it.
	nv := record.NamespacedValidator{Namespace: v}
	if err := nv.Validate(key, vals[0]); err != nil {
		t.Fatalf("namespaced: %v", err)
	}
}
