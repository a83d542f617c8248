package exchange

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

// inviterPeer returns the one peer the invite addresses name, with its
// addresses.
func inviterPeer(addrs []ma.Multiaddr) (peer.AddrInfo, error) {
	infos, err := peer.AddrInfosFromP2pAddrs(addrs...)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("invite addresses: %w: %w", trust.ErrMalformed, err)
	}
	if len(infos) != 1 {
		return peer.AddrInfo{}, fmt.Errorf("invite addresses name %d nodes: %w", len(infos), trust.ErrMalformed)
	}
	return infos[0], nil
}

// Accept runs the accepter's side of the exchange for inv: it dials the
// inviter's node from h, proves knowledge of the invite secret and
// presents self, checks the inviter's answer (certificates of root, a node
// certificate for the peer dialed, proofs over this connection), and adds
// the inviter to contacts under name. h may be a short-lived host: the
// node the inviter records for the accepter is the one of self.NodeCert,
// whose key signs the exchange (self.NodeKey, or h's key).
//
// Errors reported by the inviter are ErrInviteUnknown (unknown, used, or
// wrong secret), ErrInviteExpired, ErrBadProof, ErrCertificate,
// ErrOwnInvite, ErrRateLimited, ErrMalformed and ErrRefused; failures to
// reach the inviter are returned wrapped as they come.
func Accept(ctx context.Context, h host.Host, inv *trust.Invite, self Self, root ed25519.PublicKey, contacts *trust.Contacts, name string) (trust.Contact, error) {
	if _, err := tis.NormalizeName(name); err != nil {
		return trust.Contact{}, fmt.Errorf("contact name: %w", err)
	}
	if inv.Expired(time.Now()) {
		return trust.Contact{}, fmt.Errorf("invite expired at %s: %w", inv.Expires.Local().Format(time.DateTime), ErrInviteExpired)
	}
	nodeKey, err := self.nodeKey(h)
	if err != nil {
		return trust.Contact{}, err
	}
	info, err := inviterPeer(inv.Addrs)
	if err != nil {
		return trust.Contact{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, Timeout)
	defer cancel()
	if err := h.Connect(ctx, info); err != nil {
		return trust.Contact{}, fmt.Errorf("connect to the inviter: %w", err)
	}
	st, err := h.NewStream(ctx, info.ID, ProtocolID)
	if err != nil {
		return trust.Contact{}, fmt.Errorf("open contact exchange: %w", err)
	}
	defer st.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = st.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = st.Reset() })
	defer stop()

	key := macKey(inv.Secret[:])
	accepter, inviter := st.Conn().LocalPeer(), st.Conn().RemotePeer()
	hl := &hello{Tag: inviteTag(inv.Secret[:]), part: part{MCert: self.MatryoshkaCert, NCert: self.NodeCert, Service: self.serviceCard()}}
	tr, err := helloTranscript(accepter, inviter, hl.Tag, &hl.part)
	if err != nil {
		return trust.Contact{}, err
	}
	if err := hl.sign(self, nodeKey, key, tr); err != nil {
		return trust.Contact{}, err
	}
	msg, err := hl.encode()
	if err != nil {
		return trust.Contact{}, err
	}
	if err := writeFrame(st, msg); err != nil {
		_ = st.Reset()
		return trust.Contact{}, fmt.Errorf("send hello: %w", err)
	}
	_ = st.CloseWrite()
	b, err := readFrame(st, MaxReplySize)
	if err != nil {
		_ = st.Reset()
		if errors.Is(err, ErrMalformed) {
			return trust.Contact{}, err
		}
		return trust.Contact{}, fmt.Errorf("read the inviter's reply: %w", err)
	}
	rep, err := decodeReply(b)
	if err != nil {
		return trust.Contact{}, err
	}
	if rep.Code != codeOK {
		return trust.Contact{}, fmt.Errorf("inviter: %w", codeErrors[rep.Code])
	}
	now := time.Now()
	rtr, err := replyTranscript(accepter, inviter, msg, &rep.part)
	if err != nil {
		return trust.Contact{}, err
	}
	if !rep.checkMAC(key, rtr) {
		return trust.Contact{}, fmt.Errorf("inviter's MAC: %w", ErrBadProof)
	}
	if rep.NCert == nil {
		return trust.Contact{}, fmt.Errorf("inviter without node certificate: %w", ErrCertificate)
	}
	if err := tis.VerifyNodeCert(rep.NCert, root, inviter, now, nil); err != nil {
		return trust.Contact{}, fmt.Errorf("inviter's node: %w: %w", ErrCertificate, err)
	}
	if err := rep.verify(rtr, root, now, nil); err != nil {
		return trust.Contact{}, fmt.Errorf("inviter: %w", err)
	}
	card, err := trust.DecodeServiceCard(rep.Service)
	if err != nil {
		return trust.Contact{}, err
	}
	if err := contacts.AddExchanged(name, rep.MCert, rep.NCert, card, now); err != nil {
		return trust.Contact{}, err
	}
	ct, ok := contacts.Get(rep.MCert.ID)
	if !ok {
		return trust.Contact{}, fmt.Errorf("contact %s: %w", rep.MCert.ID, trust.ErrNotFound)
	}
	return ct, nil
}
