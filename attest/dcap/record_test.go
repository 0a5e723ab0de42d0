package dcap_test

import (
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/dcap"
)

// TestResultRecord: a verdict lands in the claims as both verifiers
// report it, tdx_module_tcb_status only when the module identity applied,
// and the advisories are a copy.
func TestResultRecord(t *testing.T) {
	res := &dcap.Result{
		Status:            dcap.OutOfDate,
		Advisories:        []string{"INTEL-SA-00001"},
		PlatformStatus:    dcap.UpToDate,
		TCBLevel:          dcap.TCBLevel{TCBDate: time.Date(2024, 3, 13, 0, 0, 0, 0, time.FixedZone("x", 3600))},
		QEStatus:          dcap.OutOfDate,
		TCBInfo:           &dcap.TCBInfo{TCBEvaluationDataNumber: 17},
		RevocationChecked: true,
	}
	want := map[string]string{
		"platform_tcb_status":        "UpToDate",
		"qe_tcb_status":              "OutOfDate",
		"tcb_date":                   "2024-03-12T23:00:00Z",
		"tcb_evaluation_data_number": "17",
	}
	c := &attest.Claims{Platform: map[string]string{}}
	res.Record(c)
	if !c.TCB.Evaluated || c.TCB.Status != "OutOfDate" || !slices.Equal(c.TCB.Advisories, []string{"INTEL-SA-00001"}) ||
		!c.RevocationChecked || !maps.Equal(c.Platform, want) {
		t.Errorf("SGX verdict: %+v", c)
	}
	res.Advisories[0] = "changed"
	if c.TCB.Advisories[0] != "INTEL-SA-00001" {
		t.Error("the claims share the Result's advisories")
	}

	res.TDXModuleStatus = dcap.UpToDate
	c = &attest.Claims{Platform: map[string]string{}}
	res.Record(c)
	want["tdx_module_tcb_status"] = "UpToDate"
	if !maps.Equal(c.Platform, want) {
		t.Errorf("TDX verdict: Platform %v, want %v", c.Platform, want)
	}
}
