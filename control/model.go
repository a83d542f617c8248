package control

import (
	"time"

	"github.com/pikcio/pikcio/web"
)

// The JSON bodies of the control API. Every answer that is not 2xx is an
// Error.

// Error is the body of every failed request.
type Error struct {
	Error string `json:"error"`
}

// Isolation names an isolation group as a proxy client selects it: the
// listener ("socks" or "http") and the credentials it presents (SOCKS
// username and password, or HTTP Proxy-Authorization Basic credentials).
// Empty credentials name the listener's group of requests without any.
type Isolation struct {
	Proxy    string `json:"proxy"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// CircuitAnswer is the circuit serving an isolation group: nil before the
// group's first stream, or after its circuit was retired.
type CircuitAnswer struct {
	Circuit *web.CircuitStatus `json:"circuit"`
}

// NewCircuitAnswer says how many circuits of the group were retired.
type NewCircuitAnswer struct {
	Retired int `json:"retired"`
}

// OK is the answer of requests that only act.
type OK struct {
	OK bool `json:"ok"`
}

// Contact is one contact of the local store.
type Contact struct {
	Name  string    `json:"name"`
	ID    string    `json:"id"`             // Matryoshka ID, hex
	Node  string    `json:"node,omitempty"` // peer ID of their node, if known
	Added time.Time `json:"added"`
}

// InviteRequest asks for a one-time invite code. Lifetime is a Go duration
// ("48h"); empty means the default.
type InviteRequest struct {
	Name     string `json:"name"`
	Lifetime string `json:"lifetime,omitempty"`
}

// Invite is a one-time invite code and when it expires.
type Invite struct {
	Code    string    `json:"code"`
	Expires time.Time `json:"expires"`
}

// AcceptRequest accepts a friend's invite code under a local name.
type AcceptRequest struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// RemoveRequest names a contact by its name or Matryoshka ID.
type RemoveRequest struct {
	Contact string `json:"contact"`
}

// Enrollment is the node's TIS enrollment: Configured is false when no TIS
// root key is set, and then nothing else is.
type Enrollment struct {
	Configured bool          `json:"configured"`
	Identity   *web.Identity `json:"identity,omitempty"`
}

// Event is one server-sent event: its SSE event name is Type, its data
// this struct as JSON.
type Event struct {
	Type string    `json:"type"`
	Time time.Time `json:"time"`
	// Circuit is the pool's circuit ID, for circuit events; Group its
	// isolation group index (0 for a clean circuit).
	Circuit uint64 `json:"circuit,omitempty"`
	Group   int    `json:"group,omitempty"`
	// Guards are the short IDs of the guards, for guards_changed.
	Guards []string `json:"guards,omitempty"`
	// Message says what failed, for circuit_failed; it never names a
	// destination.
	Message string `json:"message,omitempty"`
}

// Event types.
const (
	EventCircuitBuilt  = "circuit_built"
	EventCircuitClosed = "circuit_closed"
	EventCircuitFailed = "circuit_failed"
	EventNewIdentity   = "new_identity"
	EventGuardsChanged = "guards_changed"
)
