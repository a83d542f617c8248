package trust

import (
	"testing"

	"github.com/pikcio/pikcio/tis"
)

func TestExplainTop(t *testing.T) {
	seed, target := testID(1), testID(2)
	r := Records{}
	for i := range 15 {
		v := testID(100 + i)
		r.Vouches = append(r.Vouches, vouch(seed, v, uint8(1+i)), vouch(v, target, 10))
	}
	x := Compute(r, Options{Now: t0, Seeds: []tis.ID{seed}}).Explain(target)
	if x.NumVouchers != 15 || len(x.Vouchers) != ExplainTop {
		t.Fatalf("%d vouchers listed of %d, want %d of 15", len(x.Vouchers), x.NumVouchers, ExplainTop)
	}
	if x.Vouchers[0].Voucher != testID(114) || x.Vouchers[0].Weight != 10 || x.Vouchers[0].OutWeight != 10 {
		t.Fatalf("top voucher %+v, want the one with the most trust", x.Vouchers[0])
	}
	for i := 1; i < len(x.Vouchers); i++ {
		if x.Vouchers[i].Trust > x.Vouchers[i-1].Trust {
			t.Fatalf("vouchers not sorted by contribution: %+v", x.Vouchers)
		}
	}
}
