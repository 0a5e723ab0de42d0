// Package strictjson reads untrusted JSON strictly, closing the gaps
// encoding/json leaves: a document must be exactly one value (nothing
// after it), no object may name a member twice at any depth (names
// compared after unescaping: readers differ on which of two equal names
// they take), and nesting may be bounded. It is json.Valid and then one
// pass over the bytes that decodes no value.
package strictjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"
)

// Check reports whether doc is one JSON value, nested at most maxDepth
// containers deep (0: no bound), with no member name twice in one object.
func Check(doc []byte, maxDepth int) error {
	_, err := Members(doc, maxDepth)
	return err
}

// Members is Check that also returns the top-level members of doc when it
// is an object (nil otherwise): each value's exact bytes, as json.Unmarshal
// into a map[string]json.RawMessage would hold them.
func Members(doc []byte, maxDepth int) (map[string]json.RawMessage, error) {
	if !json.Valid(doc) {
		var v any
		if err := json.Unmarshal(doc, &v); err != nil { // says where and why
			return nil, fmt.Errorf("not valid JSON: %w", err)
		}
		return nil, fmt.Errorf("not valid JSON: not one value")
	}
	var (
		stack    []frame
		members  map[string]json.RawMessage
		name     string // the top-level member being read
		valStart int
	)
	endMember := func(i int) { members[name] = bytes.TrimSpace(doc[valStart:i]) }
	for i := 0; i < len(doc); i++ {
		switch doc[i] {
		case '{', '[':
			if maxDepth > 0 && len(stack) == maxDepth {
				return nil, fmt.Errorf("nested deeper than %d", maxDepth)
			}
			if doc[i] == '{' && len(stack) == 0 {
				members = map[string]json.RawMessage{}
			}
			stack = append(stack, frame{object: doc[i] == '{', wantName: doc[i] == '{'})
		case '}', ']':
			if len(stack) == 1 && members != nil && valStart > 0 {
				endMember(i)
			}
			stack = stack[:len(stack)-1]
		case ':':
			if len(stack) == 1 {
				valStart = i + 1
			}
		case ',':
			top := len(stack) - 1
			if stack[top].object {
				stack[top].wantName = true
			}
			if top == 0 && members != nil {
				endMember(i)
			}
		case '"':
			start, escaped := i, false
			for i++; doc[i] != '"'; i++ { // doc is valid: the string ends
				if doc[i] == '\\' {
					escaped = true
					i++ // the escaped character, a quote included
				}
			}
			n := len(stack)
			if n == 0 || !stack[n-1].object || !stack[n-1].wantName {
				continue // a value, not a member name
			}
			f := &stack[n-1]
			f.wantName = false
			s := string(doc[start+1 : i])
			if escaped || !utf8.ValidString(s) {
				if err := json.Unmarshal(doc[start:i+1], &s); err != nil {
					return nil, err
				}
			}
			if f.add(s) {
				return nil, fmt.Errorf("duplicate key %q", s)
			}
			if n == 1 {
				name = s
			}
		}
	}
	return members, nil
}

// frame is one open object or array.
type frame struct {
	object   bool
	wantName bool // the next string of this object is a member name
	names    []string
	set      map[string]struct{} // names, once there are many
}

// add records name and reports whether the object already had it.
func (f *frame) add(name string) bool {
	const linear = 16
	if f.set == nil && len(f.names) < linear {
		if slices.Contains(f.names, name) {
			return true
		}
		f.names = append(f.names, name)
		return false
	}
	if f.set == nil {
		f.set = make(map[string]struct{}, 2*linear)
		for _, n := range f.names {
			f.set[n] = struct{}{}
		}
		f.names = nil
	}
	if _, ok := f.set[name]; ok {
		return true
	}
	f.set[name] = struct{}{}
	return false
}
