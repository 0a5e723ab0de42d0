package azure

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/trustbound/trustbound/attest"
)

// encoding/json alone is not strict enough for evidence: it matches field
// names case-insensitively, lets a duplicate key silently win, and ignores
// trailing data. The helpers here close those gaps: checkJSON refuses
// duplicate keys anywhere and anything after the one value, and object
// decodes an object into its exact, case-sensitive keys.

// checkJSON reports whether data is exactly one JSON value with no
// duplicate object keys at any depth.
func checkJSON(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := checkValue(dec); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// checkValue consumes one value from dec, refusing duplicate keys.
func checkValue(dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := k.(string) // the decoder only yields string keys
			if seen[key] {
				return fmt.Errorf("duplicate key %q", key)
			}
			seen[key] = true
			if err := checkValue(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token() // '}'
		return err
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token() // ']'
		return err
	}
	return nil
}

// object decodes a JSON object (already checked by checkJSON) into its
// members, requiring every key in required and allowing only those and
// optional. what names the object in errors.
func object(data []byte, what string, required, optional []string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: %s is not a JSON object", attest.ErrMalformed, what)
	}
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

// jsonString decodes a JSON string.
func jsonString(raw json.RawMessage, what string) (string, error) {
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
