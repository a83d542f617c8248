package node_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/pikcio/pikcio/control/client"
	"github.com/pikcio/pikcio/node/localnet"
	"github.com/pikcio/pikcio/trust"
	"github.com/pikcio/pikcio/trust/exchange"
	"github.com/pikcio/pikcio/web"
)

// TestControlContacts: on an enrolled client, the control API shows the
// enrollment, makes an invite code, accepts a relay's invite (the two
// nodes exchange certificates), lists the new contact, removes it, and
// answers a trust query.
func TestControlContacts(t *testing.T) {
	n := localnet.StartTest(t, 3, func(o *localnet.Options) { o.Base.Client.ControlListen = "127.0.0.1:0" })
	n.WaitReady(t)
	c, err := client.ForDataDir(n.Client.ControlAddr(), n.Client.DataDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	en, err := c.Enrollment(ctx)
	if err != nil || !en.Configured || en.Identity == nil || !en.Identity.Enrolled {
		t.Fatalf("enrollment %+v, %v", en, err)
	}
	inv, err := c.Invite(ctx, "Friend", "1h")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := trust.ParseInvite(inv.Code); err != nil || time.Until(inv.Expires) > time.Hour+time.Minute {
		t.Fatalf("invite %+v: %v", inv, err)
	}
	if _, err := c.Invite(ctx, "Friend", "9999h"); !client.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("invite beyond the maximum lifetime: %v, want 400", err)
	}

	// relay-0 invites the client; the client accepts through the API.
	r := n.Relays[0]
	rinv, err := exchange.CreateInvite(r.DataDir(), r.Addrs(), "client", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ct, err := c.Accept(ctx, rinv.String(), "Relay Zero")
	if err != nil {
		t.Fatalf("accept: %v", err)
	}
	if ct.Name != "Relay Zero" || ct.ID == "" {
		t.Fatalf("contact %+v", ct)
	}
	list, err := c.Contacts(ctx)
	if err != nil || len(list) != 1 || list[0].ID != ct.ID {
		t.Fatalf("contacts %+v, %v", list, err)
	}
	var rep web.TrustReport
	if err := c.Trust(ctx, ct.ID, &rep); err != nil || rep.Kind != "identity" {
		t.Fatalf("trust of the contact: %+v, %v", rep, err)
	}
	if err := c.Trust(ctx, "no-such-thing", &rep); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("trust of nothing: %v, want 404", err)
	}
	if _, err := c.RemoveContact(ctx, "relay zero"); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if list, _ := c.Contacts(ctx); len(list) != 0 {
		t.Fatalf("contacts after remove: %+v", list)
	}
	if _, err := c.RemoveContact(ctx, "relay zero"); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("second remove: %v, want 404", err)
	}
}
