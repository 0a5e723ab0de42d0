package advise

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAnswers(t *testing.T) {
	rules := testRules(t)
	got, err := ParseAnswers(rules, []byte(`{"legacy": true, "gpu": false, "windows": "yes", "kubernetes": "no", "multi-cloud": null, "whole-os": "unknown"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Answers{"legacy": Yes, "gpu": No, "windows": Yes, "kubernetes": No}); !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, err := ParseAnswers(rules, []byte(" {} \n")); err != nil || len(got) != 0 {
		t.Errorf("{}: %v, %v", got, err)
	}
}

func TestParseAnswersErrors(t *testing.T) {
	rules := testRules(t)
	tests := []struct{ in, err string }{
		{``, "answers: EOF"},
		{`[]`, "answers: not a JSON object"},
		{`"yes"`, "answers: not a JSON object"},
		{`{"legacyy": true}`, "answers.legacyy: unknown question (known: legacy, multi-os,"},
		{`{"gpu": true, "gpu": false}`, "answers.gpu: given twice"},
		{`{"gpu": "maybe"}`, `answers.gpu: "maybe" is not "yes", "no" or "unknown"`},
		{`{"gpu": "Yes"}`, `answers.gpu: "Yes" is not "yes", "no" or "unknown"`},
		{`{"gpu": 1}`, `answers.gpu: want true, false, null, "yes", "no" or "unknown"`},
		{`{"gpu": {}}`, `answers.gpu: want true, false, null, "yes", "no" or "unknown"`},
		{`{"gpu": true} {}`, "answers: data after the JSON object"},
		{`{"gpu": true`, "answers: EOF"},
		{`{"gpu" true}`, "answers.gpu: invalid character 't' after object key"},
		{`{"gpu": true,}`, "answers: invalid character '}' looking for beginning of object key string"},
		{`{"gpu": true}` + strings.Repeat(" ", MaxAnswersSize), "answers: larger than 65536 bytes"},
	}
	for _, tt := range tests {
		_, err := ParseAnswers(rules, []byte(tt.in))
		if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
			t.Errorf("%.40q: err = %v, want prefix %q", tt.in, err, tt.err)
		}
	}
}

func TestAsk(t *testing.T) {
	rules := testRules(t)
	// One line per question in order (13), and "maybe" asked again.
	in := strings.NewReader("y\nN\n\nmaybe\nyes\nu\nno\n?\nY\nn\nunknown\ny\nn\nno\n")
	var prompts strings.Builder
	got, err := Ask(rules, in, &prompts)
	if err != nil {
		t.Fatal(err)
	}
	want := Answers{"legacy": Yes, "multi-os": No, "migrate-vms": Yes, "cloud-native": No,
		"kubernetes": Yes, "exclude-guest-admin": No, "gpu": Yes, "windows": No, "trust-vendor-firmware": No}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	out := prompts.String()
	for _, s := range []string{
		"[1/13] Is it a legacy application that cannot be modified or containerized? [y/n/u] ",
		`answer "maybe" is not yes, no or unknown; please answer y, n or u.` + "\n[4/13] Are you migrating VMs",
		"[13/13] Do you accept the cloud vendor's firmware and paravisor inside the trust boundary? [y/n/u] ",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("prompts lack %q:\n%s", s, out)
		}
	}
}

func TestAskInputEnds(t *testing.T) {
	got, err := Ask(testRules(t), strings.NewReader("y\nn"), new(strings.Builder))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Answers{"legacy": Yes, "multi-os": No}); !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestAskGivesUp(t *testing.T) {
	_, err := Ask(testRules(t), strings.NewReader("a\nb\nc\ny\n"), new(strings.Builder))
	if err == nil || err.Error() != `question legacy: answer "c" is not yes, no or unknown (asked 3 times)` {
		t.Errorf("err = %v", err)
	}
	_, err = Ask(testRules(t), strings.NewReader(strings.Repeat("y", 1000)+"\n"), new(strings.Builder))
	if err == nil || !strings.Contains(err.Error(), "reading the answer to legacy: bufio.Scanner: token too long") {
		t.Errorf("long line: err = %v", err)
	}
}

func FuzzParseAnswers(f *testing.F) {
	for _, name := range []string{"kubernetes.json", "legacy.json", "guest-admin.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`{}`, `{"gpu": null}`, `{"gpu": true, "gpu": true}`, `{"x": 1}`, `[`, `{"gpu":"no"}  `} {
		f.Add([]byte(s))
	}
	rules := testRules(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAnswers(rules, data)
		if err != nil {
			return
		}
		// What parses is advice, and survives a round trip.
		if _, err := Advise(rules, a); err != nil {
			t.Fatalf("parsed answers %v: %v", a, err)
		}
		for id, v := range a {
			if v == Unknown {
				t.Fatalf("%s kept as unknown", id)
			}
		}
		b, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseAnswers(rules, b)
		if err != nil || !maps.Equal(again, a) {
			t.Fatalf("round trip of %s: %v, %v", b, again, err)
		}
	})
}
