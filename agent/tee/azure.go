package tee

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/azure"
)

// AzureConfig holds the Azure vTPM attester's settings. The zero value is
// an Azure confidential VM.
type AzureConfig struct {
	// VCEK returns the DER VCEK certificate that signed the SNP report in
	// the HCL report; nil asks the instance metadata service (THIM).
	VCEK func(ctx context.Context) ([]byte, error)
	// TDQuote returns the TD quote of a TDREPORT; nil asks the instance
	// metadata service.
	TDQuote func(ctx context.Context, tdReport []byte) ([]byte, error)
	// Refresh is how long Attest waits, after writing the report data to
	// NV index 0x01400002, for the paravisor to renew the HCL report with
	// it as user-data: zero means 3 s (what Azure's guest tools allow),
	// negative means not at all. Without the renewal the evidence is of
	// schema 1, whose TPM quote alone binds the report data.
	Refresh time.Duration
	// Poll is how often the HCL report is read while waiting; zero means
	// 200 ms.
	Poll time.Duration
	// IMDS is the instance metadata service's base URL; empty means
	// http://169.254.169.254.
	IMDS string
	// HTTPClient talks to IMDS; nil means a client without proxy and with
	// a 30 s timeout.
	HTTPClient *http.Client
}

// AzureVTPM attests an Azure confidential VM through its vTPM, as the
// Confidential Containers az-snp-vtpm and az-tdx-vtpm attesters do: it
// writes the report data to NV index 0x01400002, reads the HCL report from
// NV index 0x01400001 (renewed by the paravisor with the report data as its
// user-data), has the attestation key at 0x81000003 quote PCRs 0 to 23 of
// the SHA-256 bank with the report data as qualifying data, and adds the
// VCEK (SNP) or the TD quote of the HCL report's TDREPORT (TDX). It opens
// the TPM for each Attest.
//
// It is safe for concurrent use: Attest calls take turns from writing the
// report data to the quote, since the user-data index and the HCL report
// are one per VM (another process writing the index at the same time can
// still make an attestation fall back to schema 1; it cannot make one
// claim another's report data).
type AzureVTPM struct {
	open func() (TPM, error)
	cfg  AzureConfig
	tee  attest.TEE

	// mu serialises Attest over the TPM's shared NV indices.
	mu sync.Mutex
	// now and wait are the clock of the wait for the paravisor; tests
	// replace them (nil: time.Now and a timer).
	now  func() time.Time
	wait func(ctx context.Context, d time.Duration) error
}

var _ attest.Attester = (*AzureVTPM)(nil)

// NewAzureVTPM returns the attester of the vTPM that open connects to. It
// reads the HCL report once to learn the TEE (SNP or TDX) and refuses a TPM
// without a well-formed one.
func NewAzureVTPM(ctx context.Context, open func() (TPM, error), cfg AzureConfig) (*AzureVTPM, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t, err := open()
	if err != nil {
		return nil, fmt.Errorf("azure-vtpm: %w", err)
	}
	defer t.Close()
	b, err := nvReadAll(t, nvHCLReport)
	if err != nil {
		return nil, fmt.Errorf("azure-vtpm: the HCL report: %w", err)
	}
	hcl, err := azure.ParseHCLReport(b)
	if err != nil {
		return nil, fmt.Errorf("azure-vtpm: NV index %#08x: %w", uint32(nvHCLReport), err)
	}
	a := &AzureVTPM{open: open, cfg: cfg}
	if a.tee, err = teeOfHCL(hcl); err != nil {
		return nil, err
	}
	return a, nil
}

func teeOfHCL(hcl *azure.HCLReport) (attest.TEE, error) {
	switch hcl.ReportType {
	case azure.ReportTypeSNP:
		return attest.SEVSNP, nil
	case azure.ReportTypeTDX:
		return attest.TDX, nil
	}
	return "", fmt.Errorf("azure-vtpm: the HCL report holds a %v, neither SNP nor TDX", hcl.ReportType)
}

// TEE reports attest.SEVSNP or attest.TDX, as the HCL report says.
func (a *AzureVTPM) TEE() attest.TEE { return a.tee }

// Attest returns attest.FormatAzureSNPVTPM (schema 2 when the HCL report's
// user-data is reportData, else 1) or attest.FormatAzureTDXVTPM (schema 1)
// evidence whose TPM quote's qualifying data is reportData.
func (a *AzureVTPM) Attest(ctx context.Context, reportData [64]byte) (*attest.Evidence, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	t, err := a.open()
	if err != nil {
		return nil, fmt.Errorf("azure-vtpm: %w", err)
	}
	defer t.Close()
	if err := writeUserData(t, reportData); err != nil {
		return nil, fmt.Errorf("azure-vtpm: %w", err)
	}
	raw, hcl, renewed, err := a.readHCL(ctx, t, reportData)
	if err != nil {
		return nil, err
	}
	if tee, err := teeOfHCL(hcl); err != nil {
		return nil, err
	} else if tee != a.tee {
		return nil, fmt.Errorf("azure-vtpm: the HCL report now holds a %s report, not %s", tee, a.tee)
	}
	q, err := quote(t, hcl, reportData)
	if err != nil {
		return nil, fmt.Errorf("azure-vtpm: %w", err)
	}
	tq := evidenceQuote{Signature: hex.EncodeToString(q.sig), Message: hex.EncodeToString(q.msg)}
	for _, p := range q.pcrs {
		tq.PCRs = append(tq.PCRs, hex.EncodeToString(p))
	}
	if a.tee == attest.SEVSNP {
		vcek, err := a.vcek(ctx)
		if err != nil {
			return nil, fmt.Errorf("azure-vtpm: the VCEK: %w", err)
		}
		ev := snpEvidence{Version: 1, TPMQuote: tq, HCLReport: base64.URLEncoding.EncodeToString(raw), VCEK: base64.URLEncoding.EncodeToString(vcek)}
		if renewed {
			ev.Version = 2
		}
		data, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("azure-vtpm: encoding the evidence: %w", err)
		}
		return &attest.Evidence{Format: attest.FormatAzureSNPVTPM, Data: data}, nil
	}
	tdq, err := a.tdQuote(ctx, hcl.HardwareReport)
	if err != nil {
		return nil, fmt.Errorf("azure-vtpm: the TD quote: %w", err)
	}
	data, err := json.Marshal(tdxEvidence{Version: 1, TPMQuote: tq, HCLReport: base64.URLEncoding.EncodeToString(raw), TDQuote: base64.URLEncoding.EncodeToString(tdq)})
	if err != nil {
		return nil, fmt.Errorf("azure-vtpm: encoding the evidence: %w", err)
	}
	return &attest.Evidence{Format: attest.FormatAzureTDXVTPM, Data: data}, nil
}

// The az-snp-vtpm (schemas 1 and 2) and az-tdx-vtpm (schema 1) JSON, as
// attest/azure parses it.
type (
	evidenceQuote struct {
		Signature string   `json:"signature"`
		Message   string   `json:"message"`
		PCRs      []string `json:"pcrs"`
	}
	snpEvidence struct {
		Version   int           `json:"version"`
		TPMQuote  evidenceQuote `json:"tpm_quote"`
		HCLReport string        `json:"hcl_report"`
		VCEK      string        `json:"vcek"`
	}
	tdxEvidence struct {
		Version   int           `json:"version"`
		TPMQuote  evidenceQuote `json:"tpm_quote"`
		HCLReport string        `json:"hcl_report"`
		TDQuote   string        `json:"td_quote"`
	}
)

// readHCL reads and parses the HCL report until its user-data is
// reportData or cfg.Refresh has passed; renewed says which.
func (a *AzureVTPM) readHCL(ctx context.Context, t transport.TPM, reportData [64]byte) (raw []byte, hcl *azure.HCLReport, renewed bool, err error) {
	refresh, poll := a.cfg.Refresh, a.cfg.Poll
	if refresh == 0 {
		refresh = 3 * time.Second
	}
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	now, wait := a.now, a.wait
	if now == nil {
		now = time.Now
	}
	if wait == nil {
		wait = sleep
	}
	deadline := now().Add(refresh)
	for {
		raw, err = nvReadAll(t, nvHCLReport)
		if err != nil {
			return nil, nil, false, fmt.Errorf("azure-vtpm: the HCL report: %w", err)
		}
		hcl, err = azure.ParseHCLReport(raw)
		if err != nil {
			return nil, nil, false, fmt.Errorf("azure-vtpm: NV index %#08x: %w", uint32(nvHCLReport), err)
		}
		rc, err := azure.ParseRuntimeClaims(hcl.VarData)
		if err != nil {
			return nil, nil, false, fmt.Errorf("azure-vtpm: the HCL report's runtime claims: %w", err)
		}
		if ud, err := hex.DecodeString(rc.UserData); err == nil && subtle.ConstantTimeCompare(ud, reportData[:]) == 1 {
			return raw, hcl, true, nil
		}
		if refresh < 0 || !now().Before(deadline) {
			return raw, hcl, false, nil
		}
		if err := wait(ctx, poll); err != nil {
			return nil, nil, false, err
		}
	}
}

// vtpmQuote is a TPM quote with the PCR values it covers.
type vtpmQuote struct {
	msg, sig []byte
	pcrs     [][]byte
}

// allPCRs selects PCRs 0 to 23 of the SHA-256 bank.
var allPCRs = tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
	{Hash: tpm2.TPMAlgSHA256, PCRSelect: []byte{0xff, 0xff, 0xff}},
}}

// quote has the AK quote all PCRs with reportData, and reads the PCR
// values. The AK must be the HCLAkPub of the HCL report's runtime claims.
// A PCR extended between the quote and the read makes it quote again, at
// most three times.
func quote(t transport.TPM, hcl *azure.HCLReport, reportData [64]byte) (*vtpmQuote, error) {
	rc, err := azure.ParseRuntimeClaims(hcl.VarData)
	if err != nil {
		return nil, fmt.Errorf("the HCL report's runtime claims: %w", err)
	}
	want, err := rc.AKPub()
	if err != nil {
		return nil, fmt.Errorf("the HCL report's runtime claims: %w", err)
	}
	pub, err := tpm2.ReadPublic{ObjectHandle: akHandle}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("reading the attestation key %#08x: %w", uint32(akHandle), err)
	}
	got, err := rsaPublic(pub.OutPublic)
	if err != nil {
		return nil, fmt.Errorf("the attestation key %#08x: %w", uint32(akHandle), err)
	}
	if !got.Equal(want) {
		return nil, fmt.Errorf("the attestation key %#08x is not the %s of the HCL report's runtime claims", uint32(akHandle), azure.KeyIDAK)
	}
	var lastErr error
	for range 3 {
		rsp, err := tpm2.Quote{
			SignHandle:     tpm2.AuthHandle{Handle: akHandle, Name: pub.Name, Auth: tpm2.PasswordAuth(nil)},
			QualifyingData: tpm2.TPM2BData{Buffer: reportData[:]},
			InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
			PCRSelect:      allPCRs,
		}.Execute(t)
		if err != nil {
			return nil, fmt.Errorf("quoting with the attestation key %#08x: %w", uint32(akHandle), err)
		}
		if rsp.Signature.SigAlg != tpm2.TPMAlgRSASSA {
			return nil, fmt.Errorf("the attestation key signed with algorithm %#x, not RSASSA", uint16(rsp.Signature.SigAlg))
		}
		s, err := rsp.Signature.Signature.RSASSA()
		if err != nil || s.Hash != tpm2.TPMAlgSHA256 {
			return nil, fmt.Errorf("the attestation key's signature is not RSASSA with SHA-256")
		}
		q := &vtpmQuote{msg: rsp.Quoted.Bytes(), sig: s.Sig.Buffer}
		parsed, err := azure.ParseQuote(q.msg)
		if err != nil {
			return nil, fmt.Errorf("the TPM's quote: %w", err)
		}
		if q.pcrs, err = readPCRs(t); err != nil {
			return nil, err
		}
		if _, err := parsed.CheckPCRs(q.pcrs); err != nil {
			lastErr = err
			continue
		}
		return q, nil
	}
	return nil, fmt.Errorf("the PCRs kept changing while they were quoted: %w", lastErr)
}

// rsaPublic returns the RSA key of a TPM public area.
func rsaPublic(p tpm2.TPM2BPublic) (*rsa.PublicKey, error) {
	pub, err := p.Contents()
	if err != nil {
		return nil, err
	}
	if pub.Type != tpm2.TPMAlgRSA {
		return nil, fmt.Errorf("it is of type %#x, not RSA", uint16(pub.Type))
	}
	parms, err := pub.Parameters.RSADetail()
	if err != nil {
		return nil, err
	}
	n, err := pub.Unique.RSA()
	if err != nil {
		return nil, err
	}
	e := int(parms.Exponent)
	if e == 0 {
		e = 65537
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n.Buffer), E: e}, nil
}

// readPCRs reads PCRs 0 to 23 of the SHA-256 bank, in order, over as many
// PCR_Read calls as the TPM needs (it returns at most 8 values a call).
func readPCRs(t transport.TPM) ([][]byte, error) {
	vals := make([][]byte, azure.PCRCount)
	left := azure.PCRCount
	for left > 0 {
		sel := make([]byte, 3)
		for i, v := range vals {
			if v == nil {
				sel[i/8] |= 1 << (i % 8)
			}
		}
		rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: sel}}}}.Execute(t)
		if err != nil {
			return nil, fmt.Errorf("reading the PCRs: %w", err)
		}
		got, err := pcrValues(rsp, sel)
		if err != nil {
			return nil, err
		}
		if len(got) == 0 {
			return nil, errors.New("reading the PCRs: the TPM returned no SHA-256 PCR value")
		}
		for i, v := range got {
			vals[i] = v
			left--
		}
	}
	return vals, nil
}

// pcrValues matches a PCR_Read response to the PCRs it selected, which
// must be among those asked for (asked), each of 32 bytes.
func pcrValues(rsp *tpm2.PCRReadResponse, asked []byte) (map[int][]byte, error) {
	var idx []int
	for _, s := range rsp.PCRSelectionOut.PCRSelections {
		if s.Hash != tpm2.TPMAlgSHA256 {
			return nil, fmt.Errorf("reading the PCRs: the TPM returned bank %#x, not SHA-256", uint16(s.Hash))
		}
		for i := range min(len(s.PCRSelect), len(asked)) * 8 {
			if s.PCRSelect[i/8]&(1<<(i%8)) != 0 {
				if asked[i/8]&(1<<(i%8)) == 0 {
					return nil, fmt.Errorf("reading the PCRs: the TPM returned PCR %d, which was not asked for", i)
				}
				idx = append(idx, i)
			}
		}
	}
	if len(idx) != len(rsp.PCRValues.Digests) {
		return nil, fmt.Errorf("reading the PCRs: the TPM selected %d PCRs but returned %d values", len(idx), len(rsp.PCRValues.Digests))
	}
	out := make(map[int][]byte, len(idx))
	for k, i := range idx {
		d := rsp.PCRValues.Digests[k].Buffer
		if len(d) != 32 {
			return nil, fmt.Errorf("reading the PCRs: PCR %d is %d bytes, not 32", i, len(d))
		}
		out[i] = bytes.Clone(d)
	}
	return out, nil
}

// sleep waits d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
