package tis

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pikcio/pikcio/internal/privfile"
	"github.com/pikcio/pikcio/internal/wire"

	"github.com/libp2p/go-libp2p/core/crypto"
	pb "github.com/libp2p/go-libp2p/core/crypto/pb"
)

// Files of an enrolled node in its data directory, mode 0600.
const (
	// EnrollmentFile holds the encoded Enrollment (both certificates and the
	// bootstraps).
	EnrollmentFile = "tis-enrollment.bin"
	// MatryoshkaKeyFile holds the Matryoshka Ed25519 private key (64 raw
	// bytes). It never leaves the node.
	MatryoshkaKeyFile = "matryoshka.key"
)

// DefaultClientTimeout bounds one request of a Client made by NewClient.
const DefaultClientTimeout = 30 * time.Second

// Client talks to a TIS whose root key is pinned.
type Client struct {
	// BaseURL is the TIS URL, e.g. "http://127.0.0.1:7070".
	BaseURL string
	// Root is the pinned root key; everything the TIS sends is checked
	// against it.
	Root ed25519.PublicKey
	// HTTP is the HTTP client (TLS settings live here).
	HTTP *http.Client
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Code, if set, gives the one-time code the TIS mailed to email, when
	// Enroll is answered ErrCodeSent: a prompt (pikcio enroll), or
	// DemoMailer.Code in a demo. Without it Enroll returns ErrCodeSent.
	Code func(ctx context.Context, email string) (string, error)
}

// NewClient returns a Client with an HTTP client bounded by
// DefaultClientTimeout.
func NewClient(baseURL string, root ed25519.PublicKey) *Client {
	return &Client{BaseURL: baseURL, Root: root, HTTP: &http.Client{Timeout: DefaultClientTimeout}}
}

// BaseURL turns the --tis argument into a base URL: a URL is kept; a bare
// host:port becomes http:// on a loopback address and https:// elsewhere.
func BaseURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimRight(addr, "/")
	}
	host, _, err := net.SplitHostPort(addr)
	if err == nil {
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			return "http://" + addr
		}
	}
	return "https://" + addr
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) url(path string) (string, error) {
	u, err := url.Parse(strings.TrimRight(c.BaseURL, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("TIS URL %q: want http:// or https:// and a host", c.BaseURL)
	}
	return u.String(), nil
}

// Enroll is NewClient(baseURL, rootKey).Enroll.
func Enroll(ctx context.Context, baseURL string, rootKey ed25519.PublicKey, nodeKey crypto.PrivKey, matryoshkaKey ed25519.PrivateKey, name, email string) (*Enrollment, error) {
	return NewClient(baseURL, rootKey).Enroll(ctx, nodeKey, matryoshkaKey, name, email)
}

// FetchRevocations is NewClient(baseURL, rootKey).FetchRevocations.
func FetchRevocations(ctx context.Context, baseURL string, rootKey ed25519.PublicKey) (*RevocationList, error) {
	return NewClient(baseURL, rootKey).FetchRevocations(ctx)
}

// NewEnrollRequest builds the enrollment request for the two key pairs and
// the properties (normalized first), signed by both private keys at now.
func NewEnrollRequest(root ed25519.PublicKey, nodeKey crypto.PrivKey, matryoshkaKey ed25519.PrivateKey, name, email string, now time.Time) (*EnrollRequest, error) {
	return NewEnrollRequestCode(root, nodeKey, matryoshkaKey, name, email, "", now)
}

// NewEnrollRequestCode is NewEnrollRequest with the code mailed to email.
func NewEnrollRequestCode(root ed25519.PublicKey, nodeKey crypto.PrivKey, matryoshkaKey ed25519.PrivateKey, name, email, code string, now time.Time) (*EnrollRequest, error) {
	if nodeKey == nil || nodeKey.Type() != pb.KeyType_Ed25519 {
		return nil, fmt.Errorf("node key: %w", ErrUnsupportedKey)
	}
	if len(matryoshkaKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("matryoshka key: %w", ErrUnsupportedKey)
	}
	nodePub, err := nodeKey.GetPublic().Raw()
	if err != nil {
		return nil, fmt.Errorf("node key: %w", err)
	}
	p, err := normalizeProperties(name, email)
	if err != nil {
		return nil, err
	}
	q := &EnrollRequest{
		Root:          RootKeyID(root),
		Time:          now.UTC().Truncate(time.Second),
		NodeKey:       ed25519.PublicKey(nodePub),
		MatryoshkaKey: matryoshkaKey.Public().(ed25519.PublicKey),
		Name:          p.name,
		Email:         p.email,
		Code:          NormalizeCode(code),
	}
	body, err := q.body()
	if err != nil {
		return nil, err
	}
	if q.NodeSig, err = nodeKey.Sign(wire.Signed(enrollNodeContext, body)); err != nil {
		return nil, fmt.Errorf("sign with node key: %w", err)
	}
	q.MatryoshkaSig = wire.Sign(matryoshkaKey, enrollMatryoshkaContext, body)
	return q, nil
}

// Enroll asks the TIS for the two certificates of the node key and the
// Matryoshka key, and checks the answer against the pinned root and the
// keys. A TIS that verifies e-mails answers a first request with
// ErrCodeSent and mails a code; Enroll then asks c.Code for it and sends
// the request again with it (without c.Code it returns ErrCodeSent, and
// EnrollCode goes on). Refusals wrap the sentinel the TIS gave
// (ErrAlreadyEnrolled, ErrBadCode, ...), others ErrRejected.
func (c *Client) Enroll(ctx context.Context, nodeKey crypto.PrivKey, matryoshkaKey ed25519.PrivateKey, name, email string) (*Enrollment, error) {
	e, err := c.EnrollCode(ctx, nodeKey, matryoshkaKey, name, email, "")
	if !errors.Is(err, ErrCodeSent) || c.Code == nil {
		return e, err
	}
	code, err := c.Code(ctx, email)
	if err != nil {
		return nil, fmt.Errorf("enroll: code: %w", err)
	}
	return c.EnrollCode(ctx, nodeKey, matryoshkaKey, name, email, code)
}

// EnrollCode sends one enrollment request with code ("" asks for one;
// the answer is then ErrCodeSent) and checks the answer.
func (c *Client) EnrollCode(ctx context.Context, nodeKey crypto.PrivKey, matryoshkaKey ed25519.PrivateKey, name, email, code string) (*Enrollment, error) {
	q, err := NewEnrollRequestCode(c.Root, nodeKey, matryoshkaKey, name, email, code, c.now())
	if err != nil {
		return nil, err
	}
	body, err := q.Encode()
	if err != nil {
		return nil, err
	}
	u, err := c.url(PathEnroll)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.do(req, MaxEnrollmentSize)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	e, err := DecodeEnrollment(resp)
	if err != nil {
		return nil, fmt.Errorf("enroll: answer: %w", err)
	}
	if err := e.Verify(c.Root, q.NodeKey, q.MatryoshkaKey, c.now()); err != nil {
		return nil, fmt.Errorf("enroll: answer: %w", err)
	}
	return e, nil
}

// fetchRevocationTries bounds how often FetchRevocations starts again
// when the list changed between its pages.
const fetchRevocationTries = 3

// FetchRevocations gets the TIS's revocation list, all its pages (at most
// MaxRevocationPages of at most MaxRevocationListSize bytes) and its
// delta, and verifies it.
func (c *Client) FetchRevocations(ctx context.Context) (*RevocationList, error) {
	return c.FetchRevocationsSince(ctx, nil)
}

// FetchRevocationsSince is FetchRevocations for a client that holds the
// list held (nil if none): when the TIS's delta is on the pages held, it
// fetches the delta alone (one page, however long the list).
func (c *Client) FetchRevocationsSince(ctx context.Context, held *RevocationList) (*RevocationList, error) {
	var err error
	for range fetchRevocationTries {
		var l *RevocationList
		if l, err = c.fetchRevocations(ctx, held); err == nil || !errors.Is(err, errListChanged) {
			return l, err
		}
	}
	return nil, err
}

// errListChanged reports pages of two lists: the TIS signed a new one
// while the client fetched the pages.
var errListChanged = errors.New("revocation list changed while fetched")

func (c *Client) fetchRevocations(ctx context.Context, held *RevocationList) (*RevocationList, error) {
	delta, db, err := c.fetchRevocationPage(ctx, -1)
	switch {
	case errors.Is(err, ErrNoDelta):
		delta = nil
	case err != nil:
		return nil, err
	case delta.Base == 0:
		// A TIS before deltas answers its first page: fetch the pages.
		delta = nil
	case held != nil && held.BaseSequence() == delta.Base:
		return held.WithDelta(delta)
	}
	first, b, err := c.fetchRevocationPage(ctx, 0)
	if err != nil {
		return nil, err
	}
	if delta != nil && first.Sequence != delta.Base {
		return nil, fmt.Errorf("fetch revocations: delta on list %d, page 0 of %d: %w", delta.Base, first.Sequence, errListChanged)
	}
	pages := [][]byte{b}
	for i := 1; i < first.PageCount(); i++ {
		p, b, err := c.fetchRevocationPage(ctx, i)
		if err != nil {
			return nil, err
		}
		if p.Sequence != first.Sequence || p.Pages != first.Pages {
			return nil, fmt.Errorf("fetch revocations: page %d of list %d, page 0 of %d: %w", i, p.Sequence, first.Sequence, errListChanged)
		}
		pages = append(pages, b)
	}
	if delta != nil {
		pages = append(pages, db)
	}
	l, err := AssembleRevocationList(pages, c.Root)
	if err != nil {
		return nil, fmt.Errorf("fetch revocations: %w", err)
	}
	return l, nil
}

// fetchRevocationPage gets page i (-1: the delta) and verifies it.
func (c *Client) fetchRevocationPage(ctx context.Context, i int) (*RevocationList, []byte, error) {
	path := PathRevocations
	switch {
	case i < 0:
		path += "?delta"
	case i > 0:
		path += "?page=" + strconv.Itoa(i)
	}
	b, err := c.get(ctx, path, int64(MaxRevocationListSize))
	if err != nil {
		return nil, nil, fmt.Errorf("fetch revocations page %d: %w", i, err)
	}
	l, err := ParseRevocationList(b, c.Root)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch revocations page %d: %w", i, err)
	}
	if (i >= 0 && (int(l.Page) != i || l.Base != 0)) || (i < 0 && l.Page != 0) {
		return nil, nil, fmt.Errorf("fetch revocations: page %d (delta on %d) answered for %d: %w", l.Page, l.Base, i, ErrMalformed)
	}
	return l, b, nil
}

// get GETs path and returns a 200 body of at most max bytes.
func (c *Client) get(ctx context.Context, path string, max int64) ([]byte, error) {
	u, err := c.url(path)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	return c.do(req, max)
}

// do sends req and returns a 200 body of at most max bytes; a refusal
// becomes the sentinel named by its error header.
func (c *Client) do(req *http.Request, max int64) ([]byte, error) {
	return api.Do(c.HTTP, req, max)
}

// EnrollNode enrolls the node whose data directory is dir: it loads or
// creates the Matryoshka key there, enrolls nodeKey and that key with the
// TIS at baseURL (pinned root), and saves the enrollment in dir. This is
// what `pikcio enroll` runs.
func EnrollNode(ctx context.Context, baseURL string, root ed25519.PublicKey, nodeKey crypto.PrivKey, dir, name, email string) (*Enrollment, error) {
	return NewClient(baseURL, root).EnrollNode(ctx, nodeKey, dir, name, email, "")
}

// EnrollNode is the package's EnrollNode through c, with code if the
// person has it already ("" asks the TIS for one, and then c.Code).
func (c *Client) EnrollNode(ctx context.Context, nodeKey crypto.PrivKey, dir, name, email, code string) (*Enrollment, error) {
	mk, err := LoadOrCreateMatryoshkaKey(dir)
	if err != nil {
		return nil, err
	}
	var e *Enrollment
	if code != "" {
		e, err = c.EnrollCode(ctx, nodeKey, mk, name, email, code)
	} else {
		e, err = c.Enroll(ctx, nodeKey, mk, name, email)
	}
	if err != nil {
		return nil, err
	}
	if err := SaveEnrollment(dir, e); err != nil {
		return nil, err
	}
	return e, nil
}

// LoadOrCreateMatryoshkaKey reads the Matryoshka private key in the node
// data directory dir, or creates it (mode 0600) on first use.
func LoadOrCreateMatryoshkaKey(dir string) (ed25519.PrivateKey, error) {
	if err := ensureDir(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, MatryoshkaKeyFile)
	k, err := readMatryoshkaKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	_, k, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate matryoshka key: %w", err)
	}
	if err := privfile.Create(path, k); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readMatryoshkaKey(path)
		}
		return nil, err
	}
	return k, nil
}

func readMatryoshkaKey(path string) (ed25519.PrivateKey, error) {
	b, err := readPrivate(path, ed25519.PrivateKeySize)
	if err != nil {
		return nil, fmt.Errorf("matryoshka key: %w", err)
	}
	if len(b) != ed25519.PrivateKeySize || !bytes.Equal(ed25519.NewKeyFromSeed(b[:ed25519.SeedSize]), b) {
		return nil, fmt.Errorf("matryoshka key %s: %w", path, ErrMalformed)
	}
	return ed25519.PrivateKey(b), nil
}

// SaveEnrollment stores e in the node data directory dir (EnrollmentFile,
// 0600, replaced atomically). The Matryoshka key must already be in dir
// (LoadOrCreateMatryoshkaKey) and match the Matryoshka certificate.
func SaveEnrollment(dir string, e *Enrollment) error {
	k, err := readMatryoshkaKey(filepath.Join(dir, MatryoshkaKeyFile))
	if err != nil {
		return fmt.Errorf("save enrollment: %w", err)
	}
	if e.MatryoshkaCert == nil || !k.Public().(ed25519.PublicKey).Equal(e.MatryoshkaCert.SubjectKey) {
		return fmt.Errorf("save enrollment: matryoshka certificate: %w", ErrWrongKey)
	}
	b, err := e.Encode()
	if err != nil {
		return fmt.Errorf("save enrollment: %w", err)
	}
	return privfile.Replace(filepath.Join(dir, EnrollmentFile), b)
}

// LoadEnrollment reads the enrollment and the Matryoshka private key from
// the node data directory dir. The certificates are decoded, and the
// Matryoshka key checked against its certificate, but not verified against
// a root: call Enrollment.Verify or VerifyNodeCert. A node never enrolled
// gets an error wrapping fs.ErrNotExist.
func LoadEnrollment(dir string) (*Enrollment, ed25519.PrivateKey, error) {
	b, err := readPrivate(filepath.Join(dir, EnrollmentFile), MaxEnrollmentSize)
	if err != nil {
		return nil, nil, fmt.Errorf("load enrollment: %w", err)
	}
	e, err := DecodeEnrollment(b)
	if err != nil {
		return nil, nil, fmt.Errorf("load enrollment: %w", err)
	}
	k, err := readMatryoshkaKey(filepath.Join(dir, MatryoshkaKeyFile))
	if err != nil {
		return nil, nil, fmt.Errorf("load enrollment: %w", err)
	}
	if !k.Public().(ed25519.PublicKey).Equal(e.MatryoshkaCert.SubjectKey) {
		return nil, nil, fmt.Errorf("load enrollment: matryoshka certificate: %w", ErrWrongKey)
	}
	return e, k, nil
}
