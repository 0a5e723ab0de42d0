package collateral

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/google/go-sev-guest/kds"
)

// azureAPIVersion is the api-version Microsoft's clients send to the
// SevSnpVM certificates endpoint (see the package documentation).
const azureAPIVersion = "2020-10-15-preview"

// azureVCEKURL is the Azure cache URL of the VCEK a KDS VCEK URL names:
// chip id in lower-case hex, reported TCB in hex without zero padding, as
// Microsoft's confidential-sidecar-containers writes it.
func azureVCEKURL(v kds.VCEKCert) string {
	return "https://" + hostAzure + "/SevSnpVM/certificates/" + hex.EncodeToString(v.HWID) + "/" +
		strconv.FormatUint(v.TCB, 16) + "?api-version=" + azureAPIVersion
}

// thimResponse is Azure's answer: PEM VCEK, PEM ASK+ARK, the TCB in hex
// and a cache lifetime. Only vcekCert is used.
type thimResponse struct {
	VcekCert         string `json:"vcekCert"`
	CertificateChain string `json:"certificateChain"`
	TCBM             string `json:"tcbm"`
	CacheControl     string `json:"cacheControl"`
}

// parseTHIM returns the DER VCEK of an Azure cache answer: one JSON object
// (other fields allowed, Azure may add some) whose vcekCert is exactly one
// PEM certificate.
func parseTHIM(body []byte) ([]byte, error) {
	var r thimResponse
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("Azure cache answer: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("Azure cache answer: trailing data after the JSON object")
	}
	b, rest := pem.Decode([]byte(r.VcekCert))
	if b == nil || b.Type != "CERTIFICATE" || len(b.Headers) != 0 || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("Azure cache answer: vcekCert is not exactly one PEM certificate")
	}
	return b.Bytes, nil
}
