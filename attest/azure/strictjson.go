package azure

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/internal/strictjson"
)

// encoding/json alone is not strict enough for evidence: it matches field
// names case-insensitively, lets a duplicate key silently win, and ignores
// trailing data. The helpers here close those gaps: checkJSON refuses
// duplicate keys anywhere and anything after the one value, and object
// decodes an object into its exact, case-sensitive keys.

// checkJSON reports whether data is exactly one JSON value with no
// duplicate object keys at any depth (keys compared after unescaping).
func checkJSON(data []byte) error { return strictjson.Check(data, 0) }

// scanJSON is checkJSON that also returns the members of data when it is
// an object (nil otherwise), each value's exact bytes.
func scanJSON(data []byte) (map[string]json.RawMessage, error) { return strictjson.Members(data, 0) }

// object decodes a JSON object (already checked by checkJSON) into its
// members, requiring every key in required and allowing only those and
// optional. what names the object in errors.
func object(data []byte, what string, required, optional []string) (map[string]json.RawMessage, error) {
	m, err := scanJSON(data)
	if err != nil || m == nil {
		return nil, fmt.Errorf("%w: %s is not a JSON object", attest.ErrMalformed, what)
	}
	return members(m, what, required, optional)
}

// members checks the members of an object: every key in required, and
// only those and optional. what names the object in errors.
func members(m map[string]json.RawMessage, what string, required, optional []string) (map[string]json.RawMessage, error) {
	for k := range m {
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			return nil, fmt.Errorf("%w: %s has unknown field %q (want %s)", attest.ErrMalformed, what, k, strings.Join(append(slices.Clone(required), optional...), ", "))
		}
	}
	for _, k := range required {
		if _, ok := m[k]; !ok {
			return nil, fmt.Errorf("%w: %s has no field %q", attest.ErrMalformed, what, k)
		}
	}
	return m, nil
}

// jsonString decodes a JSON string. A string without escapes, control
// characters or invalid UTF-8 (base64 and hex always) is its bytes.
func jsonString(raw json.RawMessage, what string) (string, error) {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' {
		body := raw[1 : n-1]
		plain := utf8.Valid(body)
		for _, ch := range body {
			if ch == '\\' || ch == '"' || ch < 0x20 {
				plain = false
				break
			}
		}
		if plain {
			return string(body), nil
		}
	}
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("%w: %s is not a JSON string", attest.ErrMalformed, what)
	}
	return s, nil
}

// jsonArray decodes a JSON array into its elements.
func jsonArray(raw json.RawMessage, what string) ([]json.RawMessage, error) {
	var a []json.RawMessage
	if len(raw) == 0 || raw[0] != '[' || json.Unmarshal(raw, &a) != nil {
		return nil, fmt.Errorf("%w: %s is not a JSON array", attest.ErrMalformed, what)
	}
	return a, nil
}

// jsonBytes decodes a JSON array of integers 0..255 (how Rust's serde writes
// a Vec<u8>) into bytes.
func jsonBytes(raw json.RawMessage, what string) ([]byte, error) {
	elems, err := jsonArray(raw, what)
	if err != nil {
		return nil, err
	}
	b := make([]byte, len(elems))
	for i, e := range elems {
		v, err := strconv.ParseUint(string(e), 10, 8)
		if err != nil {
			return nil, fmt.Errorf("%w: %s[%d] is not a byte (an integer 0..255)", attest.ErrMalformed, what, i)
		}
		b[i] = byte(v)
	}
	return b, nil
}
