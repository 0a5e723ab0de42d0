package dcap

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/trustbound/trustbound/internal/strictjson"
)

// Intel's collateral is JSON; encoding/json alone matches keys
// case-insensitively, lets a duplicate key win silently and ignores unknown
// keys. These helpers read it strictly: one value, no duplicate keys at any
// depth, exact case-sensitive keys, every required key present and no key
// that is not known.

// maxJSONDepth bounds nesting (Intel's documents nest 5 deep).
const maxJSONDepth = 16

// checkJSON reports whether data is exactly one JSON value, nested at most
// maxJSONDepth deep, with no duplicate object keys.
func checkJSON(data []byte) error { return strictjson.Check(data, maxJSONDepth) }

// fields is a JSON object's members, read by exact key.
type fields struct {
	what string
	m    map[string]json.RawMessage
}

// object decodes raw (checked by checkJSON) as an object whose keys are all
// in required or optional and which has every key of required.
func object(raw json.RawMessage, what string, required, optional []string) (*fields, error) {
	var m map[string]json.RawMessage
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &m) != nil {
		return nil, fmt.Errorf("%s is not a JSON object", what)
	}
	for k := range m {
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			return nil, fmt.Errorf("%s has unknown key %q", what, k)
		}
	}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			return nil, fmt.Errorf("%s has no %q", what, k)
		}
	}
	return &fields{what: what, m: m}, nil
}

func (f *fields) has(key string) bool { _, ok := f.m[key]; return ok }

func (f *fields) raw(key string) json.RawMessage { return f.m[key] }

func (f *fields) name(key string) string { return f.what + "." + key }

func (f *fields) str(key string) (string, error) {
	raw := f.m[key]
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("%s is not a string", f.name(key))
	}
	return s, nil
}

// uint reads a non-negative integer no larger than max, written without
// fraction or exponent.
func (f *fields) uint(key string, max uint64) (uint64, error) {
	raw := string(f.m[key])
	v, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || v > max {
		return 0, fmt.Errorf("%s is %s, want an integer 0..%d", f.name(key), orEmpty(raw), max)
	}
	return v, nil
}

// hexBytes reads a string of exactly len(dst) hex-encoded bytes (either
// case) into dst.
func (f *fields) hexBytes(key string, dst []byte) error {
	s, err := f.str(key)
	if err != nil {
		return err
	}
	if len(s) != 2*len(dst) {
		return fmt.Errorf("%s has %d hex digits, want %d", f.name(key), len(s), 2*len(dst))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("%s is not hex", f.name(key))
	}
	return nil
}

// date reads an RFC 3339 date-time in UTC to the second, as Intel writes
// them ("2025-06-19T10:56:11Z"): no fraction, no offset.
func (f *fields) date(key string) (time.Time, error) {
	s, err := f.str(key)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil || t.UTC().Format(time.RFC3339) != s {
		return time.Time{}, fmt.Errorf("%s is %q, want an RFC 3339 UTC date-time", f.name(key), s)
	}
	return t, nil
}

// array reads a JSON array's elements.
func (f *fields) array(key string) ([]json.RawMessage, error) {
	raw := f.m[key]
	var a []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &a) != nil {
		return nil, fmt.Errorf("%s is not an array", f.name(key))
	}
	return a, nil
}

// strings reads an array of non-empty strings.
func (f *fields) strings(key string) ([]string, error) {
	elems, err := f.array(key)
	if err != nil {
		return nil, err
	}
	var out []string // nil for an empty list
	for i, e := range elems {
		var s string
		if len(e) == 0 || e[0] != '"' || json.Unmarshal(e, &s) != nil || s == "" {
			return nil, fmt.Errorf("%s[%d] is not a non-empty string", f.name(key), i)
		}
		out = append(out, s)
	}
	return out, nil
}

func orEmpty(s string) string {
	if s == "" {
		return "missing"
	}
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

// signedBody reads a served body {"<key>":{…},"signature":"<hex r||s>"}:
// the exact bytes of the key's value and the signature.
func signedBody(body []byte, key string) (json.RawMessage, [64]byte, error) {
	var sig [64]byte
	if err := checkJSON(body); err != nil {
		return nil, sig, err
	}
	top, err := object(body, "body", []string{key, "signature"}, nil)
	if err != nil {
		return nil, sig, err
	}
	if err := top.hexBytes("signature", sig[:]); err != nil {
		return nil, sig, err
	}
	return top.raw(key), sig, nil
}
