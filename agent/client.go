package agent

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		p := &api.Problem{}
		if json.Unmarshal(b, p) != nil || p.Title == "" {
			return fmt.Errorf("%s %s: HTTP %d", method, path, resp.StatusCode)
		}
		return p
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
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

// Status reads the coordinator's status.
func (c *Client) Status(ctx context.Context) (*api.Status, error) {
	var out api.Status
	if err := c.do(ctx, http.MethodGet, api.PathStatus, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Manifest reads the manifest in force.
func (c *Client) Manifest(ctx context.Context) (*api.ManifestResponse, error) {
	var out api.ManifestResponse
	if err := c.do(ctx, http.MethodGet, api.PathManifest, nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ownerDo sends an owner-signed request: it fetches a challenge and signs
// method, path, nonce and body.
func (c *Client) ownerDo(ctx context.Context, owner string, key crypto.Signer, method, path string, body []byte, out any) error {
	ch, err := c.Challenge(ctx)
	if err != nil {
		return err
	}
	auth, err := api.SignOwner(owner, key, method, path, ch.Nonce, body)
	if err != nil {
		return err
	}
	return c.do(ctx, method, path, body, http.Header{"Authorization": {auth}}, out)
}

// SetManifest installs a manifest, signed by an owner.
func (c *Client) SetManifest(ctx context.Context, owner string, key crypto.Signer, raw []byte) (*api.SetManifestResponse, error) {
	var out api.SetManifestResponse
	if err := c.ownerDo(ctx, owner, key, http.MethodPut, api.PathManifest, raw, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetSecret sets a new version of a user secret, signed by an owner.
func (c *Client) SetSecret(ctx context.Context, owner string, key crypto.Signer, name string, value []byte) (*api.SetSecretResponse, error) {
	b, err := json.Marshal(api.SetSecretRequest{Value: value})
	if err != nil {
		return nil, err
	}
	var out api.SetSecretResponse
	if err := c.ownerDo(ctx, owner, key, http.MethodPut, api.PathSecrets+name, b, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// BaseURL is the coordinator's URL.
func (c *Client) BaseURL() string { return c.base }
