package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/manifest"
)

// PinHostData returns the manifest raw (YAML or JSON, as manifest.Parse
// reads it) with the hostData of workload set to hd, and every other byte
// as it was: comments and layout stay. An existing hostData value is
// replaced in place; a missing one is added as the first key of the
// workload's reference (block YAML), or the manifest is re-encoded (JSON,
// which has no comments to keep). The result is checked: it parses, and
// it is the input manifest with only that hostData changed.
//
// Pinning changes the manifest's digest: an owner must sign and upload it
// (trustbound manifest set) before the coordinator accepts the workload.
func PinHostData(raw []byte, workload string, hd attest.Hex) ([]byte, error) {
	m, err := manifest.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	w, ok := m.Workload(workload)
	if !ok {
		return nil, fmt.Errorf("manifest: no workload %q", workload)
	}
	if len(hd) == 0 {
		return nil, errors.New("manifest: no hostData to pin")
	}
	w.Reference.HostData = hd
	want, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out, err := splice(raw, workload, hd.String())
	if errors.Is(err, errReencode) {
		out, err = json.MarshalIndent(m, "", "  ")
		out = append(out, '\n')
	}
	if err != nil {
		return nil, err
	}
	got, err := manifest.Parse(out)
	if err != nil {
		return nil, fmt.Errorf("manifest: after pinning hostData it does not parse: %w", err)
	}
	gotJSON, err := json.Marshal(got)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(gotJSON, want) {
		return nil, errors.New("manifest: pinning hostData would change more than hostData; set it by hand")
	}
	return out, nil
}

var errReencode = errors.New("re-encode")

// splice edits the YAML text of raw in place.
func splice(raw []byte, workload, hexValue string) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, errors.New("manifest: not one document")
	}
	root := doc.Content[0]
	isJSON := root.Style&yaml.FlowStyle != 0
	ref := findReference(root, workload)
	if ref == nil {
		return nil, fmt.Errorf("manifest: workload %q has no reference mapping to pin hostData in", workload)
	}
	quoted := `"` + hexValue + `"`
	for i := 0; i+1 < len(ref.Content); i += 2 {
		k, v := ref.Content[i], ref.Content[i+1]
		if k.Value != "hostData" {
			continue
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
			return nil, fmt.Errorf("manifest: line %d: hostData of %s is not a value to replace; write hostData: \"\" and try again", k.Line, workload)
		}
		var text string
		switch {
		case v.Style&yaml.DoubleQuotedStyle != 0:
			text = `"` + v.Value + `"`
		case v.Style&yaml.SingleQuotedStyle != 0:
			text = `'` + v.Value + `'`
		case v.Style == 0:
			text = v.Value
		default:
			return nil, fmt.Errorf("manifest: line %d: write hostData of %s as a quoted string", v.Line, workload)
		}
		off, ok := offsetOf(raw, v.Line, v.Column)
		if !ok || !bytes.HasPrefix(raw[off:], []byte(text)) {
			return nil, fmt.Errorf("manifest: line %d: cannot locate hostData of %s in the text; set it by hand", v.Line, workload)
		}
		out := make([]byte, 0, len(raw)+len(quoted))
		out = append(out, raw[:off]...)
		out = append(out, quoted...)
		return append(out, raw[off+len(text):]...), nil
	}
	if isJSON {
		return nil, errReencode
	}
	if ref.Style&yaml.FlowStyle != 0 || len(ref.Content) == 0 {
		return nil, fmt.Errorf("manifest: line %d: the reference of %s is a flow mapping; add hostData: \"\" to it and try again", ref.Line, workload)
	}
	first := ref.Content[0]
	off, ok := offsetOf(raw, first.Line, 1)
	end, ok2 := offsetOf(raw, first.Line, first.Column)
	if !ok || !ok2 || len(bytes.Trim(raw[off:end], " ")) != 0 {
		return nil, fmt.Errorf("manifest: line %d: cannot find where to add hostData of %s; add it by hand", first.Line, workload)
	}
	line := string(raw[off:end]) + "hostData: " + quoted + "\n"
	out := make([]byte, 0, len(raw)+len(line))
	out = append(out, raw[:off]...)
	out = append(out, line...)
	return append(out, raw[off:]...), nil
}

// findReference returns the reference mapping of the workload named name.
func findReference(root *yaml.Node, name string) *yaml.Node {
	workloads := mapValue(root, "workloads")
	if workloads == nil || workloads.Kind != yaml.SequenceNode {
		return nil
	}
	for _, w := range workloads.Content {
		if n := mapValue(w, "name"); n == nil || n.Kind != yaml.ScalarNode || n.Value != name {
			continue
		}
		if r := mapValue(w, "reference"); r != nil && r.Kind == yaml.MappingNode {
			return r
		}
		return nil
	}
	return nil
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Kind == yaml.ScalarNode && n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// offsetOf converts a 1-based line and character column, as the YAML
// parser counts them, to a byte offset in raw.
func offsetOf(raw []byte, line, col int) (int, bool) {
	if line < 1 || col < 1 {
		return 0, false
	}
	off := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(raw[off:], '\n')
		if i < 0 {
			return 0, false
		}
		off += i + 1
	}
	for c := 1; c < col; c++ {
		if off >= len(raw) || raw[off] == '\n' {
			return 0, false
		}
		_, size := utf8.DecodeRune(raw[off:])
		off += size
	}
	return off, true
}
