package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/api"
)

// coordinatorFlags are the flags of every command that talks to a coordinator.
type coordinatorFlags struct {
	url, caFile string
}

func (c *coordinatorFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.url, "coordinator", "https://127.0.0.1:8443", "coordinator URL")
	fs.StringVar(&c.caFile, "ca", "", "PEM file of the coordinator's CA (from its data directory); required")
}

func (c *coordinatorFlags) client() (*agent.Client, error) {
	if c.caFile == "" {
		return nil, usageErr("--ca is required: trustbound only talks to a coordinator whose CA it was given")
	}
	caPEM, err := os.ReadFile(c.caFile)
	if err != nil {
		return nil, err
	}
	return clientWithCA(c.url, caPEM)
}

// httpClient is the HTTPS client of client(): TLS 1.3 to a coordinator
// whose certificate chains to the CA file, keep-alive connections.
func (c *coordinatorFlags) httpClient() (*http.Client, error) {
	if c.caFile == "" {
		return nil, usageErr("--ca is required: trustbound only talks to a coordinator whose CA it was given")
	}
	caPEM, err := os.ReadFile(c.caFile)
	if err != nil {
		return nil, err
	}
	return httpClientWithCA(caPEM)
}

// clientWithCA is a client of the coordinator at base, over HTTPS to a
// certificate that chains to caPEM. base must be an https URL: over plain
// HTTP the CA (and --ca-sha256) would check nothing, and owner requests,
// bearer tokens and secrets would cross the network in clear.
func clientWithCA(base string, caPEM []byte) (*agent.Client, error) {
	if u, err := url.Parse(base); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, usageErr("--coordinator must be an https:// URL with a host (got %q): the coordinator is only reached over TLS to the CA given with --ca", base)
	}
	hc, err := httpClientWithCA(caPEM)
	if err != nil {
		return nil, err
	}
	return agent.NewClient(base, hc), nil
}

func httpClientWithCA(caPEM []byte) (*http.Client, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no certificate in the CA file")
	}
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13},
			MaxIdleConnsPerHost: 16,
		},
	}, nil
}

// maxAuditPage bounds the bytes of one audit page the client reads: a page
// is at most api.MaxAuditLimit records of a few hundred bytes each.
const maxAuditPage = 4 << 20

// auditPages reads the audit trail page by page (GET /v1/audit?after=&limit=,
// each request owner-signed over a fresh challenge) and hands each record
// to each, oldest first, until the last page.
func auditPages(ctx context.Context, c *agent.Client, hc *http.Client, o agent.Owner, limit int, each func(api.AuditRecord) error) error {
	cursor := ""
	for {
		ch, err := c.Challenge(ctx)
		if err != nil {
			return err
		}
		q := url.Values{"after": {cursor}, "limit": {strconv.Itoa(limit)}}
		target := api.PathAudit + "?" + q.Encode()
		auth, err := api.SignOwner(o.Name, o.Key, http.MethodGet, target, ch.Nonce, nil)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL()+target, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", auth)
		page, err := readAuditPage(hc, req)
		if err != nil {
			return err
		}
		for _, r := range page.Records {
			if err := each(r); err != nil {
				return err
			}
		}
		if page.Next == "" {
			return nil
		}
		if page.Next == cursor || len(page.Records) == 0 {
			return fmt.Errorf("GET %s: the coordinator's page after %q does not advance", api.PathAudit, cursor)
		}
		cursor = page.Next
	}
}

func readAuditPage(hc *http.Client, req *http.Request) (*api.AuditPage, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAuditPage+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxAuditPage {
		return nil, fmt.Errorf("GET %s: page larger than %d bytes", api.PathAudit, maxAuditPage)
	}
	if resp.StatusCode != http.StatusOK {
		p := &api.Problem{}
		if json.Unmarshal(b, p) != nil || p.Title == "" {
			return nil, fmt.Errorf("GET %s: HTTP %d", api.PathAudit, resp.StatusCode)
		}
		return nil, p
	}
	var page api.AuditPage
	if err := json.Unmarshal(b, &page); err != nil {
		return nil, fmt.Errorf("GET %s: %w", api.PathAudit, err)
	}
	return &page, nil
}

// readOwnerKey reads an owner's PEM private key (PKCS#8, EC or Ed25519).
func readOwnerKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	var k any
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("%s: PEM type %q is not a private key", path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: not a signing key", path)
	}
	return s, nil
}
