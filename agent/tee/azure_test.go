package tee

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"

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
		writeNV(t, tpm, nvHCLReport, simtee.AzureHCLReport(uint32(azure.ReportTypeSNP), snpEv.Data, varData))
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
		writeNV(t, tpm, nvHCLReport, simtee.AzureHCLReport(uint32(azure.ReportTypeTDX), td.Report(varDataReportData(varData)), varData))
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

// The paravisor renews the HCL report some polls after the report data was
// written: Attest waits for it and returns schema 2 evidence; a paravisor
// that never renews in time leaves schema 1 at the deadline. The clock is
// fake: no test waits.
func TestAzureVTPMPollsUntilTheParavisorRenews(t *testing.T) {
	ctx := context.Background()
	s := startSWTPM(t)
	vcek := provisionSNP(t, s, nonce("the previous report data"))
	reg := registry(t)
	const poll = 200 * time.Millisecond
	for _, tc := range []struct {
		name        string
		renewAfter  int
		wantWaits   int
		wantVersion string
	}{
		{"renewed on the fourth read", 3, 3, "2"},
		{"not renewed within Refresh", 1000, 15, "1"}, // 3 s / 200 ms
	} {
		t.Run(tc.name, func(t *testing.T) {
			pv := newParavisor(t, s, tc.renewAfter)
			a, err := NewAzureVTPM(ctx, pv.open, AzureConfig{
				VCEK: func(context.Context) ([]byte, error) { return vcek, nil }, Refresh: 3 * time.Second, Poll: poll,
			})
			if err != nil {
				t.Fatal(err)
			}
			clk := &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
			a.now, a.wait = clk.now, clk.wait
			rd := nonce("report data of " + tc.name)
			ev, err := a.Attest(ctx, rd)
			if err != nil {
				t.Fatal(err)
			}
			c, err := reg.Verify(ctx, ev, verifyOpts())
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Platform["evidence_version"]; got != tc.wantVersion || string(c.ReportData) != string(rd[:]) {
				t.Errorf("evidence version %q, report data %q; want %q and the report data", got, c.ReportData, tc.wantVersion)
			}
			if clk.waits != tc.wantWaits {
				t.Errorf("waited %d times, want %d", clk.waits, tc.wantWaits)
			}
		})
	}
}

// Concurrent Attest calls on one attester (the TPM shared command by
// command, as /dev/tpmrm0 is) each get evidence of their own report data,
// renewed by the paravisor: one caller's user-data write never lands
// between another's write and its read of the HCL report.
func TestAzureVTPMConcurrentAttest(t *testing.T) {
	ctx := context.Background()
	s := startSWTPM(t)
	vcek := provisionSNP(t, s, nonce("the previous report data"))
	pv := newParavisor(t, s, 0)
	a, err := NewAzureVTPM(ctx, pv.open, AzureConfig{
		VCEK: func(context.Context) ([]byte, error) { return vcek, nil }, Refresh: time.Minute, Poll: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{t: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
	a.now, a.wait = clk.now, clk.wait
	reg := registry(t)
	const callers = 6
	errs := make(chan error, callers)
	for i := range callers {
		go func() {
			rd := nonce(fmt.Sprintf("report data of caller %d", i))
			ev, err := a.Attest(ctx, rd)
			if err != nil {
				errs <- err
				return
			}
			c, err := reg.Verify(ctx, ev, verifyOpts())
			switch {
			case err != nil:
				errs <- fmt.Errorf("caller %d: %w", i, err)
			case string(c.ReportData) != string(rd[:]):
				errs <- fmt.Errorf("caller %d: evidence of report data %q", i, c.ReportData)
			case c.Platform["evidence_version"] != "2":
				errs <- fmt.Errorf("caller %d: evidence version %q, want 2 (the HCL report was renewed with another caller's data)", i, c.Platform["evidence_version"])
			default:
				errs <- nil
			}
		}()
	}
	for range callers {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if n := pv.stats(); n != callers {
		t.Errorf("the paravisor renewed %d times, want %d", n, callers)
	}
}

// A user-data index left at another size by another tool is redefined at
// 64 bytes, as Azure's tools do, when the owner may; otherwise refused.
func TestWriteUserDataRedefinesAWrongSizedIndex(t *testing.T) {
	s := startSWTPM(t)
	rd := nonce("report data")
	s.with(t, func(tpm TPM) {
		writeNV(t, tpm, nvUserData, []byte("nine byte"))
		if err := writeUserData(tpm, rd); err != nil {
			t.Fatalf("writeUserData over a 9-byte index: %v", err)
		}
		pub, _, _, err := nvPublic(tpm, nvUserData)
		if err != nil || pub.DataSize != 64 {
			t.Fatalf("the index is %v bytes (%v), want 64", pub, err)
		}
		if got, err := nvReadAll(tpm, nvUserData); err != nil || string(got) != string(rd[:]) {
			t.Errorf("the index holds %q (%v), want the report data", got, err)
		}

		// An index only its own authorization writes is not this agent's
		// to redefine.
		_, name, _, _ := nvPublic(tpm, nvUserData)
		owner := tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(nil)}
		if _, err := (tpm2.NVUndefineSpace{AuthHandle: owner, NVIndex: tpm2.NamedHandle{Handle: nvUserData, Name: name}}).Execute(tpm); err != nil {
			t.Fatal(err)
		}
		if _, err := (tpm2.NVDefineSpace{AuthHandle: owner, PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
			NVIndex: nvUserData, NameAlg: tpm2.TPMAlgSHA256,
			Attributes: tpm2.TPMANV{AuthWrite: true, AuthRead: true, NoDA: true, NT: tpm2.TPMNTOrdinary}, DataSize: 9,
		})}).Execute(tpm); err != nil {
			t.Fatal(err)
		}
		if err := writeUserData(tpm, rd); err == nil || !strings.Contains(err.Error(), "is 9 bytes, want 64") {
			t.Fatalf("writeUserData over an auth-written 9-byte index = %v, want a refusal", err)
		}
		if pub, _, _, err := nvPublic(tpm, nvUserData); err != nil || pub.DataSize != 9 {
			t.Errorf("the refused index was changed: %v %v", pub, err)
		}
	})
}
