// Package earlydata marks a stream open as optimistic: the caller wants
// the stream back as soon as its BEGIN has left, so that its first bytes
// follow at once instead of a circuit round trip later, and it learns of a
// failed connect from the stream's first read. The proxy front ends set
// it; package circuit reads it. It is a leaf so that neither imports the
// other.
package earlydata

import "context"

type key struct{}

// With returns ctx marked for optimistic data.
func With(ctx context.Context) context.Context { return context.WithValue(ctx, key{}, true) }

// Wanted reports whether ctx is marked.
func Wanted(ctx context.Context) bool {
	v, _ := ctx.Value(key{}).(bool)
	return v
}
