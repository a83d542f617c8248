package exchange

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"golang.org/x/time/rate"

	"github.com/pikcio/pikcio/trust"
)

// Service is the inviter's side: it answers exchanges on ProtocolID for
// the invites pending in its data directory, and adds each friend to the
// contacts under the name chosen when the invite was made.
type Service struct {
	host     host.Host
	pending  *Pending
	self     Self
	nodeKey  crypto.PrivKey
	root     ed25519.PublicKey
	contacts *trust.Contacts
	opts     Options
	limiter  *rate.Limiter

	mu      sync.Mutex
	closed  bool
	streams map[network.Stream]struct{}
	wg      sync.WaitGroup
}

// NewService serves the contact exchange on h for the invites of the data
// directory dir. self must have a node certificate for h's peer ID (the
// accepter checks it against the peer it dialed); contacts receives the
// friends. Close stops it.
func NewService(h host.Host, dir string, self Self, root ed25519.PublicKey, contacts *trust.Contacts, opts Options) (*Service, error) {
	nodeKey, err := self.nodeKey(h)
	if err != nil {
		return nil, fmt.Errorf("contact exchange: %w", err)
	}
	if nodeKey == nil {
		return nil, fmt.Errorf("contact exchange: no node certificate: %w", ErrSelf)
	}
	if id, err := self.NodeCert.PeerID(); err != nil || id != h.ID() {
		return nil, fmt.Errorf("contact exchange: node certificate is not for the host: %w", ErrSelf)
	}
	opts = opts.withDefaults()
	s := &Service{
		host:     h,
		pending:  OpenPending(dir),
		self:     self,
		nodeKey:  nodeKey,
		root:     root,
		contacts: contacts,
		opts:     opts,
		limiter:  rate.NewLimiter(rate.Limit(opts.AttemptsPerSecond), opts.AttemptBurst),
		streams:  make(map[network.Stream]struct{}),
	}
	h.SetStreamHandler(ProtocolID, s.handle)
	return s, nil
}

// Close stops serving, resets the exchanges in progress and waits for
// their handlers. It is idempotent.
func (s *Service) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.host.RemoveStreamHandler(ProtocolID)
	for st := range s.streams {
		_ = st.Reset()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Service) handle(st network.Stream) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = st.Reset()
		return
	}
	s.streams[st] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.streams, st)
		s.mu.Unlock()
		s.wg.Done()
	}()

	_ = st.SetDeadline(time.Now().Add(Timeout))
	rep, err := s.serve(st)
	if err != nil {
		s.opts.Log.WithError(err).Debug("contact exchange refused")
		rep = &reply{Code: codeOf(err)}
	}
	b, err := rep.encode()
	if err == nil {
		err = writeFrame(st, b)
	}
	if err != nil {
		s.opts.Log.WithError(err).Debug("contact exchange: write reply")
		_ = st.Reset()
		return
	}
	_ = st.Close()
}

// serve reads and checks the hello, and on success records the friend and
// returns the reply that completes the exchange.
func (s *Service) serve(st network.Stream) (*reply, error) {
	if !s.limiter.Allow() {
		return nil, ErrRateLimited
	}
	msg, err := readFrame(st, MaxHelloSize)
	if err != nil {
		if !errors.Is(err, ErrMalformed) {
			err = fmt.Errorf("%w: read hello: %w", ErrMalformed, err)
		}
		return nil, err
	}
	h, err := decodeHello(msg)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	inv, err := s.pending.lookup(h.Tag)
	if err != nil {
		return nil, err
	}
	accepter, inviter := st.Conn().RemotePeer(), st.Conn().LocalPeer()
	tr, err := helloTranscript(accepter, inviter, h.Tag, &h.part)
	if err != nil {
		return nil, err
	}
	if !h.checkMAC(inv.MACKey, tr) {
		// A wrong secret, or a hello made for another connection: as
		// far as the accepter can tell, no such invite.
		return nil, fmt.Errorf("hello MAC: %w", ErrInviteUnknown)
	}
	if !now.Before(inv.Expires) {
		return nil, ErrInviteExpired
	}
	if err := h.verify(tr, s.root, now, s.opts.Revocations()); err != nil {
		return nil, err
	}
	if h.MCert.ID == s.self.MatryoshkaCert.ID {
		return nil, ErrOwnInvite
	}
	rep := &reply{Code: codeOK, part: part{MCert: s.self.MatryoshkaCert, NCert: s.self.NodeCert, Service: s.self.serviceCard()}}
	rtr, err := replyTranscript(accepter, inviter, msg, &rep.part)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	if err := rep.sign(s.self, s.nodeKey, inv.MACKey, rtr); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	err = s.pending.consume(h.Tag, now, func(inv pendingInvite) error {
		card, err := trust.DecodeServiceCard(h.Service)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrMalformed, err)
		}
		if err := s.contacts.AddExchanged(inv.Name, h.MCert, h.NCert, card, now); err != nil {
			return fmt.Errorf("%w: add contact: %w", ErrRefused, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.opts.Log.Debug("contact exchange completed")
	return rep, nil
}
