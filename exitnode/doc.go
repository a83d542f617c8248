// Package exitnode is the exit relay's side of a stream: where the traffic of
// a circuit leaves the pikcio network for the destination.
//
// When the last hop of a circuit receives BEGIN(host, port), the circuit
// package calls (*Exit).DialExit. The exit resolves the name itself (the
// client never does, so its resolver learns nothing), checks the exit policy
// against every resolved address, connects to an allowed one and hands back
// the *net.TCPConn. A failure is a *DialError wrapping one of the sentinel
// errors of reason.go; endreason.ReasonOf turns it into the endreason.Reason byte of the END
// message, and the client's proxy turns that into its SOCKS reply.
//
// # Exit policy
//
// A policy is a list of rules, and the first rule that matches the
// destination address and port decides. A rule is
//
//	accept|reject ADDR[/BITS]:PORT[-PORT]
//
// with the keyword in any case. ADDR is * (any address), *4 (any IPv4
// address), *6 (any IPv6 address), an IPv4 address, or an IPv6 address in
// brackets ([2001:db8::1], [2001:db8::]/32). A prefix must be masked:
// 10.0.0.1/8 is an error rather than silently read as 10.0.0.0/8, because an
// operator who wrote it probably meant something else. PORT is *, N or N-M
// within 1..65535. A configuration may hold several rules in one string,
// separated by commas or newlines (SplitRules):
//
//	accept *:80, accept *:443, reject *:*
//
// Destinations are matched with IPv4-mapped IPv6 addresses
// (::ffff:127.0.0.1) unmapped, so they cannot slip past IPv4 rules; the Go
// resolver itself returns such addresses. An address with a zone is never
// allowed. An IPv6 address of a transition range that embeds IPv4 addresses
// (NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32) is allowed only if
// the embedded IPv4 addresses are allowed on the same port too: an exit on
// an IPv6-only network behind NAT64 keeps reaching public IPv4 sites, but
// 64:ff9b::10.0.0.1 is as closed as 10.0.0.1. A NAT64 prefix specific to
// the exit's network cannot be recognised; its operator should reject it.
//
// # Default policy
//
// NewPolicy puts the operator's rules first, then rejects, on every port:
//
//	0.0.0.0/8        "this network"; 0.0.0.0 reaches the exit's own services
//	127.0.0.0/8      loopback: the exit's own services
//	10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16   private networks (RFC 1918)
//	169.254.0.0/16   link-local, including cloud metadata at 169.254.169.254
//	100.64.0.0/10    carrier-grade NAT shared space, the ISP's side of the exit
//	192.0.0.0/24     IETF protocol assignments (DS-Lite, NAT64 discovery)
//	198.18.0.0/15    benchmarking, found inside labs and some LANs
//	224.0.0.0/4      multicast
//	240.0.0.0/4      reserved, and the broadcast address 255.255.255.255
//	[::]/128, [::1]/128   unspecified and loopback
//	[::]/96          deprecated IPv4-compatible addresses (::127.0.0.1)
//	[fe80::]/10      link-local
//	[fec0::]/10      deprecated site-local
//	[fc00::]/7       unique local addresses, the IPv6 private networks
//	[ff00::]/8       multicast
//	[64:ff9b:1::]/48 local-use NAT64, which may translate to anything
//	[::ffff:0:0:0]/96  SIIT IPv4-translated addresses
//
// then the relay's own addresses (the own argument), so that the exit cannot
// be used to reach services that trust connections from the relay's own host
// or network, and finally accepts everything else (accept *:*).
//
// An operator's accept rule opens a default-rejected range only when its
// addresses lie entirely inside the range: "accept 127.0.0.1:*" makes
// 127.0.0.1 reachable (not 127.0.0.2), while "accept *:80, reject *:*" does
// not open port 80 of the loopback, the private networks or the relay's own
// addresses. NewPolicy inserts the matching reject rules before such a broad
// accept rule, so Policy.String shows the policy that is enforced.
//
// # DNS rebinding
//
// A name is resolved once, every address is checked, and the exit connects
// only to the addresses that passed, never to the name. A name whose DNS
// answer points into a rejected range (a rebinding attack, or simply
// localhost) is refused with endreason.ErrPolicy, even if it would resolve elsewhere a
// moment later.
//
// # Errors
//
// DialExit fails with a *DialError; errors.Is matches its endreason.Reason's sentinel:
//
//	endreason.ErrPolicy       port 0, an IP literal the policy rejects, or a name whose
//	                resolved addresses are all rejected
//	endreason.ErrResolve      the Resolver failed (not found, server failure, its own
//	                timeout) or returned no address
//	endreason.ErrRefused      the destination answered ECONNREFUSED
//	endreason.ErrUnreachable  ENETUNREACH, EHOSTUNREACH or EHOSTDOWN
//	endreason.ErrTimeout      DialTimeout (default 10s) or the caller's deadline ran out
//	endreason.ErrMisc         a malformed host, anything else
//
// Classification uses errors.Is and errors.As on errno values, *net.DNSError
// and net.Error, never error text. A DialError's text never contains the
// destination, so it may be logged; the exit logs destinations only at debug
// level.
//
// # Own addresses
//
// The default policy also refuses the exit's own addresses, which change
// while it runs (a NAT's public address that peers observe, a new
// interface): OwnIPs turns the host's multiaddrs into that list, and
// KeepOwnAddrs applies a new list whenever it changes (on the host's
// address-change events, and every OwnAddrsCheck).
package exitnode
