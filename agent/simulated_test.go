package agent_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/attest/formats"
	"github.com/trustbound/trustbound/manifest"
)

// A simulated TD measures what the manifest pins: its quote verifies and
// carries MRTD, MRCONFIGID, the pinned RTMRs and the report data.
func TestSimulatedForTDX(t *testing.T) {
	fill := func(b byte) attest.Hex { return bytes.Repeat([]byte{b}, 48) }
	w := manifest.Workload{Name: "td", TEE: attest.TDX, Reference: manifest.Reference{
		Measurements: []attest.Hex{fill(0x11)},
		HostData:     fill(0x22),
		TDX:          &manifest.TDXRegisters{RTMR1: fill(0x33), RTMR3: fill(0x44), MROwner: fill(0x55)},
	}}
	tee, err := agent.SimulatedFor(w)
	if err != nil {
		t.Fatal(err)
	}
	if tee.TEE() != attest.TDX {
		t.Fatalf("TEE %s", tee.TEE())
	}
	rd := attest.NativeReportData([]byte(`{"nonce":"n"}`))
	ev, err := tee.Attest(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := formats.Registry(formats.Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := reg.Verify(context.Background(), ev, attest.Options{Now: time.Now(), AllowSimulated: true})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !c.Simulated || !bytes.Equal(c.Measurement, fill(0x11)) || !bytes.Equal(c.HostData, fill(0x22)) || !bytes.Equal(c.ReportData, rd[:]) {
		t.Errorf("claims: simulated %v measurement %x host data %x report data %x", c.Simulated, c.Measurement, c.HostData, c.ReportData)
	}
	for name, want := range map[string]attest.Hex{"rtmr0": make([]byte, 48), "rtmr1": fill(0x33), "rtmr3": fill(0x44), "mrowner": fill(0x55)} {
		if got := c.Platform[name]; got != want.String() {
			t.Errorf("%s = %q, want %s", name, got, want)
		}
	}
}
