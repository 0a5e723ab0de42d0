package manifest

import _ "embed"

// Schema is the JSON Schema (draft 2020-12) of the manifest, for editors
// and CI. Validate is the authoritative check; a test keeps the schema's
// properties and the Go types' json names the same.
//
//go:embed schema.json
var Schema []byte
