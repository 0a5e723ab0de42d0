package azure_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/azure"
)

func TestParseHCLReportReal(t *testing.T) {
	for _, tc := range []struct {
		name               string
		hcl                []byte
		version            uint32
		typ                azure.ReportType
		varSize, hwVersion int
	}{
		{"evidence-v1 (Milan)", mustEvidence(t, "evidence-v1.json").HCLReport, 1, azure.ReportTypeSNP, 1110, 3},
		{"evidence-genoa", mustEvidence(t, "evidence-genoa.json").HCLReport, 2, azure.ReportTypeSNP, 1200, 3},
		{"hcl-report.bin (report v2)", readTestdata(t, "hcl-report.bin"), 1, azure.ReportTypeSNP, 1110, 2},
		{"tdx-hcl-report.bin", readTestdata(t, "tdx-hcl-report.bin"), 2, azure.ReportTypeTDX, 1201, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.hcl) != azure.NVReportSize {
				t.Fatalf("%d bytes", len(tc.hcl))
			}
			r, err := azure.ParseHCLReport(tc.hcl)
			if err != nil {
				t.Fatal(err)
			}
			if r.Version != tc.version || r.ReportType != tc.typ || r.HashType != azure.HashSHA256 || r.RequestType != azure.RequestTypeAKCert || len(r.VarData) != tc.varSize {
				t.Errorf("version %d type %v hash %v request %d var data %d", r.Version, r.ReportType, r.HashType, r.RequestType, len(r.VarData))
			}
			rd := r.ReportData()
			h := sha256.Sum256(r.VarData)
			if !bytes.Equal(rd[:32], h[:]) || !bytes.Equal(rd[32:], make([]byte, 32)) {
				t.Errorf("report data %x", rd)
			}
			switch tc.typ {
			case azure.ReportTypeSNP:
				// The SNP report's REPORT_DATA (offset 0x50) is what Azure
				// binds: SHA-256(var data) and 32 zero bytes.
				if v := binary.LittleEndian.Uint32(r.HardwareReport); int(v) != tc.hwVersion || !bytes.Equal(r.HardwareReport[0x50:0x90], rd[:]) {
					t.Errorf("SNP report version %d, report data %x", v, r.HardwareReport[0x50:0x90])
				}
			case azure.ReportTypeTDX:
				// TDREPORT's REPORTMACSTRUCT report data is at offset 128.
				if len(r.HardwareReport) != 1024 || !bytes.Equal(r.HardwareReport[128:192], rd[:]) {
					t.Errorf("TDREPORT of %d bytes, report data %x", len(r.HardwareReport), r.HardwareReport[128:192])
				}
			}
		})
	}
}

func mustEvidence(t testing.TB, name string) *azure.Evidence {
	t.Helper()
	e, err := azure.ParseEvidence(readTestdata(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestParseHCLReportRefuses(t *testing.T) {
	real := mustEvidence(t, "evidence-v1.json").HCLReport
	tdx := readTestdata(t, "tdx-hcl-report.bin")
	put := func(b []byte, off int, v uint32) []byte {
		b = bytes.Clone(b)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	set := func(b []byte, off int, v byte) []byte {
		b = bytes.Clone(b)
		b[off] = v
		return b
	}
	for name, b := range map[string][]byte{
		"empty":                          nil,
		"fixed part only, short":         real[:1235],
		"signature":                      set(real, 0, 'X'),
		"version 0":                      put(real, 4, 0),
		"version 3":                      put(real, 4, 3),
		"report size":                    put(real, 8, 2345),
		"report size past the buffer":    put(real, 8, 2601),
		"request type key release":       put(real, 12, 1),
		"status":                         put(real, 16, 5),
		"reserved":                       set(real, 31, 1),
		"data size":                      put(real, 1216, 1129),
		"request data version 2":         put(real, 1220, 2),
		"report type VBS":                put(real, 1224, 1),
		"hash type 0":                    put(real, 1228, 0),
		"var data size":                  put(real, 1232, 1111),
		"var data size wraps":            put(put(real, 1232, 0xffffffff), 1216, 19),
		"non-zero after the report":      set(real, 2346, 1),
		"one byte more":                  append(bytes.Clone(real), 0),
		"one byte less":                  real[:2599],
		"TDX: non-zero after TDREPORT":   set(tdx, 32+1024, 1),
		"NV size and report size differ": append(bytes.Clone(real[:2346]), make([]byte, 100)...),
	} {
		t.Run(name, func(t *testing.T) {
			r, err := azure.ParseHCLReport(b)
			if !errors.Is(err, attest.ErrMalformed) || r != nil {
				t.Fatalf("want ErrMalformed, got %v", err)
			}
		})
	}
}
