package tee

import (
	"context"
	"fmt"
	"os"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/snp"
	"github.com/trustbound/trustbound/attest/tdx"
)

// SEVDevice attests through the Linux SEV guest device: an extended guest
// request, which returns the report and the certificate table the host
// supplied. It opens the device for each report.
type SEVDevice struct {
	path string
}

var _ attest.Attester = (*SEVDevice)(nil)

// NewSEVDevice returns the attester of the SEV guest device at path
// (normally /dev/sev-guest). It checks that the device is there.
func NewSEVDevice(path string) (*SEVDevice, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sev-guest: %w", err)
	}
	return &SEVDevice{path: path}, nil
}

// TEE reports attest.SEVSNP.
func (*SEVDevice) TEE() attest.TEE { return attest.SEVSNP }

// Attest returns attest.FormatSNPReport evidence binding reportData, with
// the VCEK (or VLEK), ASK and ARK the host's certificate table holds.
func (s *SEVDevice) Attest(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	report, certs, err := sevExtendedReport(s.path, reportData)
	if err != nil {
		return nil, fmt.Errorf("sev-guest %s: %w", s.path, err)
	}
	return snp.EvidenceFromConfigFS(report, certs)
}

// TDXDevice attests through the Linux TDX guest device: a TDREPORT turned
// into a quote by the host's quoting service. It opens the device for each
// quote.
type TDXDevice struct {
	path string
}

var _ attest.Attester = (*TDXDevice)(nil)

// NewTDXDevice returns the attester of the TDX guest device at path
// (normally /dev/tdx_guest). It checks that the device is there.
func NewTDXDevice(path string) (*TDXDevice, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("tdx-guest: %w", err)
	}
	return &TDXDevice{path: path}, nil
}

// TEE reports attest.TDX.
func (*TDXDevice) TEE() attest.TEE { return attest.TDX }

// Attest returns attest.FormatTDXQuote evidence binding reportData.
func (t *TDXDevice) Attest(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q, err := tdxQuote(t.path, reportData)
	if err != nil {
		return nil, fmt.Errorf("tdx-guest %s: %w", t.path, err)
	}
	if len(q) == 0 || len(q) > tdx.MaxQuoteSize {
		return nil, fmt.Errorf("%w: tdx-guest %s: the quote is %d bytes, want 1 to %d", attest.ErrMalformed, t.path, len(q), tdx.MaxQuoteSize)
	}
	if _, err := tdx.ParseQuote(q); err != nil {
		return nil, fmt.Errorf("tdx-guest %s: %w", t.path, err)
	}
	return &attest.Evidence{Format: attest.FormatTDXQuote, Data: q}, nil
}
