package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/advise"
)

// adviseJSON runs advise with --format json and decodes the output
// strictly into advise.Result.
func adviseJSON(t *testing.T, stdin io.Reader, terminal bool, args ...string) (*advise.Result, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if err := runAdvise(append([]string{"--format", "json"}, args...), stdin, terminal, &out, &errb); err != nil {
		t.Fatalf("advise %q: %v\n%s", args, err, errb.String())
	}
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	var res advise.Result
	if err := dec.Decode(&res); err != nil {
		t.Fatalf("output does not decode strictly: %v", err)
	}
	if dec.More() {
		t.Fatal("more than one JSON value")
	}
	return &res, errb.String()
}

func topID(t *testing.T, res *advise.Result) string {
	t.Helper()
	top, ok := res.Top()
	if !ok {
		t.Fatal("every option excluded")
	}
	return top.ID
}

func TestAdviseFlags(t *testing.T) {
	res, _ := adviseJSON(t, strings.NewReader(""), false, "--legacy")
	if got := topID(t, res); got != "confidential-vm" {
		t.Errorf("--legacy: top %s", got)
	}
	res, _ = adviseJSON(t, strings.NewReader(""), false, "--cloud-native", "--kubernetes=yes")
	if got := topID(t, res); got != "confidential-pod" {
		t.Errorf("cloud-native on kubernetes: top %s", got)
	}
	res, _ = adviseJSON(t, strings.NewReader(""), false, "--exclude-guest-admin")
	if got := topID(t, res); got != "confidential-pod" {
		t.Errorf("--exclude-guest-admin: top %s", got)
	}
	for _, r := range res.Ranking {
		if r.Model == "confidential-vm" && (r.Rank != 0 || len(r.Excluded) == 0 || !strings.HasPrefix(r.Excluded[0], "excluded: the guest administrator")) {
			t.Errorf("%s: rank %d, excluded %q", r.ID, r.Rank, r.Excluded)
		}
	}
	// --answer works for any question; =no and =unknown are answers too.
	res, _ = adviseJSON(t, strings.NewReader(""), false, "--answer", "kubernetes=no", "--gpu=no", "--legacy=unknown")
	got := map[string]advise.Answer{}
	for _, qa := range res.Answers {
		got[qa.ID] = qa.Answer
	}
	if got["kubernetes"] != advise.No || got["gpu"] != advise.No || got["legacy"] != advise.Unknown {
		t.Errorf("answers %v", got)
	}
}

func TestAdviseAnswersFile(t *testing.T) {
	f := writeFile(t, "answers.json", `{"legacy": true, "kubernetes": "yes"}`)
	res, _ := adviseJSON(t, strings.NewReader(""), false, "--answers", f)
	if got := topID(t, res); got != "confidential-vm" {
		t.Errorf("top %s", got)
	}
	// Flags override the file: legacy=unknown drops it.
	res, _ = adviseJSON(t, strings.NewReader(""), false, "--answers", f, "--legacy=unknown", "--cloud-native")
	if got := topID(t, res); got != "confidential-pod" {
		t.Errorf("with overrides: top %s", got)
	}
	bad := writeFile(t, "bad.json", `{"legacy": "sure"}`)
	err := runAdvise([]string{"--answers", bad}, strings.NewReader(""), false, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), bad+`: answers.legacy: "sure" is not "yes", "no" or "unknown"`) {
		t.Errorf("bad file: %v", err)
	}
}

func TestAdviseInteractive(t *testing.T) {
	// A pipe-like reader stands in for the terminal: legacy yes, then
	// multi-os no; the input ends, the rest stay unknown.
	res, stderr := adviseJSON(t, strings.NewReader("y\nn\n"), true)
	if !strings.Contains(stderr, "[1/13] Is it a legacy application that cannot be modified or containerized? [y/n/u] ") ||
		!strings.Contains(stderr, "(input ended: the remaining answers are unknown)") {
		t.Errorf("stderr:\n%s", stderr)
	}
	if res.Answers[0].Answer != advise.Yes || res.Answers[1].Answer != advise.No || res.Answers[2].Answer != advise.Unknown {
		t.Errorf("answers %+v", res.Answers[:3])
	}
	if got := topID(t, res); got != "confidential-vm" {
		t.Errorf("top %s", got)
	}
	// Answers given: no questions even on a terminal.
	_, stderr = adviseJSON(t, strings.NewReader("y\n"), true, "--gpu")
	if stderr != "" {
		t.Errorf("asked although answered:\n%s", stderr)
	}
	// No terminal, no answers: all unknown, said so.
	res, stderr = adviseJSON(t, strings.NewReader("y\n"), false)
	if !strings.Contains(stderr, "no answers given") || topID(t, res) != "confidential-vm" || res.Ranking[0].Score != 0 {
		t.Errorf("stderr %q, top %+v", stderr, res.Ranking[0])
	}
}

func TestAdviseTextAndSVG(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"advise", "--kubernetes", "--cloud-native", "--gpu"}, &out, io.Discard); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	text := out.String()
	for _, s := range []string{
		"1. confidential VM node pool [cvm-node-pool]  score 7",
		"2. confidential container pod (pod TEE) [confidential-pod]  score 6",
		"   excluded: an SGX enclave cannot take a GPU into its boundary; data handed to the GPU leaves the enclave",
		"     - hostData: The digest of the init-data document holding the pod's agent policy",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("text lacks %q:\n%s", s, text)
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"advise", "--format", "svg", "--legacy"}, &out, io.Discard); code != exitOK {
		t.Fatalf("svg: exit %d", code)
	}
	dec := xml.NewDecoder(&out)
	var title string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not XML: %v", err)
		}
		if cd, ok := tok.(xml.CharData); ok && strings.HasPrefix(string(cd), "Trust boundary: ") {
			title = string(cd)
		}
	}
	if title != "Trust boundary: confidential VM" {
		t.Errorf("title %q", title)
	}
}

func TestAdviseErrors(t *testing.T) {
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--format", "yaml", "--gpu"}, exitUsage, `--format "yaml": want text, json or svg`},
		{[]string{"--gpu=perhaps"}, exitUsage, `answer "perhaps" is not yes, no or unknown`},
		{[]string{"--answer", "gpu"}, exitUsage, `"gpu" is not ID=yes|no|unknown`},
		{[]string{"--answer", "quantum=yes"}, exitUsage, `unknown question "quantum"`},
		{[]string{"--gpu", "no"}, exitUsage, `advise takes no arguments, got ["no"]`},
		{[]string{"--format", "svg", "--legacy", "--exclude-guest-admin", "--gpu"}, exitRefused, "no option to draw: every option is excluded"},
		{[]string{"--rules", "/nonexistent/rules.yaml"}, exitRefused, "no such file"},
	}
	for _, tt := range tests {
		var errb bytes.Buffer
		code := run(context.Background(), append([]string{"advise"}, tt.args...), io.Discard, &errb)
		if code != tt.code || !strings.Contains(errb.String(), tt.msg) {
			t.Errorf("%q: exit %d, stderr %q; want %d, %q", tt.args, code, errb.String(), tt.code, tt.msg)
		}
	}
}

func TestAdviseRulesFile(t *testing.T) {
	rules := writeFile(t, "rules.yaml", `version: 1
questions:
  - {id: quantum, ask: "Post-quantum?"}
options:
  - id: vm
    name: VM
    boundary: {model: confidential-vm, tee: tdx}
    tees: [tdx]
    pin: [{claim: measurements, why: MRTD}]
  - id: enclave
    name: enclave
    boundary: {model: enclave, tee: sgx}
    tees: [sgx]
    pin: [{claim: signer, why: MRSIGNER}]
rules:
  - {id: q, question: quantum, when: "yes", weights: {enclave: 1}, because: test}
`)
	res, _ := adviseJSON(t, strings.NewReader(""), false, "--rules", rules, "--answer", "quantum=yes")
	if got := topID(t, res); got != "enclave" || len(res.Ranking) != 2 {
		t.Errorf("top %s of %d", got, len(res.Ranking))
	}
	bad := writeFile(t, "bad.yaml", "version: 1\nquestions: []\n")
	err := runAdvise([]string{"--rules", bad}, strings.NewReader(""), false, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), bad+": advise rules: questions: none") {
		t.Errorf("bad rules: %v", err)
	}
}
