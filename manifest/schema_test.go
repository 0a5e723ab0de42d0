package manifest

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// TestSchemaMatchesTypes walks the Go types and the schema side by side:
// every json field name must be a property of the matching schema object
// and every property a field, so the two cannot drift.
func TestSchemaMatchesTypes(t *testing.T) {
	var schema map[string]any
	if err := json.Unmarshal(Schema, &schema); err != nil {
		t.Fatalf("schema.json is not JSON: %v", err)
	}
	if got := schema["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", got)
	}
	defs, _ := schema["$defs"].(map[string]any)
	resolve := func(node any, where string) map[string]any {
		m, ok := node.(map[string]any)
		if !ok {
			t.Fatalf("%s: schema node is %T", where, node)
		}
		if ref, ok := m["$ref"].(string); ok {
			name, ok := strings.CutPrefix(ref, "#/$defs/")
			if m, ok = defs[name].(map[string]any); !ok {
				t.Fatalf("%s: $ref %q does not resolve", where, ref)
			}
		}
		return m
	}
	extra := map[reflect.Type][]string{reflect.TypeFor[Reference](): {measurementKey}}

	var walk func(typ reflect.Type, node map[string]any, where string)
	walk = func(typ reflect.Type, node map[string]any, where string) {
		if node["additionalProperties"] != false {
			t.Errorf("%s: schema object allows additional properties", where)
		}
		props, _ := node["properties"].(map[string]any)
		names := make(map[string]bool)
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			names[name] = true
			prop, ok := props[name]
			if !ok {
				t.Errorf("%s: schema has no property %q (Go field %s.%s)", where, name, typ.Name(), f.Name)
				continue
			}
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() == reflect.Struct:
				walk(ft, resolve(prop, where+"."+name), where+"."+name)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				items := resolve(prop, where+"."+name)["items"]
				walk(ft.Elem(), resolve(items, where+"."+name+"[]"), where+"."+name+"[]")
			}
		}
		for _, e := range extra[typ] {
			names[e] = true
		}
		for name := range props {
			if !names[name] {
				t.Errorf("%s: schema property %q is no field of %s", where, name, typ.Name())
			}
		}
	}
	walk(reflect.TypeFor[Manifest](), schema, "manifest")
}
