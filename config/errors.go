package config

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors wrapped by every *Error, for errors.Is.
var (
	// ErrSyntax: the file is not valid TOML (or defines a key twice).
	ErrSyntax = errors.New("syntax error")
	// ErrType: a value has the wrong TOML type (hops = "three").
	ErrType = errors.New("wrong type")
	// ErrUnknownKey: the file sets a key or section the schema lacks.
	ErrUnknownKey = errors.New("unknown key")
	// ErrValue: a value has the right type but is not acceptable
	// (hops = 9, level = "loud", a bad duration, address or exit rule).
	ErrValue = errors.New("invalid value")
)

// Error is one problem in a configuration.
//
// File is the file's name as given to Load or Parse, or "" when the value
// did not come from a file (a default changed by an Override). Line is
// 1-based, 0 when unknown. Key is the dotted key ("client.hops"), "" when
// unknown (a syntax error before any key).
type Error struct {
	File string
	Line int
	Key  string
	Err  error

	// elem is 1 + the index of the offending element of a list value, 0
	// when the whole value is at fault. Parse uses it to find the line.
	elem int
}

// Error formats e as "file:line: key: problem", or "file:line: unknown key
// K" for unknown keys, leaving out what is not known.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if errors.Is(e.Err, ErrUnknownKey) && e.Key != "" {
		b.WriteString("unknown key ")
		b.WriteString(e.Key)
		return b.String()
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *Error) Unwrap() error { return e.Err }

// problem is an error that reads as msg and matches both its kind (one of
// the sentinels) and its cause with errors.Is and errors.As.
type problem struct {
	kind  error
	msg   string
	cause error
}

func (p *problem) Error() string { return p.msg }

func (p *problem) Unwrap() []error {
	if p.cause == nil {
		return []error{p.kind}
	}
	return []error{p.kind, p.cause}
}

// joinErrors returns nil, the single *Error, or all of them joined.
func joinErrors(errs []*Error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	list := make([]error, len(errs))
	for i, e := range errs {
		list[i] = e
	}
	return errors.Join(list...)
}

// Problems returns the *Error values in err: err itself, or the members of
// an errors.Join made by this package, in order. It returns nil if err holds
// none.
func Problems(err error) []*Error {
	switch x := err.(type) {
	case nil:
		return nil
	case *Error:
		return []*Error{x}
	case interface{ Unwrap() []error }:
		var out []*Error
		for _, m := range x.Unwrap() {
			out = append(out, Problems(m)...)
		}
		return out
	}
	var e *Error
	if errors.As(err, &e) {
		return []*Error{e}
	}
	return nil
}
