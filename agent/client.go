package agent

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/trustbound/trustbound/api"
)

// Client speaks the coordinator's native API.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client for the coordinator at base (https://host:port).
func NewClient(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(base, "/"), http: hc}
}

// maxResponse bounds what the client reads from the coordinator.
const maxResponse = 4 << 20

func (c *Client) do(ctx context.Context, method, path string, body []byte, hdr http.Header, out any) error {
	return c.doWith(ctx, method, path, body, hdr, out, problemError)
}

// errorDecoder turns a refusal (a non-2xx status and its bounded body)
// into an error; nil means the body has no error document it knows.
type errorDecoder func(status int, body []byte) error

// problemError decodes the native API's RFC 9457 problem document.
func problemError(_ int, b []byte) error {
	p := &api.Problem{}
	if json.Unmarshal(b, p) != nil || p.Title == "" {
		return nil
	}
	return p
}

// doWith sends one request and decodes a 2xx answer into out (unless out
// is nil); a refusal becomes the error decodeErr makes of it, or "HTTP
// status" when it makes none. Responses are bounded to maxResponse.
func (c *Client) doWith(ctx context.Context, method, path string, body []byte, hdr http.Header, out any, decodeErr errorDecoder) error {
	status, b, err := c.send(ctx, method, path, body, hdr)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		if decodeErr != nil {
			if err := decodeErr(status, b); err != nil {
				return err
			}
		}
		return &statusError{method: method, path: path, status: status}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: the response: %w", method, path, err)
	}
	return nil
}

// send sends one request (a body is JSON unless hdr says otherwise) and
// reads its answer, bounded to maxResponse.
func (c *Client) send(ctx context.Context, method, path string, body []byte, hdr http.Header) (status int, _ []byte, _ error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return 0, nil, err
	}
	if len(b) > maxResponse {
		return 0, nil, fmt.Errorf("%s %s: response larger than %d bytes", method, path, maxResponse)
	}
	return resp.StatusCode, b, nil
}

// statusError is a refusal that carries no error document the client
// knows: only its HTTP status.
type statusError struct {
	method, path string
	status       int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d", e.method, e.path, e.status)
}

// routeUnknown reports whether err is the answer of a server that does
// not serve the route at all: 404 or 405 without a problem document. The
// coordinator's own refusals on a route it serves (an unknown workload is
// 404 too) always carry one, and are not this.
func routeUnknown(err error) bool {
	var se *statusError
	return errors.As(err, &se) && (se.status == http.StatusNotFound || se.status == http.StatusMethodNotAllowed)
}

func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, path, b, nil, out)
}

// Challenge fetches a fresh nonce.
func (c *Client) Challenge(ctx context.Context) (api.Challenge, error) {
	var ch api.Challenge
	err := c.do(ctx, http.MethodPost, api.PathChallenge, nil, nil, &ch)
	return ch, err
}

// Attest presents evidence.
func (c *Client) Attest(ctx context.Context, req *api.AttestRequest) (*api.AttestResponse, error) {
	var out api.AttestResponse
	if err := c.postJSON(ctx, api.PathAttest, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Release presents a token for the workload's secrets and certificate.
func (c *Client) Release(ctx context.Context, req *api.ReleaseRequest) (*api.ReleaseResponse, error) {
	var out api.ReleaseResponse
	if err := c.postJSON(ctx, api.PathRelease, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// AttestRelease presents evidence and takes the release in one request
// (POST /v1/attest-release): the token and claims of the attestation, and
// the workload's secrets sealed under one HPKE context (Release.Context)
// with its certificate. A coordinator older than the route answers 404 or
// 405 without a problem document; Identity.Attest then falls back to
// Attest and Release.
func (c *Client) AttestRelease(ctx context.Context, req *api.AttestReleaseRequest) (*api.AttestReleaseResponse, error) {
	var out api.AttestReleaseResponse
	if err := c.postJSON(ctx, api.PathAttestRelease, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Owner is an owner of the manifest in force: its name and signing key.
type Owner struct {
	Name string
	Key  crypto.Signer
}

// Status reads the coordinator's status (owners only).
func (c *Client) Status(ctx context.Context, o Owner) (*api.Status, error) {
	var out api.Status
	if err := c.ownerDo(ctx, o, http.MethodGet, api.PathStatus, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Manifest reads the manifest in force (owners only).
func (c *Client) Manifest(ctx context.Context, o Owner) (*api.ManifestResponse, error) {
	var out api.ManifestResponse
	if err := c.ownerDo(ctx, o, http.MethodGet, api.PathManifest, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Audit lists the recorded releases, oldest first (owners only). It reads
// the whole trail into memory; AuditEach reads it a page at a time.
func (c *Client) Audit(ctx context.Context, o Owner) ([]api.AuditRecord, error) {
	out := []api.AuditRecord{}
	err := c.AuditEach(ctx, o, func(r api.AuditRecord) error {
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AuditEach hands each recorded release to each, oldest first, reading
// the trail in pages of api.MaxAuditLimit records (GET
// /v1/audit?after=&limit=, each page owner-signed over a fresh challenge),
// so that no more than one page is held at a time. An error from each
// stops the reading and is returned as is.
func (c *Client) AuditEach(ctx context.Context, o Owner, each func(api.AuditRecord) error) error {
	return c.AuditEachLimit(ctx, o, api.MaxAuditLimit, each)
}

// AuditEachLimit is AuditEach with pages of limit records (1 to
// api.MaxAuditLimit; the coordinator refuses others).
func (c *Client) AuditEachLimit(ctx context.Context, o Owner, limit int, each func(api.AuditRecord) error) error {
	cursor := ""
	for {
		q := url.Values{"after": {cursor}, "limit": {strconv.Itoa(limit)}}
		var raw json.RawMessage
		if err := c.ownerDoQuery(ctx, o, http.MethodGet, api.PathAudit, q, nil, nil, &raw); err != nil {
			return err
		}
		page, whole, err := decodeAuditPage(raw)
		if err != nil {
			return fmt.Errorf("GET %s: %w", api.PathAudit, err)
		}
		for _, r := range page.Records {
			if err := each(r); err != nil {
				return err
			}
		}
		if whole || page.Next == "" {
			return nil
		}
		if page.Next == cursor || len(page.Records) == 0 {
			return fmt.Errorf("GET %s: the coordinator's page after %q does not advance", api.PathAudit, cursor)
		}
		cursor = page.Next
	}
}

// decodeAuditPage reads one answer of GET /v1/audit?after=&limit=: a page
// (api.AuditPage), or — from a coordinator older than pages, which
// ignores the query — the whole trail as one array, reported as whole.
func decodeAuditPage(b []byte) (page *api.AuditPage, whole bool, err error) {
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) > 0 && t[0] == '[' {
		var recs []api.AuditRecord
		if err := json.Unmarshal(t, &recs); err != nil {
			return nil, false, fmt.Errorf("the audit trail: %w", err)
		}
		return &api.AuditPage{Records: recs}, true, nil
	}
	var p struct {
		Records json.RawMessage `json:"records"`
		Next    string          `json:"next"`
	}
	if err := json.Unmarshal(t, &p); err != nil {
		return nil, false, fmt.Errorf("the audit page: %w", err)
	}
	// A page without a records array is no page: taken as the end of the
	// trail, it would hide every record after it.
	if r := bytes.TrimLeft(p.Records, " \t\r\n"); len(r) == 0 || r[0] != '[' {
		return nil, false, errors.New("the audit page: records is not an array")
	}
	page = &api.AuditPage{Next: p.Next}
	if err := json.Unmarshal(p.Records, &page.Records); err != nil {
		return nil, false, fmt.Errorf("the audit page: records: %w", err)
	}
	return page, false, nil
}

// ownerDo sends an owner-signed request: it fetches a challenge and signs
// method, path, nonce and body.
func (c *Client) ownerDo(ctx context.Context, o Owner, method, path string, body []byte, hdr http.Header, out any) error {
	return c.ownerDoQuery(ctx, o, method, path, nil, body, hdr, out)
}

// ownerDoQuery is ownerDo with a query string: the signature covers the
// path with the query, as the coordinator checks it.
func (c *Client) ownerDoQuery(ctx context.Context, o Owner, method, path string, query url.Values, body []byte, hdr http.Header, out any) error {
	ch, err := c.Challenge(ctx)
	if err != nil {
		return err
	}
	target := path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	auth, err := api.SignOwner(o.Name, o.Key, method, target, ch.Nonce, body)
	if err != nil {
		return err
	}
	h := http.Header{"Authorization": {auth}}
	for k, v := range hdr {
		h[k] = v
	}
	return c.do(ctx, method, target, body, h, out)
}

// SetManifest installs a manifest, signed by an owner. The very first
// manifest also needs the coordinator's bootstrap token; later ones pass nil.
func (c *Client) SetManifest(ctx context.Context, o Owner, raw, bootstrap []byte) (*api.SetManifestResponse, error) {
	var hdr http.Header
	if len(bootstrap) > 0 {
		hdr = http.Header{api.HeaderBootstrap: {string(bootstrap)}}
	}
	var out api.SetManifestResponse
	if err := c.ownerDo(ctx, o, http.MethodPut, api.PathManifest, raw, hdr, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetSecret sets a new version of a user secret, signed by an owner.
func (c *Client) SetSecret(ctx context.Context, o Owner, name string, value []byte) (*api.SetSecretResponse, error) {
	b, err := json.Marshal(api.SetSecretRequest{Value: value})
	if err != nil {
		return nil, err
	}
	var out api.SetSecretResponse
	if err := c.ownerDo(ctx, o, http.MethodPut, api.PathSecrets+name, b, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetPolicy sets the next version of an appraisal policy, signed by an
// owner: text is a Rego module, a Key Vault release policy or Azure
// attestation policy text, which the coordinator parses before storing.
func (c *Client) SetPolicy(ctx context.Context, o Owner, name string, text []byte) (*api.SetPolicyResponse, error) {
	var out api.SetPolicyResponse
	hdr := http.Header{"Content-Type": {"text/plain; charset=utf-8"}}
	if err := c.ownerDo(ctx, o, http.MethodPut, api.PathPolicies+name, text, hdr, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Policy reads a policy's current version and its history (owners only).
func (c *Client) Policy(ctx context.Context, o Owner, name string) (*api.PolicyResponse, error) {
	var out api.PolicyResponse
	if err := c.ownerDo(ctx, o, http.MethodGet, api.PathPolicies+name, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DryRun appraises evidence with draft reference values and policies
// (owners only); the token it returns is unsigned and accepted nowhere.
func (c *Client) DryRun(ctx context.Context, o Owner, req *api.DryRunRequest) (*api.DryRunResponse, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var out api.DryRunResponse
	if err := c.ownerDo(ctx, o, http.MethodPost, api.PathDryRun, b, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BaseURL is the coordinator's URL.
func (c *Client) BaseURL() string { return c.base }

// TrustBundle fetches the workload root CA of the manifest in force (GET
// /v1/trust-bundle): what peers verify each other's X.509-SVIDs against.
// Fetch it over a connection that already trusts the coordinator.
func (c *Client) TrustBundle(ctx context.Context) (*x509.CertPool, error) {
	status, b, err := c.send(ctx, http.MethodGet, api.PathTrustBundle, nil, nil)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, &statusError{method: http.MethodGet, path: api.PathTrustBundle, status: status}
	}
	certs, err := parseChainPEM(string(b))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", api.PathTrustBundle, err)
	}
	pool := x509.NewCertPool()
	for _, cert := range certs {
		pool.AddCert(cert)
	}
	return pool, nil
}
