package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// MaxFileSize is the largest configuration file Load reads.
const MaxFileSize = 1 << 20

// Load reads the file at path: the defaults, the file on top of them, then
// override (if not nil), then Validate. Problems in the file are reported as
// *Error values naming path, the line and the key (see Problems).
func Load(path string, override Override) (*Config, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data, override)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, &Error{File: path, Err: &problem{kind: ErrValue, msg: fmt.Sprintf("file larger than %d bytes", MaxFileSize)}}
	}
	return data, nil
}

// Parse is Load on data already read; name is used in errors.
//
// The checks run in stages and Parse reports the problems of the first
// stage that finds any: TOML syntax (the first error), value types, unknown
// keys, then values (all of them, after override).
func Parse(name string, data []byte, override Override) (*Config, error) {
	// Some editors start UTF-8 files with a byte order mark; TOML has none.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	idx, err := indexDocument(data)
	if err != nil {
		err.File = name
		return nil, err
	}
	if errs := idx.checkTypes(); len(errs) > 0 {
		return nil, withFile(name, errs)
	}
	cfg := Default()
	if errs := decode(data, cfg, idx); len(errs) > 0 {
		return nil, withFile(name, errs)
	}

	var overridden map[string]bool
	if override != nil {
		fromFile := cfg.Clone()
		override(cfg)
		overridden = map[string]bool{}
		for _, k := range Diff(fromFile, cfg) {
			overridden[k] = true
		}
	}
	errs := cfg.validate()
	for _, e := range errs {
		// A value the override set did not come from the file.
		if !overridden[e.Key] {
			e.File = name
			e.Line = idx.line(e.Key, e.elem)
		}
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return cfg, nil
}

func withFile(name string, errs []*Error) error {
	for _, e := range errs {
		e.File = name
	}
	return joinErrors(errs)
}

// decode lets go-toml fill cfg, in strict mode, and turns its errors into
// *Error values.
func decode(data []byte, cfg *Config, idx *docIndex) []*Error {
	err := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields().Decode(cfg)
	if err == nil {
		return nil
	}
	var missing *toml.StrictMissingError
	if errors.As(err, &missing) {
		errs := make([]*Error, 0, len(missing.Errors))
		for i := range missing.Errors {
			de := &missing.Errors[i]
			line, _ := de.Position()
			errs = append(errs, &Error{
				Line: line,
				Key:  idx.fullKey(line, de.Key()),
				Err:  &problem{kind: ErrUnknownKey, msg: "unknown key", cause: de},
			})
		}
		return errs
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		// Duplicate keys, redefined tables and the like: the TOML is
		// well-formed token by token but not as a document.
		line, _ := de.Position()
		key := idx.fullKey(line, de.Key())
		return []*Error{{
			Line: line,
			Key:  key,
			Err: &problem{
				kind:  ErrSyntax,
				msg:   "syntax error: " + strings.TrimPrefix(de.Error(), "toml: "),
				cause: de,
			},
		}}
	}
	return []*Error{{Err: &problem{kind: ErrSyntax, msg: "decode: " + err.Error(), cause: err}}}
}

// docIndex maps the keys of a TOML document to their lines and values' TOML
// types, for error messages and type checks.
type docIndex struct {
	keys  []*keyInfo          // in document order
	byKey map[string]*keyInfo // dotted key -> last definition
	nl    []int               // offsets of the newlines in the document
	// blocks are the blocks of each top-level array of tables
	// ([[services]]), in document order.
	blocks map[string][]*blockInfo
}

// blockInfo is one [[name]] block: its header's line and its keys' lines.
type blockInfo struct {
	line int
	keys map[string]int // key within the block -> line
}

// keyInfo is one key defined by the document: a [table], [[array table]],
// or key = value (with the keys of inline tables flattened).
type keyInfo struct {
	parts []string
	line  int
	kind  unstable.Kind // the value's kind, or Table / ArrayTable for headers
	str   string        // the value of a String
	elems []elemInfo    // the elements of an Array
}

type elemInfo struct {
	line int
	kind unstable.Kind
}

// indexDocument parses data with go-toml's unstable parser. A syntax error
// comes back as an *Error without File.
func indexDocument(data []byte) (*docIndex, *Error) {
	idx := &docIndex{byKey: map[string]*keyInfo{}, blocks: map[string][]*blockInfo{}}
	for i, b := range data {
		if b == '\n' {
			idx.nl = append(idx.nl, i)
		}
	}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	var block *blockInfo // the [[name]] block being read
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			it := e.Key()
			table, _ = idx.keyParts(nil, &it)
			line := idx.lineOfNode(e.Child())
			idx.add(&keyInfo{parts: table, line: line, kind: e.Kind})
			block = nil
			if e.Kind == unstable.ArrayTable && len(table) == 1 {
				block = &blockInfo{line: line, keys: map[string]int{}}
				idx.blocks[table[0]] = append(idx.blocks[table[0]], block)
			}
		case unstable.KeyValue:
			n := len(idx.keys)
			idx.addKeyValue(table, e)
			for _, k := range idx.keys[n:] {
				if block != nil && len(k.parts) > 1 {
					block.keys[formatKey(k.parts[1:])] = k.line
				}
			}
		default:
		}
	}
	if err := p.Error(); err != nil {
		var perr *unstable.ParserError
		if !errors.As(err, &perr) {
			return nil, &Error{Err: &problem{kind: ErrSyntax, msg: "syntax error: " + err.Error(), cause: err}}
		}
		// The highlight is a subslice of data: its capacity tells where it
		// starts. Clamp in case it is not.
		off := cap(data) - cap(perr.Highlight)
		off = max(0, min(off, len(data)))
		return nil, &Error{
			Line: idx.lineAt(off),
			Key:  formatKey(perr.Key),
			Err:  &problem{kind: ErrSyntax, msg: "syntax error: " + perr.Message},
		}
	}
	return idx, nil
}

// keyParts appends the parts of a (dotted) key to prefix, in a new slice,
// and returns it with the first key node.
func (idx *docIndex) keyParts(prefix []string, it *unstable.Iterator) ([]string, *unstable.Node) {
	parts := append([]string(nil), prefix...)
	var first *unstable.Node
	for it.Next() {
		if first == nil {
			first = it.Node()
		}
		parts = append(parts, string(it.Node().Data))
	}
	return parts, first
}

func (idx *docIndex) addKeyValue(prefix []string, kv *unstable.Node) {
	it := kv.Key()
	parts, first := idx.keyParts(prefix, &it)
	v := kv.Value()
	k := &keyInfo{parts: parts, line: idx.lineOfNode(first), kind: v.Kind}
	idx.add(k)
	switch v.Kind {
	case unstable.String:
		k.str = string(v.Data)
	case unstable.Array:
		ch := v.Children()
		for ch.Next() {
			n := ch.Node()
			if n.Kind == unstable.Comment {
				continue
			}
			line := k.line
			if n.Kind != unstable.Array { // arrays carry no position
				line = idx.lineOfNode(n)
			}
			k.elems = append(k.elems, elemInfo{line: line, kind: n.Kind})
		}
	case unstable.InlineTable:
		ch := v.Children()
		for ch.Next() {
			if n := ch.Node(); n.Kind == unstable.KeyValue {
				idx.addKeyValue(parts, n)
			}
		}
	default:
	}
}

func (idx *docIndex) add(k *keyInfo) {
	idx.keys = append(idx.keys, k)
	idx.byKey[formatKey(k.parts)] = k
}

func (idx *docIndex) lineOfNode(n *unstable.Node) int {
	if n == nil {
		return 0
	}
	return idx.lineAt(int(n.Raw.Offset))
}

// lineAt returns the 1-based line of a byte offset.
func (idx *docIndex) lineAt(off int) int {
	return 1 + sort.SearchInts(idx.nl, off)
}

// line returns the line of a dotted key, or of element elem (1-based) of its
// list, or 0 if the document does not set the key.
func (idx *docIndex) line(key string, elem int) int {
	table, rest, _ := strings.Cut(key, ".")
	if bs := idx.blocks[table]; elem > 0 && elem <= len(bs) {
		if l, ok := bs[elem-1].keys[rest]; ok {
			return l
		}
		return bs[elem-1].line
	}
	k := idx.byKey[key]
	if k == nil {
		return 0
	}
	if elem > 0 && elem <= len(k.elems) {
		return k.elems[elem-1].line
	}
	return k.line
}

// fullKey returns the dotted key defined at line that ends with partial:
// go-toml reports some keys relative to their table.
func (idx *docIndex) fullKey(line int, partial []string) string {
	for _, k := range idx.keys {
		if k.line == line && len(k.parts) >= len(partial) &&
			slices.Equal(k.parts[len(k.parts)-len(partial):], partial) {
			return formatKey(k.parts)
		}
	}
	return formatKey(partial)
}

// checkTypes compares every key of the document with the TOML type its
// field wants. Keys the schema lacks are left to the strict decoder.
func (idx *docIndex) checkTypes() []*Error {
	s := schema()
	var errs []*Error
	seen := map[string]bool{}
	report := func(key string, line int, kind error, msg string) {
		if seen[key] && s.leaves[key] != nil {
			return
		}
		seen[key] = true
		errs = append(errs, &Error{Line: line, Key: key, Err: &problem{kind: kind, msg: msg}})
	}
	for _, k := range idx.keys {
		for j := range k.parts {
			key := formatKey(k.parts[:j+1])
			last := j == len(k.parts)-1
			if f := s.leaves[key]; f != nil && f.elems != nil {
				checkBlockKey(f, k, last, report)
				break
			}
			if f := s.leaves[key]; f != nil {
				if !last {
					report(key, k.line, ErrType, "want "+typeName(f.typ)+", got a table")
				} else if err := checkLeaf(f, k); err != nil {
					report(key, err.line, err.kind, err.msg)
				}
				break
			}
			if !s.tables[key] {
				break // unknown: the decoder reports it
			}
			if last && k.kind != unstable.Table && k.kind != unstable.InlineTable {
				report(key, k.line, ErrType, "want a table, got "+kindName(k.kind))
			}
		}
	}
	return errs
}

// checkBlockKey checks a key of an array of tables (k.parts[0] is f):
// its header must be [[name]], and each key in a block of the right type.
// Keys the blocks lack are left to the strict decoder.
func checkBlockKey(f *field, k *keyInfo, last bool, report func(key string, line int, kind error, msg string)) {
	if last {
		if k.kind != unstable.ArrayTable && (k.kind != unstable.Array || len(k.elems) > 0) {
			report(f.key, k.line, ErrType, fmt.Sprintf("want [[%s]] blocks, got %s", f.key, kindName(k.kind)))
		}
		return
	}
	ef := f.elems[k.parts[1]]
	if ef == nil {
		return
	}
	key := f.key + "." + k.parts[1]
	if len(k.parts) > 2 {
		report(key, k.line, ErrType, "want "+typeName(ef.typ)+", got a table")
		return
	}
	if err := checkLeaf(ef, k); err != nil {
		report(key, err.line, err.kind, err.msg)
	}
}

type leafError struct {
	line int
	kind error
	msg  string
}

func checkLeaf(f *field, k *keyInfo) *leafError {
	want := unstable.String
	switch {
	case f.typ == durationType:
	case f.typ.Kind() == reflect.Bool:
		want = unstable.Bool
	case f.typ.Kind() == reflect.Int, f.typ.Kind() == reflect.Int64:
		want = unstable.Integer
	case f.typ.Kind() == reflect.Slice:
		want = unstable.Array
	default:
	}
	if k.kind != want {
		return &leafError{k.line, ErrType, fmt.Sprintf("want %s, got %s", typeName(f.typ), kindName(k.kind))}
	}
	if f.typ == durationType {
		if _, err := parseDuration(k.str); err != nil {
			return &leafError{k.line, ErrValue, err.Error()}
		}
	}
	for i, e := range k.elems {
		if e.kind != unstable.String {
			return &leafError{e.line, ErrType, fmt.Sprintf("want %s, element %d is %s", typeName(f.typ), i+1, kindName(e.kind))}
		}
	}
	return nil
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return `a duration string such as "30s"`
	case t.Kind() == reflect.Bool:
		return "a boolean (true or false)"
	case t.Kind() == reflect.Int, t.Kind() == reflect.Int64:
		return "an integer"
	case t.Kind() == reflect.Slice:
		return "an array of strings"
	default:
		return "a string"
	}
}

func kindName(k unstable.Kind) string {
	switch k {
	case unstable.String:
		return "a string"
	case unstable.Bool:
		return "a boolean"
	case unstable.Integer:
		return "an integer"
	case unstable.Float:
		return "a float"
	case unstable.Array:
		return "an array"
	case unstable.Table, unstable.InlineTable:
		return "a table"
	case unstable.ArrayTable:
		return "an array of tables"
	case unstable.DateTime, unstable.LocalDateTime, unstable.LocalDate, unstable.LocalTime:
		return "a date or time"
	default:
		return k.String()
	}
}

// formatKey writes a key as TOML would: dotted, with the parts that are not
// bare keys quoted, so that ["client.hops"] and ["client", "hops"] differ.
func formatKey(parts []string) string {
	var b strings.Builder
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('.')
		}
		if isBareKey(p) {
			b.WriteString(p)
		} else {
			b.WriteString(strconv.Quote(p))
		}
	}
	return b.String()
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}
