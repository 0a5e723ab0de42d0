package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxSize is the largest manifest Parse and Load accept, in bytes: 16 MiB,
// room for more than 10,000 workloads (the smallest valid workload takes
// about 200 bytes of JSON, a commented YAML one about 1 KiB). The
// coordinator reads a manifest body of at most this size (PUT
// /v1/manifest; api.MaxManifestBody).
const MaxSize = 16 << 20

// ErrTooLarge is wrapped by the error for a manifest over MaxSize.
var ErrTooLarge = errors.New("manifest too large")

// ParseError says where and why a manifest does not parse.
type ParseError struct {
	// Line is the 1-based line of the offending token, 0 when unknown.
	Line int
	// Path is the JSON path of the offending value, "" for the document.
	Path string
	Msg  string
}

func (e *ParseError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Parse reads a manifest in JSON (a document whose first non-blank byte is
// '{') or YAML. The schema is the json tags of Manifest and the types below
// it, matched exactly (no case folding): unknown fields, duplicate keys,
// values of the wrong type, bad hex, out-of-range integers and trailing data
// are refused, and so are YAML anchors, aliases, merge keys, non-string keys,
// custom tags and multiple documents. In YAML, a plain scalar that YAML
// would read as a number is taken as its text where the schema wants a
// string, so unquoted hex such as 1111…11 reads as written. Empty lists and
// empty hex read as absent (nil).
//
// Parse does not validate; see Validate and Load.
func Parse(data []byte) (*Manifest, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), MaxSize)
	}
	js := data
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		if err := checkJSON(data); err != nil {
			return nil, err
		}
	} else {
		var err error
		if js, err = yamlToJSON(data); err != nil {
			return nil, err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, &ParseError{Msg: err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ParseError{Msg: "trailing data after the manifest"}
	}
	m.normalize()
	return &m, nil
}

// Load reads, parses and validates the manifest at path, and returns it
// with its exact bytes (see Digest).
func Load(path string) (*Manifest, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(raw) > MaxSize {
		return nil, nil, fmt.Errorf("%s: %w: more than %d bytes", path, ErrTooLarge, MaxSize)
	}
	m, err := Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := m.Validate(); err != nil {
		return nil, nil, fmt.Errorf("%s: invalid manifest:\n%w", path, err)
	}
	return m, raw, nil
}

// Digest is the manifest's identity: the lower-case hex SHA-256 of its
// exact bytes, as stored and as signed by owners.
func Digest(raw []byte) string {
	h := sha256.Sum256(raw)
	return hex.EncodeToString(h[:])
}

// normalize makes empty lists and hex nil, so that a manifest and its JSON
// re-encoding are the same value.
func (m *Manifest) normalize() {
	m.Owners = nilIfEmpty(m.Owners)
	m.Workloads = nilIfEmpty(m.Workloads)
	m.Secrets = nilIfEmpty(m.Secrets)
	for i := range m.Workloads {
		m.Workloads[i].Policies = nilIfEmpty(m.Workloads[i].Policies)
		r := &m.Workloads[i].Reference
		r.Measurements = nilIfEmpty(r.Measurements)
		for j := range r.Measurements {
			r.Measurements[j] = nilIfEmpty(r.Measurements[j])
		}
		r.Signer = nilIfEmpty(r.Signer)
		r.HostData = nilIfEmpty(r.HostData)
		r.AcceptedTCB = nilIfEmpty(r.AcceptedTCB)
	}
	for i := range m.Secrets {
		s := &m.Secrets[i]
		s.DNSNames = nilIfEmpty(s.DNSNames)
		s.GrantedTo = nilIfEmpty(s.GrantedTo)
	}
}

func nilIfEmpty[S ~[]E, E any](s S) S {
	if len(s) == 0 {
		return nil
	}
	return s
}

// checkJSON walks a JSON document against the schema before it is decoded:
// exact keys, no duplicates, the right types, nothing after it.
func checkJSON(data []byte) error {
	w := &jsonWalker{data: data, dec: json.NewDecoder(bytes.NewReader(data))}
	w.dec.UseNumber()
	tok, err := w.token()
	if err != nil {
		return err
	}
	if tok == nil {
		return w.fail("", "the manifest must be an object, not null")
	}
	if err := w.value(tok, manifestShape, ""); err != nil {
		return err
	}
	if _, err := w.dec.Token(); err != io.EOF {
		return w.fail("", "trailing data after the manifest")
	}
	return nil
}

type jsonWalker struct {
	data []byte
	dec  *json.Decoder
}

func (w *jsonWalker) fail(path, format string, args ...any) error {
	return &ParseError{Line: lineAt(w.data, w.dec.InputOffset()), Path: path, Msg: fmt.Sprintf(format, args...)}
}

func (w *jsonWalker) token() (json.Token, error) {
	tok, err := w.dec.Token()
	if err == nil {
		return tok, nil
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return nil, &ParseError{Line: lineAt(w.data, se.Offset), Msg: "JSON: " + se.Error()}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, &ParseError{Line: lineAt(w.data, int64(len(w.data))), Msg: "JSON: unexpected end of input"}
	}
	return nil, &ParseError{Msg: "JSON: " + err.Error()}
}

// value checks the value that starts with tok; null is always allowed and
// means absent.
func (w *jsonWalker) value(tok json.Token, s *shape, path string) error {
	if tok == nil {
		return nil
	}
	switch s.kind {
	case kObject:
		if tok != json.Delim('{') {
			return w.fail(path, "want an object, got %s", jsonKind(tok))
		}
		seen := make(map[string]bool)
		present := make(map[string]bool)
		for w.dec.More() {
			kt, err := w.token()
			if err != nil {
				return err
			}
			key := kt.(string) // the decoder only yields strings as keys
			fs, ok := s.fields[key]
			if !ok {
				return w.fail(path, "unknown field %q", key)
			}
			if seen[key] {
				return w.fail(path, "duplicate key %q", key)
			}
			seen[key] = true
			vt, err := w.token()
			if err != nil {
				return err
			}
			if vt != nil {
				present[key] = true
				if other := s.exclusive(key); other != "" && present[other] {
					return w.fail(path, "%s", exclusiveMsg(key, other))
				}
			}
			if err := w.value(vt, fs, joinPath(path, key)); err != nil {
				return err
			}
		}
		_, err := w.token() // '}'
		return err
	case kArray:
		if tok != json.Delim('[') {
			return w.fail(path, "want an array, got %s", jsonKind(tok))
		}
		for i := 0; w.dec.More(); i++ {
			vt, err := w.token()
			if err != nil {
				return err
			}
			if err := w.value(vt, s.elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		_, err := w.token() // ']'
		return err
	case kString, kHex:
		str, ok := tok.(string)
		if !ok {
			return w.fail(path, "want a string, got %s", jsonKind(tok))
		}
		if s.kind == kHex {
			if msg := checkHex(str); msg != "" {
				return w.fail(path, "%s", msg)
			}
		}
		return nil
	case kInt:
		n, ok := tok.(json.Number)
		if !ok {
			return w.fail(path, "want an integer, got %s", jsonKind(tok))
		}
		if msg := s.checkInt(string(n)); msg != "" {
			return w.fail(path, "%s", msg)
		}
		return nil
	case kBool:
		if _, ok := tok.(bool); !ok {
			return w.fail(path, "want true or false, got %s", jsonKind(tok))
		}
		return nil
	}
	panic("manifest: unhandled shape kind")
}

func jsonKind(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return 1 + bytes.Count(data[:off], []byte{'\n'})
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func exclusiveMsg(key, other string) string {
	return fmt.Sprintf("set either %q or %q, not both", other, key)
}

// checkHex returns why s is not even-length hex, or "".
func checkHex(s string) string {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		return "write hex digits without the 0x prefix"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return fmt.Sprintf("not hex: byte %q at position %d", c, i)
		}
	}
	if len(s)%2 != 0 {
		return fmt.Sprintf("hex has an odd number of digits (%d)", len(s))
	}
	return ""
}

// yamlToJSON converts one YAML document to JSON, checking it against the
// schema on the way.
func yamlToJSON(data []byte) ([]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &ParseError{Msg: "empty manifest"}
		}
		return nil, &ParseError{Msg: err.Error()}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, &ParseError{Msg: err.Error()}
		}
		return nil, &ParseError{Line: extra.Line, Msg: "more than one YAML document; a manifest is one document"}
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, &ParseError{Msg: "empty manifest"}
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, &ParseError{Line: root.Line, Msg: "the manifest must be a mapping, not null"}
	}
	var c yamlConv
	if err := c.node(root, manifestShape, ""); err != nil {
		return nil, err
	}
	return c.buf.Bytes(), nil
}

type yamlConv struct{ buf bytes.Buffer }

func yamlFail(n *yaml.Node, path, format string, args ...any) error {
	return &ParseError{Line: n.Line, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// refuseIndirection refuses the YAML features that make one place in the
// text stand for another.
func refuseIndirection(n *yaml.Node, path string) error {
	if n.Kind == yaml.AliasNode {
		return yamlFail(n, path, "YAML alias *%s not allowed: write each value out", n.Value)
	}
	if n.Anchor != "" {
		return yamlFail(n, path, "YAML anchor &%s not allowed: write each value out", n.Anchor)
	}
	return nil
}

func (c *yamlConv) node(n *yaml.Node, s *shape, path string) error {
	if err := refuseIndirection(n, path); err != nil {
		return err
	}
	tag := n.ShortTag()
	if n.Kind == yaml.ScalarNode && tag == "!!null" {
		c.buf.WriteString("null")
		return nil
	}
	switch s.kind {
	case kObject:
		if n.Kind != yaml.MappingNode || tag != "!!map" {
			return yamlFail(n, path, "want a mapping, got %s", yamlKind(n))
		}
		c.buf.WriteByte('{')
		seen := make(map[string]*yaml.Node)
		present := make(map[string]bool)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if err := refuseIndirection(k, path); err != nil {
				return err
			}
			if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				return yamlFail(k, path, "YAML merge key << not allowed: write each value out")
			}
			if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
				return yamlFail(k, path, "keys must be strings, got %s", yamlKind(k))
			}
			key := k.Value
			fs, ok := s.fields[key]
			if !ok {
				return yamlFail(k, path, "unknown field %q", key)
			}
			if first, dup := seen[key]; dup {
				return yamlFail(k, path, "duplicate key %q (first on line %d)", key, first.Line)
			}
			seen[key] = k
			if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!null" {
				present[key] = true
				if other := s.exclusive(key); other != "" && present[other] {
					return yamlFail(k, path, "%s", exclusiveMsg(key, other))
				}
			}
			if i > 0 {
				c.buf.WriteByte(',')
			}
			writeJSONString(&c.buf, key)
			c.buf.WriteByte(':')
			if err := c.node(v, fs, joinPath(path, key)); err != nil {
				return err
			}
		}
		c.buf.WriteByte('}')
		return nil
	case kArray:
		if n.Kind != yaml.SequenceNode || tag != "!!seq" {
			return yamlFail(n, path, "want a sequence, got %s", yamlKind(n))
		}
		c.buf.WriteByte('[')
		for i, e := range n.Content {
			if i > 0 {
				c.buf.WriteByte(',')
			}
			if err := c.node(e, s.elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		c.buf.WriteByte(']')
		return nil
	case kString, kHex:
		if n.Kind != yaml.ScalarNode {
			return yamlFail(n, path, "want a string, got %s", yamlKind(n))
		}
		switch tag {
		case "!!str", "!!int", "!!float", "!!timestamp":
		default:
			return yamlFail(n, path, "want a string, got %s", yamlKind(n))
		}
		if s.kind == kHex {
			if msg := checkHex(n.Value); msg != "" {
				return yamlFail(n, path, "%s", msg)
			}
		}
		writeJSONString(&c.buf, n.Value)
		return nil
	case kInt:
		if n.Kind != yaml.ScalarNode || tag != "!!int" {
			return yamlFail(n, path, "want an integer, got %s", yamlKind(n))
		}
		if msg := s.checkInt(n.Value); msg != "" {
			return yamlFail(n, path, "%s", msg)
		}
		c.buf.WriteString(n.Value)
		return nil
	case kBool:
		var b bool
		if n.Kind != yaml.ScalarNode || tag != "!!bool" || n.Decode(&b) != nil {
			return yamlFail(n, path, "want true or false, got %s", yamlKind(n))
		}
		c.buf.WriteString(strconv.FormatBool(b))
		return nil
	}
	panic("manifest: unhandled shape kind")
}

func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.AliasNode:
		return "an alias"
	}
	switch t := n.ShortTag(); t {
	case "!!str", "!!timestamp":
		return fmt.Sprintf("the string %q", n.Value)
	case "!!int", "!!float":
		return "the number " + n.Value
	case "!!bool":
		return "the boolean " + n.Value
	case "!!null":
		return "null"
	default:
		return "a value tagged " + t
	}
}

func writeJSONString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a string always marshals
	buf.Write(b)
}
