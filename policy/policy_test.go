package policy

import (
	"errors"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/manifest"
)

func u16(v uint16) *uint16 { return &v }
func u32(v uint32) *uint32 { return &v }

func bytesOf(b byte, n int) attest.Hex { return attest.Hex(strings.Repeat(string([]byte{b}), n)) }

func sgxWorkload() *manifest.Workload {
	return &manifest.Workload{Name: "signer", Model: manifest.Enclave, TEE: attest.SGX, Reference: manifest.Reference{
		Measurements: []attest.Hex{bytesOf(1, 32), bytesOf(2, 32)},
		Signer:       bytesOf(3, 32),
		ProductID:    u16(7),
		MinSVN:       u32(2),
	}}
}

func sgxClaims() *attest.Claims {
	return &attest.Claims{TEE: attest.SGX, Measurement: bytesOf(2, 32), Signer: bytesOf(3, 32), ProductID: 7, SVN: 2,
		TCB: attest.TCB{Evaluated: true, Status: "UpToDate"}, RevocationChecked: true}
}

func TestAppraiseAffirms(t *testing.T) {
	v, err := Appraise(sgxClaims(), &manifest.Manifest{}, sgxWorkload())
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != "affirming" || v.Workload != "signer" || v.Model != manifest.Enclave || v.Simulated {
		t.Errorf("verdict %+v", v)
	}
}

func TestAppraiseViolations(t *testing.T) {
	for _, tc := range []struct {
		name   string
		edit   func(*attest.Claims, *manifest.Manifest, *manifest.Workload)
		fields []string
	}{
		{"wrong tee", func(c *attest.Claims, _ *manifest.Manifest, _ *manifest.Workload) { c.TEE = attest.SEVSNP }, []string{"tee"}},
		{"measurement", func(c *attest.Claims, _ *manifest.Manifest, _ *manifest.Workload) { c.Measurement = bytesOf(9, 32) }, []string{"measurements"}},
		{"signer", func(c *attest.Claims, _ *manifest.Manifest, _ *manifest.Workload) { c.Signer = bytesOf(9, 32) }, []string{"signer"}},
		{"product", func(c *attest.Claims, _ *manifest.Manifest, _ *manifest.Workload) { c.ProductID = 8 }, []string{"productID"}},
		{"svn", func(c *attest.Claims, _ *manifest.Manifest, _ *manifest.Workload) { c.SVN = 1 }, []string{"minSVN"}},
		{"debug", func(c *attest.Claims, _ *manifest.Manifest, _ *manifest.Workload) { c.Debug = true }, []string{"debug"}},
		{"host data", func(c *attest.Claims, _ *manifest.Manifest, w *manifest.Workload) {
			w.Reference.HostData = bytesOf(5, 64)
		}, []string{"hostData"}},
		{"tcb status", func(c *attest.Claims, _ *manifest.Manifest, _ *manifest.Workload) { c.TCB.Status = "OutOfDate" }, []string{"acceptedTCB"}},
		{"tcb not evaluated", func(c *attest.Claims, _ *manifest.Manifest, _ *manifest.Workload) { c.TCB = attest.TCB{} }, []string{"acceptedTCB"}},
		{"simulated not allowed", func(c *attest.Claims, _ *manifest.Manifest, _ *manifest.Workload) { c.Simulated = true }, []string{"allowSimulated"}},
		{"revocation not checked", func(c *attest.Claims, _ *manifest.Manifest, _ *manifest.Workload) { c.RevocationChecked = false }, []string{"revocation"}},
		{"several at once", func(c *attest.Claims, _ *manifest.Manifest, _ *manifest.Workload) {
			c.Measurement = bytesOf(9, 32)
			c.Debug = true
			c.SVN = 0
		}, []string{"measurements", "minSVN", "debug"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, m, w := sgxClaims(), &manifest.Manifest{}, sgxWorkload()
			tc.edit(c, m, w)
			v, err := Appraise(c, m, w)
			if v != nil || !errors.Is(err, ErrDenied) {
				t.Fatalf("want denial, got %v, %v", v, err)
			}
			var got []string
			for _, v := range violations(err) {
				got = append(got, v.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Errorf("violations %v, want %v (%v)", got, tc.fields, err)
			}
		})
	}
}

func TestSimulatedAllowedNeedsNoTCB(t *testing.T) {
	c := sgxClaims()
	c.Simulated, c.TCB = true, attest.TCB{}
	v, err := Appraise(c, &manifest.Manifest{AllowSimulated: true}, sgxWorkload())
	if err != nil || !v.Simulated {
		t.Fatalf("simulated evidence under allowSimulated: %v, %+v", err, v)
	}
}

func TestDebugAllowedWhenDeclared(t *testing.T) {
	c, w := sgxClaims(), sgxWorkload()
	c.Debug, w.Reference.Debug = true, true
	if _, err := Appraise(c, &manifest.Manifest{}, w); err != nil {
		t.Fatal(err)
	}
}

func TestNothingToAppraise(t *testing.T) {
	if _, err := Appraise(nil, &manifest.Manifest{}, sgxWorkload()); !errors.Is(err, ErrDenied) {
		t.Fatalf("nil claims: %v", err)
	}
}

// violations lists the *Violation leaves of an error tree, in order.
func violations(err error) []*Violation {
	var out []*Violation
	var walk func(error)
	walk = func(e error) {
		if v, ok := e.(*Violation); ok {
			out = append(out, v)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

func u8(v uint8) *uint8 { return &v }

func snpWorkload() *manifest.Workload {
	return &manifest.Workload{Name: "vm", Model: manifest.ConfidentialVM, TEE: attest.SEVSNP, Reference: manifest.Reference{
		Measurements: []attest.Hex{bytesOf(1, 48)},
		MinTCB:       &manifest.TCBFloor{Bootloader: u8(2), SNP: u8(5), Microcode: u8(68)},
	}}
}

func snpClaims() *attest.Claims {
	return &attest.Claims{TEE: attest.SEVSNP, Measurement: bytesOf(1, 48), VMPL: u32(0), RevocationChecked: true,
		TCB: attest.TCB{Components: map[string]uint64{"bootloader": 2, "tee": 0, "snp": 5, "microcode": 68}}}
}

func TestAppraiseSNP(t *testing.T) {
	if _, err := Appraise(snpClaims(), &manifest.Manifest{}, snpWorkload()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		edit   func(*attest.Claims, *manifest.Workload)
		fields []string
	}{
		{"vmpl 1 by default", func(c *attest.Claims, _ *manifest.Workload) { c.VMPL = u32(1) }, []string{"vmpl"}},
		{"no vmpl", func(c *attest.Claims, _ *manifest.Workload) { c.VMPL = nil }, []string{"vmpl"}},
		{"declared vmpl", func(c *attest.Claims, w *manifest.Workload) { w.Reference.VMPL = u32(2) }, []string{"vmpl"}},
		{"migration agent", func(c *attest.Claims, _ *manifest.Workload) { c.MigrationAgent = true }, []string{"allowMigrationAgent"}},
		{"microcode below floor", func(c *attest.Claims, _ *manifest.Workload) { c.TCB.Components["microcode"] = 67 }, []string{"minTCB"}},
		{"component missing", func(c *attest.Claims, _ *manifest.Workload) { delete(c.TCB.Components, "snp") }, []string{"minTCB"}},
		{"two below floor", func(c *attest.Claims, _ *manifest.Workload) {
			c.TCB.Components["bootloader"], c.TCB.Components["snp"] = 1, 4
		}, []string{"minTCB", "minTCB"}},
		{"unpinned workload", func(c *attest.Claims, w *manifest.Workload) { w.Reference.Measurements = nil }, []string{"measurements"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, w := snpClaims(), snpWorkload()
			tc.edit(c, w)
			_, err := Appraise(c, &manifest.Manifest{}, w)
			var got []string
			for _, v := range violations(err) {
				got = append(got, v.Field)
			}
			if !errors.Is(err, ErrDenied) || strings.Join(got, ",") != strings.Join(tc.fields, ",") {
				t.Errorf("violations %v, want %v (%v)", got, tc.fields, err)
			}
		})
	}
	// What the workload declares is accepted.
	c, w := snpClaims(), snpWorkload()
	c.VMPL, w.Reference.VMPL = u32(2), u32(2)
	c.MigrationAgent, w.Reference.AllowMigrationAgent = true, true
	if _, err := Appraise(c, &manifest.Manifest{}, w); err != nil {
		t.Errorf("declared VMPL and migration agent: %v", err)
	}
}

func TestAppraiseAdvisories(t *testing.T) {
	c, w := sgxClaims(), sgxWorkload()
	c.TCB = attest.TCB{Evaluated: true, Status: "SWHardeningNeeded", Advisories: []string{"INTEL-SA-00334", "INTEL-SA-00615"}}
	w.Reference.AcceptedTCB = []string{"UpToDate", "SWHardeningNeeded"}
	_, err := Appraise(c, &manifest.Manifest{}, w)
	if got := violations(err); len(got) != 2 || got[0].Field != "acceptedAdvisories" {
		t.Fatalf("unaccepted advisories: %v", err)
	}
	w.Reference.AcceptedAdvisories = []string{"INTEL-SA-00334"}
	if got := violations(func() error { _, err := Appraise(c, &manifest.Manifest{}, w); return err }()); len(got) != 1 || !strings.Contains(got[0].Msg, "INTEL-SA-00615") {
		t.Fatalf("one advisory accepted: %v", got)
	}
	w.Reference.AcceptedAdvisories = []string{"INTEL-SA-00334", "INTEL-SA-00615"}
	if _, err := Appraise(c, &manifest.Manifest{}, w); err != nil {
		t.Fatalf("both accepted: %v", err)
	}
	w.Reference.AcceptedAdvisories = []string{"*"}
	if _, err := Appraise(c, &manifest.Manifest{}, w); err != nil {
		t.Fatalf("any accepted: %v", err)
	}
}

func TestAppraiseTDXRegisters(t *testing.T) {
	rtmr1 := bytesOf(7, 48)
	w := &manifest.Workload{Name: "td", Model: manifest.ConfidentialVM, TEE: attest.TDX, Reference: manifest.Reference{
		Measurements: []attest.Hex{bytesOf(1, 48)}, TDX: &manifest.TDXRegisters{RTMR1: rtmr1},
	}}
	c := &attest.Claims{TEE: attest.TDX, Measurement: bytesOf(1, 48), RevocationChecked: true,
		TCB: attest.TCB{Evaluated: true, Status: "UpToDate"}, Platform: map[string]string{"rtmr1": rtmr1.String()}}
	if _, err := Appraise(c, &manifest.Manifest{}, w); err != nil {
		t.Fatal(err)
	}
	c.Platform["rtmr1"] = bytesOf(8, 48).String()
	if got := violations(func() error { _, err := Appraise(c, &manifest.Manifest{}, w); return err }()); len(got) != 1 || got[0].Field != "tdx.rtmr1" {
		t.Fatalf("wrong RTMR1: %v", got)
	}
	delete(c.Platform, "rtmr1")
	if got := violations(func() error { _, err := Appraise(c, &manifest.Manifest{}, w); return err }()); len(got) != 1 || !strings.Contains(got[0].Msg, "not reported") {
		t.Fatalf("missing RTMR1: %v", got)
	}
}

// Azure CVM evidence: the SNP measurement is the paravisor's, so the guest
// must be pinned by its PCRs.
func TestAppraisePCRs(t *testing.T) {
	pcr0, pcr7 := bytesOf(0xa0, 32), bytesOf(0xa7, 32)
	c := snpClaims()
	c.PCRs = map[int]attest.Hex{0: pcr0, 7: pcr7}
	w := snpWorkload()
	if got := violations(func() error { _, err := Appraise(c, &manifest.Manifest{}, w); return err }()); len(got) != 1 || got[0].Field != "pcrs" || !strings.Contains(got[0].Msg, "paravisor") {
		t.Fatalf("unpinned PCRs: %v", got)
	}
	w.Reference.PCRs = []manifest.PCR{{Index: 0, Digest: pcr0}, {Index: 7, Digest: pcr7}}
	if _, err := Appraise(c, &manifest.Manifest{}, w); err != nil {
		t.Fatal(err)
	}
	c.PCRs[7] = bytesOf(0xff, 32)
	if got := violations(func() error { _, err := Appraise(c, &manifest.Manifest{}, w); return err }()); len(got) != 1 || !strings.Contains(got[0].Msg, "PCR 7") {
		t.Fatalf("wrong PCR 7: %v", got)
	}
	// Pinned PCRs but evidence without any (not a paravisor guest): refused.
	c.PCRs = nil
	if got := violations(func() error { _, err := Appraise(c, &manifest.Manifest{}, w); return err }()); len(got) != 2 {
		t.Fatalf("no PCRs reported: %v", got)
	}
}

func TestAllowUncheckedRevocation(t *testing.T) {
	c, w := snpClaims(), snpWorkload()
	c.RevocationChecked = false
	if _, err := Appraise(c, &manifest.Manifest{}, w); err == nil {
		t.Fatal("unchecked revocation accepted by default")
	}
	w.Reference.AllowUncheckedRevocation = true
	if _, err := Appraise(c, &manifest.Manifest{}, w); err != nil {
		t.Fatalf("explicitly allowed: %v", err)
	}
}
