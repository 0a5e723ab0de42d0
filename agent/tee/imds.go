package tee

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/trustbound/trustbound/attest/tdx"
)

// The Azure instance metadata service (IMDS) paths the vTPM attester uses.
const (
	defaultIMDS = "http://169.254.169.254"
	// thimPath serves the VCEK of the VM's chip at its TCB, with the AMD
	// chain, from Azure's Trusted Hardware Identity Management cache.
	thimPath = "/metadata/THIM/amd/certification"
	// tdQuotePath turns a TDREPORT into a TD quote.
	tdQuotePath = "/acc/tdquote"
	// maxIMDSResponse bounds IMDS answers (a VCEK and chain, or a quote).
	maxIMDSResponse = 1 << 20
)

func (c AzureConfig) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	// IMDS is link-local: never through a proxy.
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
}

func (c AzureConfig) imdsURL(path string) string {
	base := c.IMDS
	if base == "" {
		base = defaultIMDS
	}
	return strings.TrimSuffix(base, "/") + path
}

func (a *AzureVTPM) vcek(ctx context.Context) ([]byte, error) {
	if a.cfg.VCEK != nil {
		return a.cfg.VCEK(ctx)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.cfg.imdsURL(thimPath), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Metadata", "true")
	body, err := imdsDo(a.cfg.httpClient(), req)
	if err != nil {
		return nil, err
	}
	return ParseTHIMCertification(body)
}

func (a *AzureVTPM) tdQuote(ctx context.Context, tdReport []byte) ([]byte, error) {
	if a.cfg.TDQuote != nil {
		return a.cfg.TDQuote(ctx, tdReport)
	}
	body, err := json.Marshal(map[string]string{"report": base64.RawURLEncoding.EncodeToString(tdReport)})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.cfg.imdsURL(tdQuotePath), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	rsp, err := imdsDo(a.cfg.httpClient(), req)
	if err != nil {
		return nil, err
	}
	return ParseTDQuoteResponse(rsp)
}

// imdsDo sends req and returns the body of a 200 answer, at most 1 MiB.
func imdsDo(c *http.Client, req *http.Request) ([]byte, error) {
	rsp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("instance metadata service: %w", err)
	}
	defer rsp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(rsp.Body, maxIMDSResponse+1))
	if err != nil {
		return nil, fmt.Errorf("instance metadata service %s: reading the answer: %w", req.URL.Path, err)
	}
	if len(body) > maxIMDSResponse {
		return nil, fmt.Errorf("instance metadata service %s: the answer is larger than %d bytes", req.URL.Path, maxIMDSResponse)
	}
	if rsp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("instance metadata service %s: status %s", req.URL.Path, rsp.Status)
	}
	return body, nil
}

// ParseTHIMCertification returns the DER VCEK from the JSON answer of
// IMDS /metadata/THIM/amd/certification: an object whose "vcekCert" is
// one PEM CERTIFICATE block (other members, such as "certificateChain" and
// "tcbm", are not used: the verifier holds the AMD roots).
func ParseTHIMCertification(body []byte) ([]byte, error) {
	var r struct {
		VCEKCert *string `json:"vcekCert"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("THIM certification answer is not a JSON object: %w", err)
	}
	if r.VCEKCert == nil {
		return nil, fmt.Errorf("THIM certification answer has no vcekCert")
	}
	s := strings.TrimSpace(*r.VCEKCert)
	blk, rest := pem.Decode([]byte(s))
	if !strings.HasPrefix(s, "-----BEGIN ") || blk == nil || blk.Type != "CERTIFICATE" || len(blk.Headers) != 0 || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("THIM certification answer: vcekCert is not exactly one PEM CERTIFICATE block")
	}
	return blk.Bytes, nil
}

// ParseTDQuoteResponse returns the TD quote from the JSON answer of IMDS
// /acc/tdquote: {"quote": URL-safe base64, padded or not}, of at most
// tdx.MaxQuoteSize bytes.
func ParseTDQuoteResponse(body []byte) ([]byte, error) {
	var r struct {
		Quote *string `json:"quote"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("TD quote answer is not a JSON object: %w", err)
	}
	if r.Quote == nil {
		return nil, fmt.Errorf("TD quote answer has no quote")
	}
	q, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimRight(*r.Quote, "="))
	if err != nil {
		return nil, fmt.Errorf("TD quote answer: quote is not URL-safe base64: %w", err)
	}
	if len(q) == 0 || len(q) > tdx.MaxQuoteSize {
		return nil, fmt.Errorf("TD quote answer: the quote is %d bytes, want 1 to %d", len(q), tdx.MaxQuoteSize)
	}
	return q, nil
}
