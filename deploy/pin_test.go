package deploy_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/deploy"
	"github.com/trustbound/trustbound/manifest"
)

func hostDataOf(t *testing.T, raw []byte, workload string) attest.Hex {
	t.Helper()
	m, err := manifest.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	w, ok := m.Workload(workload)
	if !ok {
		t.Fatalf("no %s", workload)
	}
	return w.Reference.HostData
}

// changedLines returns the lines of b that differ from a's, when both have
// the same number of lines, else every line of b that a lacks.
func changedLines(a, b []byte) []string {
	al, bl := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	var out []string
	if len(al) == len(bl) {
		for i := range al {
			if al[i] != bl[i] {
				out = append(out, bl[i])
			}
		}
		return out
	}
	seen := map[string]int{}
	for _, l := range al {
		seen[l]++
	}
	for _, l := range bl {
		if seen[l] > 0 {
			seen[l]--
			continue
		}
		out = append(out, l)
	}
	return out
}

func TestPinHostDataKeepsTheRest(t *testing.T) {
	raw := readTestdata(t, "manifest.yaml")
	snp := attest.Hex(bytes.Repeat([]byte{0xab}, 32))
	td := attest.Hex(bytes.Repeat([]byte{0xcd}, 48))

	// Replace a quoted value in place.
	out, err := deploy.PinHostData(raw, "web", snp)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hostDataOf(t, out, "web"), snp) {
		t.Fatal("web's hostData is not pinned")
	}
	if got := changedLines(raw, out); len(got) != 1 || got[0] != `      hostData: "`+snp.String()+`"` {
		t.Errorf("changed lines %q", got)
	}
	// Replace an empty value.
	empty := bytes.Replace(raw, []byte(`hostData: "`+strings.Repeat("77", 48)+`"`), []byte(`hostData: ""`), 1)
	out, err = deploy.PinHostData(empty, "api-td", td)
	if err != nil {
		t.Fatal(err)
	}
	if got := changedLines(empty, out); len(got) != 1 || got[0] != `      hostData: "`+td.String()+`"` {
		t.Errorf("changed lines %q", got)
	}
	// Add a missing key, before the reference's first key; the comment
	// above it stays.
	out, err = deploy.PinHostData(manifest.Sample, "web", snp)
	if err != nil {
		t.Fatal(err)
	}
	if got := changedLines(manifest.Sample, out); len(got) != 1 || got[0] != `      hostData: "`+snp.String()+`"` {
		t.Errorf("changed lines %q", got)
	}
	noHD := bytes.Replace(raw, []byte(`      hostData: "0b6cc0d470443e4214367dbfe7a67cdb0f5728e6640247ca985bff897413ed2f"`+"\n"), nil, 1)
	out, err = deploy.PinHostData(noHD, "web", snp)
	if err != nil {
		t.Fatal(err)
	}
	if got := changedLines(noHD, out); len(got) != 1 || got[0] != `      hostData: "`+snp.String()+`"` {
		t.Errorf("added lines %q", got)
	}
	if !bytes.Equal(hostDataOf(t, out, "web"), snp) {
		t.Fatal("web's hostData is not added")
	}
	if !bytes.Contains(out, []byte("      # The pod VM's launch measurement.\n")) {
		t.Error("a comment was lost")
	}

	// JSON: replaced in place, or the manifest re-encoded when missing.
	m, _ := manifest.Parse(raw)
	js, _ := json.MarshalIndent(m, "", "  ")
	for name, want := range map[string]attest.Hex{"web": snp, "api-td": td} {
		out, err := deploy.PinHostData(js, name, want)
		if err != nil {
			t.Fatalf("JSON %s: %v", name, err)
		}
		if !bytes.Equal(hostDataOf(t, out, name), want) {
			t.Errorf("JSON %s: hostData not pinned", name)
		}
	}
}

func TestPinHostDataRefuses(t *testing.T) {
	raw := readTestdata(t, "manifest.yaml")
	hd := attest.Hex(bytes.Repeat([]byte{1}, 32))
	for name, tc := range map[string]struct {
		raw      []byte
		workload string
		hd       attest.Hex
		want     string
	}{
		"no workload":   {raw, "nope", hd, `no workload "nope"`},
		"no hostData":   {raw, "web", nil, "no hostData to pin"},
		"not manifest":  {[]byte("version: [1"), "web", hd, "manifest: "},
		"flow mapping":  {bytes.Replace(raw, []byte("    reference:\n      measurement: \"5555"), []byte("    reference: {measurement: \"5555"), 1), "batch-td", hd, "flow mapping"},
		"null hostData": {bytes.Replace(raw, []byte(`hostData: "`+strings.Repeat("77", 48)+`"`), []byte("hostData:"), 1), "api-td", hd, "not a value to replace"},
	} {
		if name == "flow mapping" {
			tc.raw = bytes.Replace(tc.raw, []byte("5555\"\n  # A Kata pod on SNP"), []byte("5555\"}\n  # A Kata pod on SNP"), 1)
		}
		out, err := deploy.PinHostData(tc.raw, tc.workload, tc.hd)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q\n%s", name, err, tc.want, out)
		}
	}
}

func FuzzPinHostData(f *testing.F) {
	f.Add(readTestdata(f, "manifest.yaml"), "web")
	f.Add(readTestdata(f, "manifest.yaml"), "api-td")
	f.Add(manifest.Sample, "web")
	f.Add([]byte(`{"version":1,"workloads":[{"name":"w","reference":{"hostData":"00"}}]}`), "w")
	f.Add([]byte("workloads:\n- name: w\n  reference:\n    hostData: 'aa'\n"), "w")
	f.Add([]byte("workloads:\n- name: w\n  reference:\n    hostData: aa # c\n"), "w")
	hd := attest.Hex(bytes.Repeat([]byte{0x5a}, 32))
	f.Fuzz(func(t *testing.T, raw []byte, workload string) {
		out, err := deploy.PinHostData(raw, workload, hd)
		if err != nil {
			return
		}
		m, err := manifest.Parse(out)
		if err != nil {
			t.Fatalf("pinned output does not parse: %v", err)
		}
		w, ok := m.Workload(workload)
		if !ok || !bytes.Equal(w.Reference.HostData, hd) {
			t.Fatal("pinned output does not pin the hostData")
		}
	})
}
