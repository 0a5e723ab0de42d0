package advise

import (
	"strings"
	"testing"
)

const smallRules = `version: 1
questions:
  - {id: k8s, ask: "On Kubernetes?"}
options:
  - id: vm
    name: VM
    boundary: {model: confidential-vm, tee: sev-snp}
    tees: [sev-snp, tdx]
    pin: [{claim: measurements, why: launch}]
  - id: pod
    name: pod
    boundary: {model: confidential-container, tee: tdx}
    tees: [tdx]
    pin: [{claim: hostData, why: policy}]
rules:
  - {id: r1, question: k8s, when: "yes", weights: {pod: 2}, because: pods need a cluster}
exclusions:
  - {id: x1, question: k8s, when: "no", exclude: [pod], because: no cluster}
`

func TestParseSmallRules(t *testing.T) {
	r, err := ParseRules([]byte(smallRules))
	if err != nil {
		t.Fatal(err)
	}
	res, err := Advise(r, Answers{"k8s": No})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(res); len(got) != 2 || got[0] != "vm" || res.Ranking[1].Excluded[0] != "excluded: no cluster" {
		t.Errorf("ranking %v, %+v", got, res.Ranking[1])
	}
	res, _ = Advise(r, Answers{"k8s": Yes})
	if top, _ := res.Top(); top.ID != "pod" || top.Boundary.TEE != "tdx" {
		t.Errorf("top %+v", top)
	}
}

func TestParseRulesErrors(t *testing.T) {
	tests := []struct{ old, new, err string }{
		{"version: 1", "version: 2", "advise rules: version: is 2; want 1"},
		{"version: 1", "version: 1\nextra: true", "field extra not found"},
		{"name: VM", "name: VM\n    nmae: x", "field nmae not found"},
		{"{id: k8s,", "{id: K8s,", `questions[0].id: "K8s" is not lower-case letters, digits and dashes`},
		{"- id: pod", "- id: vm", `options[1].id: "vm" repeats options[0]`},
		{"{model: confidential-vm, tee: sev-snp}", "{model: confidential-vm, tee: sgx}", "options[0].boundary: deploy: no such deployment: confidential-vm does not run on \"sgx\""},
		{"{model: confidential-vm, tee: sev-snp}", "{model: enclave-vm, tee: sev-snp}", "options[0].boundary: deploy: no such deployment: unknown deployment model \"enclave-vm\""},
		{"tees: [sev-snp, tdx]", "tees: [tdx]", `options[0].tees: does not hold the boundary's TEE "sev-snp"`},
		{"tees: [sev-snp, tdx]", "tees: [sev-snp, sgx]", "options[0].tees[1]: deploy: no such deployment"},
		{"pin: [{claim: measurements, why: launch}]", "pin: []", "options[0].pin: none: every option pins some claims"},
		{"{claim: hostData, why: policy}", "{claim: hostData}", "options[1].pin[0]: claim and why are both required"},
		{"question: k8s, when: \"yes\"", "question: k9s, when: \"yes\"", `rules[0].question: unknown question "k9s"`},
		{"when: \"yes\"", "when: maybe", `rules[0].when: "maybe" is not "yes" or "no"`},
		{"because: pods need a cluster", "because: \"\"", "rules[0].because: empty: every rule explains itself"},
		{"weights: {pod: 2}", "weights: {pods: 2}", "rules[0].weights.pods: unknown option"},
		{"weights: {pod: 2}", "weights: {pod: 0}", "rules[0].weights.pod: zero: leave it out"},
		{"weights: {pod: 2}", "weights: {}", "rules[0].weights: none"},
		{"exclude: [pod]", "exclude: [pdo]", `exclusions[0].exclude[0]: unknown option "pdo"`},
		{"because: no cluster", "because: \" \"", "exclusions[0].because: empty: every rule explains itself"},
		{"version: 1", "version: 1\n---\nversion: 1", "more than one YAML document"},
	}
	for _, tt := range tests {
		in := strings.Replace(smallRules, tt.old, tt.new, 1)
		if in == smallRules {
			t.Fatalf("%q not in the rules", tt.old)
		}
		_, err := ParseRules([]byte(in))
		if err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s → %s: err = %v, want %q", tt.old, tt.new, err, tt.err)
		}
	}
	if _, err := ParseRules(nil); err == nil || err.Error() != "advise rules: empty document" {
		t.Errorf("empty: %v", err)
	}
}

func FuzzParseRules(f *testing.F) {
	f.Add(defaultRules)
	f.Add([]byte(smallRules))
	f.Add([]byte("version: 1\n"))
	f.Add([]byte("a: &a [*a, *a]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRules(data)
		if err != nil {
			return
		}
		// Valid rules always give advice for no answers and for every
		// question answered yes.
		if _, err := Advise(r, nil); err != nil {
			t.Fatal(err)
		}
		all := Answers{}
		for _, q := range r.Questions {
			all[q.ID] = Yes
		}
		if _, err := Advise(r, all); err != nil {
			t.Fatal(err)
		}
	})
}
