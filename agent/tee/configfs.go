package tee

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/report"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/snp"
	"github.com/trustbound/trustbound/attest/tdx"
)

// The configfs-tsm providers this package knows.
const (
	ProviderSEV = "sev_guest"
	ProviderTDX = "tdx_guest"
)

// maxConfigFSRead bounds every configfs-tsm attribute read: an SNP
// certificate table or a TDX quote with its PCK chain is a few KB.
const maxConfigFSRead = 1 << 20

// ConfigFS attests through Linux configfs-tsm: it makes a report entry,
// writes the report data to inblob and reads outblob (and for SEV-SNP
// auxblob, the host's certificate table) and provider, checking the
// generation counter so that another writer cannot slip in a report of its
// own. It is safe for concurrent use: each Attest uses its own entry.
type ConfigFS struct {
	client   configfsi.Client
	provider string
}

var _ attest.Attester = (*ConfigFS)(nil)

// NewConfigFS returns the attester of the configfs-tsm report directory dir
// (normally /sys/kernel/config/tsm/report). client is how the directory is
// used; nil means the files under dir themselves (DirClient). It makes one
// report entry to learn the provider, and refuses a provider it does not
// know.
func NewConfigFS(ctx context.Context, dir string, client configfsi.Client) (*ConfigFS, error) {
	if client == nil {
		client = DirClient(filepath.Dir(dir))
	}
	c := &ConfigFS{client: client}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ok, why := isDir(dir); !ok {
		return nil, fmt.Errorf("configfs-tsm %s: %s: this machine offers no configfs-tsm reports (they need Linux 6.7 or later, configfs mounted at /sys/kernel/config, and the sev-guest or tdx-guest module loaded)", dir, why)
	}
	r, err := report.CreateOpenReport(client)
	if err != nil {
		return nil, fmt.Errorf("configfs-tsm %s: %w", dir, err)
	}
	p, err := r.ReadOption("provider")
	if derr := r.Destroy(); err == nil && derr != nil {
		err = derr
	}
	if err != nil {
		return nil, fmt.Errorf("configfs-tsm %s: reading the provider: %w", dir, err)
	}
	c.provider = strings.TrimSpace(string(p))
	if _, err := teeOfProvider(c.provider); err != nil {
		return nil, fmt.Errorf("configfs-tsm %s: %w", dir, err)
	}
	return c, nil
}

func teeOfProvider(p string) (attest.TEE, error) {
	switch p {
	case ProviderSEV:
		return attest.SEVSNP, nil
	case ProviderTDX:
		return attest.TDX, nil
	}
	return "", fmt.Errorf("provider %q is not one trustbound attests with (want %s or %s)", p, ProviderSEV, ProviderTDX)
}

// TEE reports the TEE of the provider: attest.SEVSNP or attest.TDX.
func (c *ConfigFS) TEE() attest.TEE {
	t, _ := teeOfProvider(c.provider)
	return t
}

// Provider returns the configfs-tsm provider, "sev_guest" or "tdx_guest".
func (c *ConfigFS) Provider() string { return c.provider }

// Attest gets a report binding reportData: attest.FormatSNPReport evidence
// with the certificates of auxblob for sev_guest, attest.FormatTDXQuote
// evidence for tdx_guest. A provider that differs from the one NewConfigFS
// saw is refused.
func (c *ConfigFS) Attest(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	resp, err := report.Get(c.client, &report.Request{
		InBlob:     reportData[:],
		GetAuxBlob: c.provider == ProviderSEV,
	})
	if err != nil {
		return nil, fmt.Errorf("configfs-tsm report: %w", err)
	}
	return EvidenceFromReport(c.provider, resp)
}

// EvidenceFromReport turns a configfs-tsm response into evidence of the
// provider want. It checks the response's provider and frames its blobs
// strictly; errors wrap attest.ErrMalformed when the blobs are malformed.
func EvidenceFromReport(want string, resp *report.Response) (*attest.Evidence, error) {
	got := strings.TrimSpace(resp.Provider)
	if got != want {
		return nil, fmt.Errorf("configfs-tsm report: the provider is %q, but was %q when the attester was opened", got, want)
	}
	switch got {
	case ProviderSEV:
		return snp.EvidenceFromConfigFS(resp.OutBlob, resp.AuxBlob)
	case ProviderTDX:
		if len(resp.OutBlob) == 0 || len(resp.OutBlob) > tdx.MaxQuoteSize {
			return nil, fmt.Errorf("%w: configfs-tsm tdx_guest outblob is %d bytes, want 1 to %d", attest.ErrMalformed, len(resp.OutBlob), tdx.MaxQuoteSize)
		}
		if _, err := tdx.ParseQuote(resp.OutBlob); err != nil {
			return nil, fmt.Errorf("configfs-tsm tdx_guest outblob: %w", err)
		}
		return &attest.Evidence{Format: attest.FormatTDXQuote, Data: append([]byte(nil), resp.OutBlob...)}, nil
	}
	_, err := teeOfProvider(got)
	return nil, fmt.Errorf("configfs-tsm report: %w", err)
}

// DirClient is a configfsi.Client over the files of a real directory that
// stands for /sys/kernel/config/tsm: the paths go-configfs-tsm asks for are
// mapped under it. Reads are bounded; entries are removed with rmdir, as
// configfs wants.
type DirClient string

var _ configfsi.Client = DirClient("")

// local maps a configfs-tsm path onto the directory.
func (d DirClient) local(name string) (string, error) {
	p := filepath.Clean(name)
	if p != configfsi.TsmPrefix && !strings.HasPrefix(p, configfsi.TsmPrefix+"/") {
		return "", fmt.Errorf("configfs-tsm: path %q is not under %s", name, configfsi.TsmPrefix)
	}
	return filepath.Join(string(d), strings.TrimPrefix(p, configfsi.TsmPrefix)), nil
}

// MkdirTemp makes a new report entry.
func (d DirClient) MkdirTemp(dir, pattern string) (string, error) {
	l, err := d.local(dir)
	if err != nil {
		return "", err
	}
	made, err := os.MkdirTemp(l, pattern)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(made)), nil
}

// ReadFile reads an attribute, at most 1 MiB.
func (d DirClient) ReadFile(name string) ([]byte, error) {
	l, err := d.local(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(l)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxConfigFSRead+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxConfigFSRead {
		return nil, fmt.Errorf("configfs-tsm: %s is larger than %d bytes", name, maxConfigFSRead)
	}
	return b, nil
}

// ReadDir lists a directory.
func (d DirClient) ReadDir(name string) ([]os.DirEntry, error) {
	l, err := d.local(name)
	if err != nil {
		return nil, err
	}
	return os.ReadDir(l)
}

// WriteFile writes an attribute, which must exist (configfs makes them).
func (d DirClient) WriteFile(name string, contents []byte) error {
	l, err := d.local(name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(l, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	if _, err := f.Write(contents); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// RemoveAll removes a report entry with rmdir (configfs removes its
// attributes with it).
func (d DirClient) RemoveAll(name string) error {
	l, err := d.local(name)
	if err != nil {
		return err
	}
	if err := os.Remove(l); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
