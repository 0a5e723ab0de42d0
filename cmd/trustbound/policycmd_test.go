package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/agent"
	"github.com/trustbound/trustbound/manifest"
)

// dryRunFiles writes the sample manifest (its workloads naming policies
// as given) and a simulated SNP report of ledger-vm with its certificates,
// and returns the manifest's path and the evidence files.
func dryRunFiles(t *testing.T, policies map[string][]string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, err := publicKeyPEM(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Parse(manifest.SampleWith(pub))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m.Workloads {
		m.Workloads[i].Policies = policies[m.Workloads[i].Name]
	}
	raw, _ := json.Marshal(m)
	mf := filepath.Join(dir, "manifest.json")
	os.WriteFile(mf, raw, 0o600)
	w, _ := m.Workload(manifest.SampleLedgerName)
	sim, err := agent.SimulatedFor(*w)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := sim.Attest(context.Background(), [64]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	files := []string{filepath.Join(dir, "report.bin")}
	os.WriteFile(files[0], ev.Data, 0o600)
	for i, c := range ev.Certs {
		f := filepath.Join(dir, fmt.Sprintf("cert%d.der", i))
		os.WriteFile(f, c, 0o600)
		files = append(files, f)
	}
	return mf, files
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func dryRunLayers(t *testing.T, out string) (string, []string) {
	t.Helper()
	var v dryRunOutput
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("dry-run printed no JSON: %v\n%s", err, out)
	}
	var layers []string
	for _, l := range v.Layers {
		layers = append(layers, l.Layer+":"+l.Name+":"+l.Verdict)
	}
	return v.Verdict, layers
}

// `trustbound policy dry-run` appraises a simulated SNP report file with
// the sample manifest and draft policies, offline, layer by layer.
func TestPolicyDryRunOffline(t *testing.T) {
	mf, ev := dryRunFiles(t, map[string][]string{manifest.SampleLedgerName: {"gate"}})
	base := []string{"policy", "dry-run", "--manifest", mf, "--workload", "ledger-vm", "--allow-simulated", "--no-collateral"}
	permit := writeFile(t, "permit.rego", "package trustbound\n\nallow if input.azure[\"x-ms-sevsnpvm-is-debuggable\"] == false\n")
	deny := writeFile(t, "deny.rego", "package trustbound\n\ndefault allow := false\n\ndeny contains \"not today\" if true\n")
	kv := writeFile(t, "kv.json", `{"version":"1.0.0","anyOf":[{"authority":"https://127.0.0.1:8443","allOf":[{"claim":"x-tb-workload","equals":"ledger-vm"}]}]}`)

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		layers []string
	}{
		{"named policy given", []string{"--policy", "gate=" + permit}, exitOK,
			[]string{"evidence::permit", "manifest:ledger-vm:permit", "rego:gate:permit"}},
		{"named policy missing", nil, exitRefused,
			[]string{"evidence::permit", "manifest:ledger-vm:permit", "policy:gate:deny"}},
		{"extra policies after the named", []string{"--policy", "gate=" + permit, "--policy", deny, "--policy", kv}, exitRefused,
			[]string{"evidence::permit", "manifest:ledger-vm:permit", "rego:gate:permit", "rego:deny.rego:deny", "release:kv.json:permit"}},
		{"binding checked with runtime data", []string{"--policy", "gate=" + permit, "--runtime-data", writeFile(t, "rd.json", `{"nonce":"x"}`)}, exitRefused,
			[]string{"evidence::permit", "binding::deny", "manifest:ledger-vm:permit", "rego:gate:permit"}},
	} {
		code, out, errOut := runCmd(t, slices.Concat(base, tc.args, ev)...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d\n%s%s", tc.name, code, tc.code, out, errOut)
			continue
		}
		verdict, layers := dryRunLayers(t, out)
		if want := map[int]string{exitOK: "permit", exitRefused: "deny"}[tc.code]; verdict != want || !slices.Equal(layers, tc.layers) {
			t.Errorf("%s: %s %v, want %s %v", tc.name, verdict, layers, want, tc.layers)
		}
		if tc.code == exitRefused && !strings.Contains(errOut, "denied by the") {
			t.Errorf("%s: stderr %q", tc.name, errOut)
		}
	}

	// Claims on request; a simulated report without --allow-simulated is
	// refused at the evidence layer.
	code, out, _ := runCmd(t, slices.Concat(base, []string{"--claims", "--policy", "gate=" + permit}, ev)...)
	if code != exitOK || !strings.Contains(out, `"x-ms-attestation-type": "sevsnpvm"`) || !strings.Contains(out, `"x-tb-dry-run": true`) {
		t.Errorf("--claims: exit %d\n%s", code, out)
	}
	noSim := slices.DeleteFunc(slices.Clone(base), func(s string) bool { return s == "--allow-simulated" })
	code, out, _ = runCmd(t, slices.Concat(noSim, ev)...)
	if _, layers := dryRunLayers(t, out); code != exitRefused || !slices.Equal(layers, []string{"evidence::deny"}) {
		t.Errorf("without --allow-simulated: exit %d %v", code, layers)
	}

	// A malformed policy is refused with its parser's error; usage errors exit 2.
	bad := writeFile(t, "bad.rego", "package trustbound\nallow if {\n")
	if code, _, e := runCmd(t, slices.Concat(base, []string{"--policy", bad}, ev)...); code != exitRefused || !strings.Contains(e, `rego policy "bad.rego" is refused`) {
		t.Errorf("malformed policy: exit %d %s", code, e)
	}
	for _, args := range [][]string{
		{"policy", "dry-run", "--workload", "ledger-vm", ev[0]},
		{"policy", "dry-run", "--manifest", mf, "--workload", "nobody", ev[0]},
		{"policy", "dry-run", "--manifest", mf, "--workload", "ledger-vm", "--policy", "Upper=" + permit, ev[0]},
		{"policy", "dry-run", "--manifest", mf, "--workload", "ledger-vm", "--at", "soon", ev[0]},
		{"policy"},
		{"policy", "frobnicate"},
		{"policy", "set", "--owner", "o", "name"},
	} {
		if code, _, e := runCmd(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, e)
		}
	}
}
