package discovery

// ExtIPv6Exit is the descriptor extension of an exit that can reach IPv6
// destinations (Tor's IPv6Exit). Its data is one byte, 1; a client
// choosing an exit for an IPv6 literal asks for it (PathRequest.IPv6).
const ExtIPv6Exit uint16 = 3

// IPv6ExitExtension is the extension an IPv6-capable exit publishes.
func IPv6ExitExtension() Extension { return Extension{Type: ExtIPv6Exit, Data: []byte{1}} }

// ExitsIPv6 reports whether the descriptor says its exit reaches IPv6.
func (d *Descriptor) ExitsIPv6() bool {
	b, ok := d.Extension(ExtIPv6Exit)
	return ok && len(b) == 1 && b[0] == 1
}

// exitsFor are the candidates that may be the exit of req: all of them, or
// for an IPv6 destination the IPv6-capable ones.
func exitsFor(cands []*Descriptor, req PathRequest) []*Descriptor {
	if !req.IPv6 {
		return cands
	}
	out := make([]*Descriptor, 0, len(cands))
	for _, d := range cands {
		if d.ExitsIPv6() {
			out = append(out, d)
		}
	}
	return out
}
