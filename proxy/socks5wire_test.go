package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

var negotiateTests = []struct {
	name  string
	in    []byte
	sent  []byte // what the server answers
	cred  string
	err   bool
	extra int // bytes left unread
}{
	{"no auth", []byte{5, 1, 0}, []byte{5, 0}, "", false, 0},
	{"userpass preferred", []byte{5, 2, 0, 2, 1, 1, 'u', 1, 'p'}, []byte{5, 2, 1, 0}, credentialKey("u", "p"), false, 0},
	{"userpass last of many", []byte{5, 4, 0, 1, 0x80, 2, 1, 0, 0}, []byte{5, 2, 1, 0}, credentialKey("", ""), false, 0},
	{"no acceptable method", []byte{5, 1, 0x80}, []byte{5, 0xff}, "", true, 0},
	{"no methods", []byte{5, 0}, []byte{5, 0xff}, "", true, 0},
	{"pipelined request", []byte{5, 1, 0, 5, 1, 0, 1}, []byte{5, 0}, "", false, 4},
	{"short methods", []byte{5, 3, 0}, nil, "", true, 0},
	{"bad auth version", []byte{5, 1, 2, 5, 1, 'u', 1, 'p'}, []byte{5, 2, 1, 1}, "", true, 3},
	{"short password", []byte{5, 1, 2, 1, 1, 'u', 3, 'p'}, []byte{5, 2, 1, 1}, "", true, 0},
	{"socks4", []byte{4, 1, 0, 80}, nil, "", true, 2},
	{"empty", nil, nil, "", true, 0},
}

func TestNegotiate(t *testing.T) {
	for _, tc := range negotiateTests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			r := bytes.NewReader(tc.in)
			cred, err := negotiate(&out, bufio.NewReaderSize(r, 16))
			if (err != nil) != tc.err || cred != tc.cred || !bytes.Equal(out.Bytes(), tc.sent) {
				t.Fatalf("got %q %v, sent % x; want %q err=%v, % x", cred, err, out.Bytes(), tc.cred, tc.err, tc.sent)
			}
		})
	}
}

var requestTests = []struct {
	name string
	in   []byte
	want socksRequest
	code byte // reply code of a refused request; 0 for success or a short read
	err  bool
}{
	{"connect name", []byte{5, 1, 0, 3, 3, 'a', '.', 'b', 0, 80}, socksRequest{1, "a.b", 80}, 0, false},
	{"connect ipv4", []byte{5, 1, 0, 1, 127, 0, 0, 1, 1, 0}, socksRequest{1, "127.0.0.1", 256}, 0, false},
	{"connect ipv6", append(append([]byte{5, 1, 0, 4}, netip.IPv6Loopback().AsSlice()...), 0, 1), socksRequest{1, "::1", 1}, 0, false},
	{"empty name", []byte{5, 1, 0, 3, 0, 0, 80}, socksRequest{1, "", 80}, 0, false},
	{"resolve", []byte{5, 0xf0, 0, 3, 1, 'x', 0, 0}, socksRequest{0xf0, "x", 0}, 0, false},
	{"resolve ptr", []byte{5, 0xf1, 0, 1, 10, 0, 0, 1, 0, 0}, socksRequest{0xf1, "10.0.0.1", 0}, 0, false},
	{"resolve an address", []byte{5, 0xf0, 0, 1, 10, 0, 0, 1, 0, 0}, socksRequest{}, socksAddrNotSupported, true},
	{"resolve ptr of a name", []byte{5, 0xf1, 0, 3, 1, 'x', 0, 0}, socksRequest{}, socksAddrNotSupported, true},
	{"bind", []byte{5, 2, 0, 1, 127, 0, 0, 1, 0, 80}, socksRequest{}, socksCmdNotSupported, true},
	{"udp associate", []byte{5, 3, 0, 1, 127, 0, 0, 1, 0, 0}, socksRequest{}, socksCmdNotSupported, true},
	{"address type 5", []byte{5, 1, 0, 5, 127, 0, 0, 1, 0, 80}, socksRequest{}, socksAddrNotSupported, true},
	{"version 4", []byte{4, 1, 0, 1, 127, 0, 0, 1, 0, 80}, socksRequest{}, socksGeneralFailure, true},
	{"short name", []byte{5, 1, 0, 3, 9, 'a'}, socksRequest{}, 0, true},
	{"short port", []byte{5, 1, 0, 1, 1, 2, 3, 4, 0}, socksRequest{}, 0, true},
	{"empty", nil, socksRequest{}, 0, true},
}

func TestReadRequest(t *testing.T) {
	for _, tc := range requestTests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			if !tc.err {
				in = append(in, "tunnel data"...)
			}
			r := bytes.NewReader(in)
			got, err := readRequest(r)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("got %+v %v, want %+v err=%v", got, err, tc.want, tc.err)
			}
			var re *requestError
			if code := byte(0); errors.As(err, &re) {
				code = re.code
				if code != tc.code {
					t.Fatalf("reply code %#02x, want %#02x", code, tc.code)
				}
			} else if tc.code != 0 {
				t.Fatalf("error %v is not a refusal with %#02x", err, tc.code)
			}
			if err == nil && r.Len() != len("tunnel data") {
				t.Fatalf("read %d bytes past the request", len("tunnel data")-r.Len())
			}
		})
	}
}

func TestReply(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"connect", reply(0, nil), []byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}},
		{"refused", reply(socksConnRefused, nil), []byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}},
		{"ipv4", reply(0, addrAnswer(netip.MustParseAddr("::ffff:10.1.2.3"))), []byte{5, 0, 0, 1, 10, 1, 2, 3, 0, 0}},
		{"ipv6", reply(0, addrAnswer(netip.IPv6Loopback())), append(append([]byte{5, 0, 0, 4}, netip.IPv6Loopback().AsSlice()...), 0, 0)},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s: % x, want % x", tc.name, tc.got, tc.want)
		}
	}
}

// FuzzSOCKSHandshake runs the negotiation and the request on any input: no
// panic, never a read past the request, and a parsed request always has a
// command the server serves and a host that fits a reply.
func FuzzSOCKSHandshake(f *testing.F) {
	for _, tc := range negotiateTests {
		f.Add(tc.in)
	}
	for _, tc := range requestTests {
		f.Add(append([]byte{5, 1, 0}, tc.in...))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		r := bytes.NewReader(in)
		br := bufio.NewReaderSize(r, 16)
		if _, err := negotiate(&out, br); err != nil {
			return
		}
		if out.Len() > 4 {
			t.Fatalf("answered % x", out.Bytes())
		}
		req, err := readRequest(br)
		if err != nil {
			var re *requestError
			if errors.As(err, &re) && (re.code == 0 || re.code > socksAddrNotSupported) {
				t.Fatalf("refusal code %#02x", re.code)
			}
			return
		}
		switch req.cmd {
		case socksCmdConnect, socksCmdResolve, socksCmdResolvePTR:
		default:
			t.Fatalf("command %#02x accepted", req.cmd)
		}
		if len(req.host) > 255 {
			t.Fatalf("host of %d bytes", len(req.host))
		}
		if req.cmd == socksCmdResolvePTR {
			if _, err := netip.ParseAddr(req.host); err != nil {
				t.Fatalf("RESOLVE_PTR of %q", req.host)
			}
		}
	})
}
