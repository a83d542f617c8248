package web

// LoopbackHost reports whether a Host header value names this machine
// through the loopback: the status page's DNS-rebinding check, which the
// control API applies too.
func LoopbackHost(hostport string) bool { return loopbackHost(hostport) }
