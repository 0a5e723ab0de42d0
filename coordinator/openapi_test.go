package coordinator

import (
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestOpenAPIDescribesEveryRoute keeps openapi.yaml and the routes the
// coordinator registers the same: every route is documented under its
// path and method, and every documented operation is served.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI    string                    `yaml:"openapi"`
		Paths      map[string]map[string]any `yaml:"paths"`
		Components map[string]map[string]any `yaml:"components"`
	}
	if err := yaml.Unmarshal(OpenAPI, &doc); err != nil {
		t.Fatalf("openapi.yaml does not parse: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for k := range item {
			switch k {
			case "get", "put", "post", "delete", "patch", "head", "options":
				documented[strings.ToUpper(k)+" "+path] = true
			}
		}
	}
	// ServeMux wildcards {name} and {name...} are OpenAPI's {name}.
	wildcard := regexp.MustCompile(`\{([A-Za-z_][A-Za-z0-9_]*)(\.\.\.)?\}`)
	c := &Coordinator{}
	registered := map[string]bool{}
	for _, rt := range c.routes() {
		p := wildcard.ReplaceAllString(rt.pattern, "{$1}")
		if registered[p] {
			t.Errorf("route %s registered twice", p)
		}
		registered[p] = true
		if !documented[p] {
			t.Errorf("route %s is not in openapi.yaml", p)
		}
	}
	for p := range documented {
		if !registered[p] {
			t.Errorf("openapi.yaml documents %s, which the coordinator does not serve", p)
		}
	}

	// Every $ref resolves.
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, sub := range v {
				if ref, ok := sub.(string); ok && k == "$ref" {
					name, ok := strings.CutPrefix(ref, "#/components/schemas/")
					if _, found := doc.Components["schemas"][name]; !ok || !found {
						t.Errorf("$ref %q does not resolve", ref)
					}
				}
				walk(sub)
			}
		case []any:
			for _, sub := range v {
				walk(sub)
			}
		}
	}
	var all any
	if err := yaml.Unmarshal(OpenAPI, &all); err != nil {
		t.Fatal(err)
	}
	walk(all)
}
