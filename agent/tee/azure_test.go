package tee

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/azure"
	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/attest/simtee"
)

func verifyOpts() attest.Options { return attest.Options{Now: time.Now(), AllowSimulated: true} }

func registry(t *testing.T) *attest.Registry {
	t.Helper()
	reg, err := formats.Registry(formats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func nonce(s string) [64]byte {
	var n [64]byte
	copy(n[:], s)
	return n
}

// provisionSNP plays Azure and its paravisor on the swtpm: an AK at
// 0x81000003 and an HCL report whose simulated SNP report binds runtime
// claims naming that AK, with userData as user-data. It returns the VCEK.
func provisionSNP(t *testing.T, s *swtpm, userData [64]byte) []byte {
	t.Helper()
	var vcek []byte
	s.with(t, func(tpm TPM) {
		ak := provisionAK(t, tpm, 1)
		varData := runtimeClaims(t, ak, userData)
		snpEv, err := (simtee.SNP{Measurement: [48]byte{0xaa}}).Attest(context.Background(), varDataReportData(varData))
		if err != nil {
			t.Fatal(err)
		}
		writeNV(t, tpm, nvHCLReport, hclReport(uint32(azure.ReportTypeSNP), snpEv.Data, varData))
		extendPCR(t, tpm, 0, "firmware")
		extendPCR(t, tpm, 23, "application")
		vcek = snpEv.Certs[0]
	})
	return vcek
}

func TestAzureVTPMSNPOnSWTPM(t *testing.T) {
	ctx := context.Background()
	s := startSWTPM(t)
	bound := nonce("the nonce the paravisor put into the HCL report as user-data....")
	vcek := provisionSNP(t, s, bound)
	a, err := NewAzureVTPM(ctx, s.open, AzureConfig{
		VCEK:    func(context.Context) ([]byte, error) { return vcek, nil },
		TDQuote: noTDQuote,
		Refresh: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.TEE() != attest.SEVSNP {
		t.Fatalf("TEE %q, want %q", a.TEE(), attest.SEVSNP)
	}
	reg := registry(t)
	var wantPCRs [][]byte
	s.with(t, func(tpm TPM) {
		if wantPCRs, err = readPCRs(tpm); err != nil {
			t.Fatal(err)
		}
	})

	for _, tc := range []struct {
		name        string
		reportData  [64]byte
		wantVersion string
	}{
		// The HCL report carries the report data as user-data: schema 2.
		{"renewed HCL report", bound, "2"},
		// It does not (swtpm has no paravisor to renew it): schema 1, bound
		// by the TPM quote alone.
		{"stale HCL report", nonce("a nonce the paravisor never saw"), "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := a.Attest(ctx, tc.reportData)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Format != attest.FormatAzureSNPVTPM || len(ev.Certs) != 0 {
				t.Fatalf("evidence format %q with %d certs", ev.Format, len(ev.Certs))
			}
			c, err := reg.Verify(ctx, ev, verifyOpts())
			if err != nil {
				t.Fatalf("the coordinator's verifier refuses the vTPM evidence: %v", err)
			}
			if !bytes.Equal(c.ReportData, tc.reportData[:]) {
				t.Errorf("claims report data %x, want %x", c.ReportData, tc.reportData)
			}
			if !c.Simulated || c.TEE != attest.SEVSNP || c.Measurement[0] != 0xaa {
				t.Errorf("claims simulated=%v tee=%q measurement=%x", c.Simulated, c.TEE, c.Measurement)
			}
			if got := c.Platform["evidence_version"]; got != tc.wantVersion {
				t.Errorf("evidence version %q, want %q", got, tc.wantVersion)
			}
			if len(c.PCRs) != 24 {
				t.Fatalf("%d PCRs, want 24", len(c.PCRs))
			}
			for i, v := range wantPCRs {
				if !bytes.Equal(c.PCRs[i], v) {
					t.Errorf("PCR %d = %x, the TPM has %x", i, c.PCRs[i], v)
				}
			}
			// The report data went to NV 0x01400002 for the paravisor.
			s.with(t, func(tpm TPM) {
				ud, err := nvReadAll(tpm, nvUserData)
				if err != nil || !bytes.Equal(ud, tc.reportData[:]) {
					t.Errorf("NV %#x holds %x (%v), want the report data", uint32(nvUserData), ud, err)
				}
			})
		})
	}

	t.Run("tampered evidence is refused", func(t *testing.T) {
		ev, err := a.Attest(ctx, bound)
		if err != nil {
			t.Fatal(err)
		}
		foreign, err := (simtee.AzureSNP{}).Attest(ctx, bound)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range []struct {
			name string
			edit func(e, f map[string]any)
			want error
		}{
			{"foreign quote", func(e, f map[string]any) { e["tpm_quote"] = f["tpm_quote"] }, attest.ErrSignature},
			{"quote message altered", func(e, _ map[string]any) {
				q := e["tpm_quote"].(map[string]any)
				msg := q["message"].(string)
				q["message"] = msg[:len(msg)-2] + flipHex(msg[len(msg)-2:])
			}, attest.ErrSignature},
			{"PCR value altered", func(e, _ map[string]any) {
				q := e["tpm_quote"].(map[string]any)
				pcrs := q["pcrs"].([]any)
				pcrs[5] = strings.Repeat("ab", 32)
			}, attest.ErrBinding},
		} {
			t.Run(m.name, func(t *testing.T) {
				var e, f map[string]any
				if err := json.Unmarshal(ev.Data, &e); err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(foreign.Data, &f); err != nil {
					t.Fatal(err)
				}
				m.edit(e, f)
				data, err := json.Marshal(e)
				if err != nil {
					t.Fatal(err)
				}
				_, err = reg.Verify(ctx, &attest.Evidence{Format: ev.Format, Data: data}, verifyOpts())
				if !errors.Is(err, m.want) {
					t.Fatalf("verify = %v, want %v", err, m.want)
				}
			})
		}
	})

	t.Run("an AK the HCL report does not name is refused", func(t *testing.T) {
		s.with(t, func(tpm TPM) { provisionAK(t, tpm, 2) })
		_, err := a.Attest(ctx, bound)
		if err == nil || !strings.Contains(err.Error(), "is not the HCLAkPub") {
			t.Fatalf("attest with a foreign AK = %v, want a refusal", err)
		}
	})
}

func flipHex(s string) string {
	b, _ := hex.DecodeString(s)
	b[0] ^= 0xff
	return hex.EncodeToString(b)
}

func TestAzureVTPMTDXOnSWTPM(t *testing.T) {
	ctx := context.Background()
	s := startSWTPM(t)
	rd := nonce("tdx nonce")
	td := simtee.TDX{MRTD: [48]byte{0x77}}
	s.with(t, func(tpm TPM) {
		ak := provisionAK(t, tpm, 3)
		varData := runtimeClaims(t, ak, rd)
		writeNV(t, tpm, nvHCLReport, hclReport(uint32(azure.ReportTypeTDX), td.Report(varDataReportData(varData)), varData))
	})
	var quoted []byte
	a, err := NewAzureVTPM(ctx, s.open, AzureConfig{
		TDQuote: func(ctx context.Context, report []byte) ([]byte, error) {
			quoted = report
			ev, err := td.Quote(ctx, report)
			if err != nil {
				return nil, err
			}
			return ev.Data, nil
		},
		Refresh: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if a.TEE() != attest.TDX {
		t.Fatalf("TEE %q, want %q", a.TEE(), attest.TDX)
	}
	ev, err := a.Attest(ctx, rd)
	if err != nil {
		t.Fatal(err)
	}
	if len(quoted) != 1024 {
		t.Errorf("the TD quote was asked for a %d-byte report, want the 1024-byte TDREPORT", len(quoted))
	}
	if ev.Format != attest.FormatAzureTDXVTPM {
		t.Fatalf("format %q", ev.Format)
	}
	c, err := registry(t).Verify(ctx, ev, verifyOpts())
	if err != nil {
		t.Fatalf("the coordinator's verifier refuses the vTPM evidence: %v", err)
	}
	if !bytes.Equal(c.ReportData, rd[:]) || c.TEE != attest.TDX || c.Measurement[0] != 0x77 {
		t.Errorf("claims report data %x tee %q measurement %x", c.ReportData, c.TEE, c.Measurement)
	}
}

func TestAzureVTPMRefusals(t *testing.T) {
	ctx := context.Background()
	s := startSWTPM(t)
	// A TPM without the HCL report is no Azure vTPM.
	_, err := NewAzureVTPM(ctx, s.open, AzureConfig{})
	if err == nil || !strings.Contains(err.Error(), "no NV index 0x01400001") {
		t.Fatalf("NewAzureVTPM without an HCL report = %v", err)
	}
	// Nor is one whose HCL report is malformed.
	s.with(t, func(tpm TPM) {
		// The HCL report is read in chunks of swtpm's NV buffer size.
		if n := nvBufferMax(tpm); n != 1024 {
			t.Errorf("swtpm's TPM_PT_NV_BUFFER_MAX read as %d, want 1024", n)
		}
		writeNV(t, tpm, nvHCLReport, []byte("HCLA but nothing else"))
	})
	_, err = NewAzureVTPM(ctx, s.open, AzureConfig{})
	if !errors.Is(err, attest.ErrMalformed) {
		t.Fatalf("NewAzureVTPM with a malformed HCL report = %v, want ErrMalformed", err)
	}
	// An unreachable TPM.
	_, err = NewAzureVTPM(ctx, func() (TPM, error) { return nil, errors.New("no TPM here") }, AzureConfig{})
	if err == nil || !strings.Contains(err.Error(), "no TPM here") {
		t.Fatalf("NewAzureVTPM without a TPM = %v", err)
	}
}

func TestAzureVTPMWaitsForTheParavisor(t *testing.T) {
	ctx := context.Background()
	s := startSWTPM(t)
	old := nonce("the previous report data")
	vcek := provisionSNP(t, s, old)
	a, err := NewAzureVTPM(ctx, s.open, AzureConfig{
		VCEK:    func(context.Context) ([]byte, error) { return vcek, nil },
		Refresh: time.Minute, Poll: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	// A cancelled wait ends the attestation rather than running the minute.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	s.with(t, func(tpm TPM) {
		if _, _, _, err := a.readHCL(cctx, tpm, nonce("new")); !errors.Is(err, context.Canceled) {
			t.Fatalf("readHCL with a cancelled context = %v, want context.Canceled", err)
		}
	})
}
