package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"
)

// UniqueNames reports an error if doc is not one valid JSON value, or if
// an object in it, at any depth, names a member twice (names compared
// after unescaping, as a decoder reads them). Readers differ on which of
// two equal names they take, so a document that repeats one says
// different things to different readers.
//
// It is one pass over the bytes after json.Valid, decoding no values.
func UniqueNames(doc []byte) error {
	if !json.Valid(doc) {
		return errors.New("not valid JSON")
	}
	var stack []jsonFrame
	for i := 0; i < len(doc); i++ {
		switch doc[i] {
		case '{':
			stack = append(stack, jsonFrame{object: true, wantName: true})
		case '[':
			stack = append(stack, jsonFrame{})
		case '}', ']':
			stack = stack[:len(stack)-1]
		case ',':
			if top := len(stack) - 1; stack[top].object {
				stack[top].wantName = true
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
			name := string(doc[start+1 : i])
			if escaped || !utf8.ValidString(name) {
				if err := json.Unmarshal(doc[start:i+1], &name); err != nil {
					return err
				}
			}
			if f.add(name) {
				return fmt.Errorf("member %q appears twice in one object", name)
			}
		}
	}
	return nil
}

// jsonFrame is one open object or array of UniqueNames.
type jsonFrame struct {
	object   bool
	wantName bool // the next string of this object is a member name
	names    []string
	set      map[string]struct{} // names, once there are many
}

// add records name and reports whether the object already had it.
func (f *jsonFrame) add(name string) bool {
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
