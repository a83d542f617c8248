package exchange

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/pikcio/pikcio/internal/wire"
	"github.com/pikcio/pikcio/tis"
	"github.com/pikcio/pikcio/trust"
)

// Wire format. Each message is one frame: a uint16 length and the body.
//
//	hello (accepter -> inviter): version u8, tag [32], part
//	reply (inviter -> accepter): code u8, then part if code is codeOK
//	part: mcert bytes16, ncert bytes16 (may be empty), nodesig bytes16
//	      (64 bytes iff ncert), service bytes16 (empty or a 64-byte
//	      trust.ServiceCard: the sender's Matryoshka service address and
//	      client key, issue 17), mac [32], sig bytes16 (64 bytes)
//
// bytes16 is a uint16 length and the bytes. See helloTranscript and
// replyTranscript for what the MACs and signatures cover.
const (
	version = 2 // 2: the service card
	macSize = sha256.Size
	// maxPartSize, MaxHelloSize and MaxReplySize cap the messages.
	maxPartSize  = 2 + tis.MaxCertificateSize + 2 + tis.MaxCertificateSize + 2 + ed25519.SignatureSize + 2 + trust.ServiceCardLen + macSize + 2 + ed25519.SignatureSize
	MaxHelloSize = 1 + 32 + maxPartSize
	MaxReplySize = 1 + maxPartSize
)

// Domain separation of the transcripts and signatures.
var (
	helloContext      = []byte("pikcio-contact-v1/hello\x00")
	replyContext      = []byte("pikcio-contact-v1/reply\x00")
	matryoshkaContext = []byte("pikcio-contact-v1/matryoshka-signature\x00")
	nodeContext       = []byte("pikcio-contact-v1/node-signature\x00")
)

// part is what one side presents: its certificates and its proofs over
// the transcript.
type part struct {
	MCert   *tis.Certificate
	NCert   *tis.Certificate // nil if none
	NodeSig []byte           // by the key of NCert, iff NCert
	Service []byte           // empty, or trust.ServiceCard.Encode
	MAC     [macSize]byte    // HMAC-SHA256 under the invite's MAC key
	Sig     []byte           // by the key of MCert
}

// hello is the accepter's message.
type hello struct {
	Tag [32]byte
	part
}

// reply is the inviter's message; part is set iff Code is codeOK.
type reply struct {
	Code byte
	part
}

// certBytes returns the encodings of the part's certificates (ncert nil
// if absent).
func (p *part) certBytes() (mcert, ncert []byte, err error) {
	if p.MCert == nil {
		return nil, nil, fmt.Errorf("no Matryoshka certificate: %w", ErrMalformed)
	}
	if mcert, err = p.MCert.Encode(); err != nil {
		return nil, nil, err
	}
	if p.NCert != nil {
		if ncert, err = p.NCert.Encode(); err != nil {
			return nil, nil, err
		}
	}
	return mcert, ncert, nil
}

func (p *part) append(b []byte) ([]byte, error) {
	mcert, ncert, err := p.certBytes()
	if err != nil {
		return nil, err
	}
	if (ncert == nil) != (len(p.NodeSig) == 0) || (ncert != nil && len(p.NodeSig) != ed25519.SignatureSize) || len(p.Sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("signature sizes: %w", ErrMalformed)
	}
	b = wire.AppendBytes16(b, mcert)
	b = wire.AppendBytes16(b, ncert)
	b = wire.AppendBytes16(b, p.NodeSig)
	b = wire.AppendBytes16(b, p.Service)
	b = append(b, p.MAC[:]...)
	return wire.AppendBytes16(b, p.Sig), nil
}

func (p *part) read(r *wire.Reader) {
	mcert := r.Bytes16("Matryoshka certificate", tis.MaxCertificateSize)
	ncert := r.Bytes16("node certificate", tis.MaxCertificateSize)
	p.NodeSig = r.Bytes16("node signature", ed25519.SignatureSize)
	p.Service = r.Bytes16("service card", trust.ServiceCardLen)
	copy(p.MAC[:], r.Take(macSize, "mac"))
	p.Sig = r.Bytes16("signature", ed25519.SignatureSize)
	if r.Err() != nil {
		return
	}
	var err error
	if p.MCert, err = tis.DecodeCertificate(mcert); err != nil {
		r.Fail("Matryoshka certificate (%v)", err)
		return
	}
	if len(ncert) > 0 {
		if p.NCert, err = tis.DecodeCertificate(ncert); err != nil {
			r.Fail("node certificate (%v)", err)
			return
		}
	}
	if (len(ncert) == 0) != (len(p.NodeSig) == 0) || (len(ncert) > 0 && len(p.NodeSig) != ed25519.SignatureSize) {
		r.Fail("node signature of %d bytes", len(p.NodeSig))
	}
	if len(p.Sig) != ed25519.SignatureSize {
		r.Fail("signature of %d bytes", len(p.Sig))
	}
	if _, err := trust.DecodeServiceCard(p.Service); err != nil {
		r.Fail("service card of %d bytes", len(p.Service))
	}
}

func (m *hello) encode() ([]byte, error) {
	b := append(make([]byte, 0, MaxHelloSize), version)
	b = append(b, m.Tag[:]...)
	return m.part.append(b)
}

func decodeHello(b []byte) (*hello, error) {
	if len(b) > MaxHelloSize {
		return nil, fmt.Errorf("hello of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	if v := r.U8("version"); r.Err() == nil && v != version {
		r.Fail("version %d", v)
	}
	m := &hello{}
	copy(m.Tag[:], r.Take(len(m.Tag), "tag"))
	m.part.read(r)
	r.End("hello")
	if r.Err() != nil {
		return nil, r.Err()
	}
	return m, nil
}

func (m *reply) encode() ([]byte, error) {
	b := append(make([]byte, 0, MaxReplySize), m.Code)
	if m.Code != codeOK {
		if _, known := codeErrors[m.Code]; !known {
			return nil, fmt.Errorf("reply code %d: %w", m.Code, ErrMalformed)
		}
		return b, nil
	}
	return m.part.append(b)
}

func decodeReply(b []byte) (*reply, error) {
	if len(b) > MaxReplySize {
		return nil, fmt.Errorf("reply of %d bytes: %w", len(b), ErrMalformed)
	}
	r := wire.NewReader(b, ErrMalformed)
	m := &reply{Code: r.U8("code")}
	if _, known := codeErrors[m.Code]; r.Err() == nil && m.Code != codeOK && !known {
		r.Fail("reply code %d", m.Code)
	}
	if r.Err() == nil && m.Code == codeOK {
		m.part.read(r)
	}
	r.End("reply")
	if r.Err() != nil {
		return nil, r.Err()
	}
	return m, nil
}

// helloTranscript is what the accepter's MAC and signatures cover: both
// peer IDs of the stream (so the hello is worthless on another
// connection), the tag and the accepter's certificates.
func helloTranscript(accepter, inviter peer.ID, tag [32]byte, p *part) ([]byte, error) {
	mcert, ncert, err := p.certBytes()
	if err != nil {
		return nil, err
	}
	b := slices.Clone(helloContext)
	b = append(b, version)
	b = wire.AppendBytes16(b, []byte(accepter))
	b = wire.AppendBytes16(b, []byte(inviter))
	b = append(b, tag[:]...)
	b = wire.AppendBytes16(b, mcert)
	b = wire.AppendBytes16(b, ncert)
	return wire.AppendBytes16(b, p.Service), nil
}

// replyTranscript is what the inviter's MAC and signatures cover: both
// peer IDs, the accepter's whole hello, and the inviter's certificates.
func replyTranscript(accepter, inviter peer.ID, helloMsg []byte, p *part) ([]byte, error) {
	mcert, ncert, err := p.certBytes()
	if err != nil {
		return nil, err
	}
	b := slices.Clone(replyContext)
	b = wire.AppendBytes16(b, []byte(accepter))
	b = wire.AppendBytes16(b, []byte(inviter))
	b = wire.AppendBytes16(b, helloMsg)
	b = wire.AppendBytes16(b, mcert)
	b = wire.AppendBytes16(b, ncert)
	return wire.AppendBytes16(b, p.Service), nil
}

func mac(key, transcript []byte) [macSize]byte {
	m := hmac.New(sha256.New, key)
	m.Write(transcript)
	var out [macSize]byte
	copy(out[:], m.Sum(nil))
	return out
}

// sign sets the part's proofs over transcript, which must have been made
// from its certificates.
func (p *part) sign(self Self, nodeKey crypto.PrivKey, key, transcript []byte) error {
	p.MAC = mac(key, transcript)
	p.Sig = wire.Sign(self.MatryoshkaKey, matryoshkaContext, transcript)
	p.NodeSig = nil
	if p.NCert != nil {
		sig, err := nodeKey.Sign(wire.Signed(nodeContext, transcript))
		if err != nil {
			return fmt.Errorf("node signature: %w", err)
		}
		p.NodeSig = sig
	}
	return nil
}

// checkMAC reports whether the part's MAC over transcript is right.
func (p *part) checkMAC(key, transcript []byte) bool {
	want := mac(key, transcript)
	return hmac.Equal(want[:], p.MAC[:])
}

// verify checks the part's certificates against root at now and its
// signatures over transcript. Errors wrap ErrCertificate or ErrBadProof.
func (p *part) verify(transcript []byte, root ed25519.PublicKey, now time.Time, revs *tis.RevocationList) error {
	if err := tis.VerifyMatryoshkaCert(p.MCert, root, p.MCert.SubjectKey, now, revs); err != nil {
		return fmt.Errorf("%w: %w", ErrCertificate, err)
	}
	if !wire.Verify(p.MCert.SubjectKey, matryoshkaContext, transcript, p.Sig) {
		return fmt.Errorf("matryoshka signature: %w", ErrBadProof)
	}
	if p.NCert == nil {
		return nil
	}
	id, err := p.NCert.PeerID()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCertificate, err)
	}
	if err := tis.VerifyNodeCert(p.NCert, root, id, now, revs); err != nil {
		return fmt.Errorf("%w: %w", ErrCertificate, err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("%w: node key: %w", ErrCertificate, err)
	}
	ok, err := pub.Verify(wire.Signed(nodeContext, transcript), p.NodeSig)
	if err != nil || !ok {
		return fmt.Errorf("node signature: %w", ErrBadProof)
	}
	return nil
}

// writeFrame writes body with its uint16 length.
func writeFrame(w io.Writer, body []byte) error {
	if len(body) > 0xFFFF {
		return fmt.Errorf("frame of %d bytes: %w", len(body), ErrMalformed)
	}
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(body)), uint16(len(body)))
	_, err := w.Write(append(b, body...))
	return err
}

// readFrame reads one frame of at most max bytes.
func readFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	if n > max {
		return nil, fmt.Errorf("frame of %d bytes, over %d: %w", n, max, ErrMalformed)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}
