package tis

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"time"
)

// enrollment is what one enrollment transaction decided.
type enrollment struct {
	enr      *Enrollment
	refusal  error
	mail     *CodeMail
	revList  *RevocationList
	revPages [][]byte
}

// enroll checks a request and, in one transaction, issues its
// certificates, or mails a code, or refuses it.
//
//   - Same person and keys as enrolled, without a code: renewal (the keys
//     prove who it is), up to MaxIssuesPerPerson.
//   - Otherwise without a code: a code is mailed (at most one per
//     CodeResend) and the answer is ErrCodeSent, whether or not the e-mail
//     is enrolled.
//   - With the mailed code: a new person is enrolled; an enrolled one
//     (a lost device, new keys) gets the new keys certified and the old
//     certificates revoked in the same transaction. A retry of the
//     request (same code, same keys) gets the same enrollment again.
func (s *Server) enroll(ctx context.Context, q *EnrollRequest) (*Enrollment, error) {
	now := s.opts.Now()
	if q.Root != RootKeyID(s.root.PublicKey()) {
		return nil, fmt.Errorf("request for TIS %s: %w", q.Root, ErrUnknownIssuer)
	}
	if d := now.Sub(q.Time); d > s.opts.MaxClockSkew || d < -s.opts.MaxClockSkew {
		return nil, fmt.Errorf("request %s from the TIS clock: %w", d.Round(time.Second), ErrStaleRequest)
	}
	if q.NodeKey.Equal(q.MatryoshkaKey) {
		return nil, fmt.Errorf("node and matryoshka keys are the same: %w", ErrMalformed)
	}
	if err := q.verifyProof(); err != nil {
		return nil, err
	}
	p, err := normalizeProperties(q.Name, q.Email)
	if err != nil {
		return nil, err
	}
	if s.isClosed() {
		return nil, ErrClosed
	}
	secret := s.root.secret
	owner := hexHash(p.emailIndex(secret))
	binding := hexHash(p.binding(secret, q.NodeKey, q.MatryoshkaKey))
	keyHashes := []string{hexHash(keyIndex(secret, q.NodeKey)), hexHash(keyIndex(secret, q.MatryoshkaKey))}
	code := NormalizeCode(q.Code)

	var out enrollment
	err = s.store.Update(ctx, func(tx Tx) error {
		out = enrollment{}
		return s.enrollTx(tx, &out, q, p, owner, binding, keyHashes, code, now)
	})
	if err != nil {
		return nil, err
	}
	if out.revList != nil {
		s.setRevList(out.revList, out.revPages)
	}
	if out.mail != nil {
		// The mail domain's limit counts the mails sent, after the
		// transaction: a transaction that runs again takes no second
		// token, and on PostgreSQL the domain's bucket is not held locked
		// during the enrollment.
		err := allowAll(ctx, now, limitKey{s.domainLim, mailDomain(p.email), "mail domain"})
		if err == nil {
			err = s.mailer.SendCode(ctx, *out.mail)
		}
		if err != nil {
			// Let the person ask again at once.
			_ = s.store.Update(ctx, func(tx Tx) error { return tx.DeleteCode(owner) })
			return nil, err
		}
		s.log.Info("enrollment code sent")
	}
	if out.refusal != nil {
		return nil, out.refusal
	}
	return out.enr, nil
}

func (s *Server) enrollTx(tx Tx, out *enrollment, q *EnrollRequest, p properties, owner, binding string, keyHashes []string, code string, now time.Time) error {
	pe, keyOwners, c, err := tx.Enrollee(owner, keyHashes)
	if err != nil {
		return err
	}
	keysFree := true
	// newKeys are the keys not recorded yet, which issueTx records.
	var newKeys []string
	for i, o := range keyOwners {
		if o != "" && o != owner {
			keysFree = false
		}
		if o == "" {
			newKeys = append(newKeys, keyHashes[i])
		}
	}
	if !keysFree {
		// Only the holder of the private keys gets here (proof of
		// possession), so this tells nothing about anyone else.
		out.refusal = fmt.Errorf("key enrolled by another person: %w", ErrAlreadyEnrolled)
		return nil
	}
	renewal := pe != nil && pe.Binding == binding
	if renewal && pe.Blocked {
		out.refusal = ErrBlocked
		return nil
	}
	if renewal && code == "" {
		if pe.Issues >= MaxIssuesPerPerson {
			out.refusal = fmt.Errorf("certificates issued %d times: %w", pe.Issues, ErrRateLimited)
			return nil
		}
		return s.issueTx(tx, out, pe, nil, q, p, owner, binding, newKeys, now)
	}
	if s.mailer == nil { // OpenEnrollment: no codes
		if pe != nil {
			out.refusal = fmt.Errorf("e-mail enrolled with other properties or keys: %w", ErrAlreadyEnrolled)
			return nil
		}
		return s.issueTx(tx, out, nil, nil, q, p, owner, binding, newKeys, now)
	}
	if code == "" {
		// The same answer whether or not owner is enrolled.
		out.refusal = ErrCodeSent
		if c != nil && c.Used == "" && now.Before(c.Sent.Add(s.opts.CodeResend)) {
			return nil // one sent a moment ago
		}
		fresh, err := newCode()
		if err != nil {
			return err
		}
		nc := &pendingCode{Owner: owner, Hash: codeHash(s.root.secret, owner, fresh), Sent: now, Expires: now.Add(s.opts.CodeLifetime)}
		if err := tx.PutCode(nc); err != nil {
			return err
		}
		out.mail = &CodeMail{To: p.email, Code: fresh, Enrolled: pe != nil, Expires: nc.Expires.Truncate(time.Second)}
		return nil
	}
	switch {
	case c == nil:
		out.refusal = ErrBadCode
		return nil
	case !now.Before(c.Expires):
		out.refusal = ErrCodeExpired
		return tx.DeleteCode(owner)
	case c.Attempts >= s.opts.CodeAttempts:
		out.refusal = ErrTooManyAttempts
		return nil
	case !codeMatches(s.root.secret, c, code):
		c.Attempts++
		out.refusal = ErrBadCode
		if c.Attempts >= s.opts.CodeAttempts {
			out.refusal = ErrTooManyAttempts
		}
		return tx.PutCode(c)
	case c.Used != "":
		if c.Used == binding && pe != nil && pe.Binding == binding && len(pe.Enrollment) > 0 {
			// A retry whose first answer was lost.
			out.enr, err = DecodeEnrollment(pe.Enrollment)
			return err
		}
		out.refusal = fmt.Errorf("code used already: %w", ErrBadCode)
		return nil
	}
	if pe != nil && pe.Blocked {
		out.refusal = ErrBlocked
		return nil
	}
	if pe != nil && pe.Issues >= MaxIssuesPerPerson {
		out.refusal = fmt.Errorf("certificates issued %d times: %w", pe.Issues, ErrRateLimited)
		return nil
	}
	c.Used = binding // written with the enrollment (issueTx)
	if pe != nil && pe.Binding != binding {
		// A new device: revoke the old certificates with it.
		old, err := tx.LiveSerials(owner)
		if err != nil {
			return err
		}
		if len(old) > 0 {
			seq, err := tx.RevocationSeq()
			if err != nil {
				return err
			}
			if _, err := tx.Revoke(old); err != nil {
				return err
			}
			if out.revList, out.revPages, err = s.resignTx(tx, seq, old); err != nil {
				return err
			}
		}
	}
	return s.issueTx(tx, out, pe, c, q, p, owner, binding, newKeys, now)
}

// issueTx signs the two certificates and records them, newKeys (the
// hashes of the request's keys not recorded yet) as owner's, and the code
// that enrolled them (nil without one), in one write.
func (s *Server) issueTx(tx Tx, out *enrollment, pe *person, code *pendingCode, q *EnrollRequest, p properties, owner, binding string, newKeys []string, now time.Time) error {
	secret := s.root.secret
	base := now.UTC().Truncate(TimeGranularity)
	lifetime := s.opts.CertLifetime.Truncate(time.Second)
	enr := &Enrollment{Bootstraps: slices.Clone(s.opts.Bootstraps)}
	for _, c := range []struct {
		typ  CertType
		id   ID
		key  []byte
		dest **Certificate
	}{
		{TypeNode, p.nodeID(secret), q.NodeKey, &enr.NodeCert},
		{TypeMatryoshka, p.matryoshkaID(secret), q.MatryoshkaKey, &enr.MatryoshkaCert},
	} {
		// Each certificate's times move on their own, so that the two of
		// one enrollment cannot be matched by them (certTimes).
		issued, expires, err := certTimes(base, lifetime)
		if err != nil {
			return err
		}
		cert := &Certificate{Type: c.typ, ID: c.id, SubjectKey: bytes.Clone(c.key), IssuedAt: issued, Expires: expires}
		if _, err := rand.Read(cert.Serial[:]); err != nil {
			return fmt.Errorf("serial: %w", err)
		}
		if err := cert.sign(s.root.key); err != nil {
			return err
		}
		*c.dest = cert
	}
	blob, err := enr.Encode()
	if err != nil {
		return err
	}
	if pe == nil {
		pe = &person{Owner: owner}
	}
	pe.Binding, pe.Enrollment = binding, blob
	pe.Issues++
	serials := []string{enr.NodeCert.Serial.String(), enr.MatryoshkaCert.Serial.String()}
	// The two certificates expire apart (certTimes); their serials are kept
	// until the later expiry, so that a re-enrollment still revokes both.
	expires := enr.NodeCert.Expires
	if enr.MatryoshkaCert.Expires.After(expires) {
		expires = enr.MatryoshkaCert.Expires
	}
	if err := tx.Issue(pe, code, expires, serials, newKeys); err != nil {
		return err
	}
	out.enr = enr
	return nil
}

func hexHash(h [32]byte) string { return hex.EncodeToString(h[:]) }

func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) {
	addr := clientAddr(r, s.opts.TrustedProxies)
	now := s.opts.Now()
	if err := allowAll(r.Context(), now, limitKey{s.addrLim, addr, "client address"}, limitKey{s.lim, "", "all clients"}); err != nil {
		s.refuse(w, err)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBody))
	if err != nil {
		s.refuse(w, fmt.Errorf("read request: %w: %w", ErrMalformed, err))
		return
	}
	q, err := DecodeEnrollRequest(body)
	if err != nil {
		s.refuse(w, err)
		return
	}
	enr, err := s.enroll(r.Context(), q)
	if err != nil {
		s.refuse(w, err)
		return
	}
	b, err := enr.Encode()
	if err != nil {
		s.refuse(w, err)
		return
	}
	s.log.Info("enrollment issued")
	w.Header().Set("Content-Type", contentType)
	w.Write(b)
}

// certTimes returns the issue and expiry times of one new certificate:
// base (now, rounded down to TimeGranularity) moved back by a random
// whole number of TimeGranularity steps within CertTimeSpread, and base +
// lifetime moved back by another, drawn apart. Two certificates of one
// enrollment so share neither time, and a holder of one cannot find the
// other among those of the same hour. The spread is at most a quarter
// of lifetime (none for lifetimes under four steps).
func certTimes(base time.Time, lifetime time.Duration) (issued, expires time.Time, err error) {
	steps := int64(min(CertTimeSpread, lifetime/4) / TimeGranularity)
	back := func() (time.Duration, error) {
		if steps <= 0 {
			return 0, nil
		}
		n, err := rand.Int(rand.Reader, big.NewInt(steps))
		if err != nil {
			return 0, fmt.Errorf("certificate time: %w", err)
		}
		return time.Duration(n.Int64()) * TimeGranularity, nil
	}
	b1, err := back()
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	b2, err := back()
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return base.Add(-b1), base.Add(lifetime - b2), nil
}
