package coordinator

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3.1 description of every route the coordinator
// serves (GET /openapi.yaml); a test keeps it and the routes the same.
//
//go:embed openapi.yaml
var OpenAPI []byte

func handleOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(OpenAPI)
}
