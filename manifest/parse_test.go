package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustbound/trustbound/attest"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseGood(t *testing.T) {
	for _, name := range []string{"good.yaml", "good.json"} {
		t.Run(name, func(t *testing.T) {
			m, err := Parse(readTestdata(t, name))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("Validate:\n%v", err)
			}
		})
	}
}

func TestParseValues(t *testing.T) {
	m, err := Parse(readTestdata(t, "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != 1 || m.TrustDomain != "example.org" || m.AllowSimulated {
		t.Errorf("header = %d %q %v", m.Version, m.TrustDomain, m.AllowSimulated)
	}
	if len(m.Owners) != 2 || m.Owners[1].Name != "bob" || !strings.HasPrefix(m.Owners[1].PublicKey, "-----BEGIN PUBLIC KEY-----\nMCow") {
		t.Errorf("owners = %+v", m.Owners)
	}
	signer := m.Workloads[1]
	if signer.Model != Enclave || signer.TEE != attest.SGX {
		t.Errorf("signer = %s on %s", signer.Model, signer.TEE)
	}
	r := signer.Reference
	if len(r.Measurements) != 1 || !bytes.Equal(r.Measurements[0], bytes.Repeat([]byte{1}, 32)) {
		t.Errorf("measurement shorthand: measurements = %x", r.Measurements)
	}
	if r.ProductID == nil || *r.ProductID != 7 || r.MinSVN == nil || *r.MinSVN != 3 {
		t.Errorf("productID, minSVN = %v, %v", r.ProductID, r.MinSVN)
	}
	if got := strings.Join(r.AcceptedTCB, ","); got != "UpToDate,SWHardeningNeeded" {
		t.Errorf("acceptedTCB = %s", got)
	}
	if s := m.Secrets[3]; s.Type != X509 || s.Subject != "web.example.org" || len(s.DNSNames) != 2 {
		t.Errorf("tls = %+v", s)
	}
}

// TestParseYAMLText: where the schema wants a string, YAML numbers are
// taken as written.
func TestParseYAMLText(t *testing.T) {
	hexDigits := strings.Repeat("1", 96)
	m, err := Parse([]byte("version: 1\nworkloads:\n  - name: 0123\n    reference: {measurement: " + hexDigits + "}\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := m.Workloads[0]
	if w.Name != "0123" || w.Reference.Measurements[0].String() != hexDigits {
		t.Errorf("name %q, measurement %s", w.Name, w.Reference.Measurements[0])
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int    // 0: not checked
		path     string // checked when line > 0 or wantPath
		wantPath bool
		msg      string
	}{
		{"yaml unknown field", "version: 1\nvesion: 2\n", 2, "", true, `unknown field "vesion"`},
		{"json unknown nested field", `{"workloads": [{"reference": {"measurment": "aa"}}]}`, 1, "workloads[0].reference", true, `unknown field "measurment"`},
		{"yaml unknown nested field", "workloads:\n  - name: a\n    reference:\n      mrenclave: aa\n", 4, "workloads[0].reference", true, `unknown field "mrenclave"`},
		{"json key case matters", `{"Version": 1}`, 1, "", true, `unknown field "Version"`},
		{"yaml key case matters", "TrustDomain: x\n", 1, "", true, `unknown field "TrustDomain"`},
		{"yaml alias", "owners:\n  - &o {name: a}\n  - *o\n", 2, "owners[0]", true, "YAML anchor &o not allowed"},
		{"yaml anchor on scalar", "trustDomain: &td x\n", 1, "trustDomain", true, "YAML anchor &td not allowed"},
		{"yaml merge key", "workloads:\n  - <<: {name: a}\n", 2, "workloads[0]", true, "YAML merge key << not allowed"},
		{"yaml integer key", "1: a\n", 1, "", true, "keys must be strings, got the number 1"},
		{"yaml boolean key", "true: a\n", 1, "", true, "keys must be strings, got the boolean true"},
		{"yaml sequence key", "? [a]\n: b\n", 1, "", true, "keys must be strings, got a sequence"},
		{"yaml duplicate key", "version: 1\nversion: 1\n", 2, "", true, `duplicate key "version" (first on line 1)`},
		{"yaml duplicate nested key", "owners:\n  - name: a\n    name: b\n", 3, "owners[0]", true, `duplicate key "name"`},
		{"json duplicate key", "{\"version\": 1,\n \"version\": 1}", 2, "", true, `duplicate key "version"`},
		{"json duplicate nested key", `{"owners": [{"name": "a", "name": "b"}]}`, 1, "owners[0]", true, `duplicate key "name"`},
		{"yaml measurement and measurements", "workloads:\n  - reference:\n      measurements: [aa]\n      measurement: aa\n", 4, "workloads[0].reference", true, `set either "measurements" or "measurement", not both`},
		{"json measurement and measurements", `{"workloads": [{"reference": {"measurement": "aa", "measurements": []}}]}`, 1, "workloads[0].reference", true, "not both"},
		{"json trailing object", `{"version": 1} {}`, 1, "", true, "trailing data after the manifest"},
		{"json trailing garbage", "{\"version\": 1}\nx", 0, "", false, "trailing data after the manifest"},
		{"yaml two documents", "version: 1\n---\nversion: 1\n", 2, "", true, "more than one YAML document"},
		{"empty", "", 0, "", false, "empty manifest"},
		{"only a comment", "# nothing\n", 0, "", false, "empty manifest"},
		{"yaml null document", "null\n", 1, "", true, "must be a mapping, not null"},
		{"json unterminated", " {", 0, "", false, "JSON: unexpected end of input"},
		{"yaml sequence document", "[1]\n", 1, "", true, "want a mapping, got a sequence"},
		{"yaml syntax", "version: 1\n  bad: [\n", 0, "", false, "yaml: "},
		{"json syntax", "{\n\"version\": 1,\n}", 3, "", true, "JSON: invalid character '}'"},
		{"yaml string for integer", "version: \"1\"\n", 1, "version", true, `want an integer, got the string "1"`},
		{"json string for integer", "{\n  \"owners\": [],\n  \"version\": \"1\"\n}", 3, "version", true, "want an integer, got a string"},
		{"yaml float for integer", "version: 1.5\n", 1, "version", true, "want an integer, got the number 1.5"},
		{"json float for integer", `{"version": 1.0}`, 1, "version", true, "want a decimal integer, got 1.0"},
		{"json exponent", `{"version": 1e0}`, 1, "version", true, "want a decimal integer, got 1e0"},
		{"yaml hex integer", "version: 0x1\n", 1, "version", true, "want a decimal integer, got 0x1"},
		{"yaml octal integer", "version: 010\n", 1, "version", true, "want a decimal integer, got 010"},
		{"yaml negative zero", "version: -0\n", 1, "version", true, "want a decimal integer, got -0"},
		{"productID range", "workloads:\n  - reference: {productID: 65536}\n", 2, "workloads[0].reference.productID", true, "65536 is out of range (0 to 65535)"},
		{"minSVN negative", `{"workloads": [{"reference": {"minSVN": -1}}]}`, 1, "workloads[0].reference.minSVN", true, "-1 is out of range (0 to 4294967295)"},
		{"version huge", `{"version": 99999999999999999999}`, 1, "version", true, "out of range"},
		{"yaml string for bool", "allowSimulated: \"true\"\n", 1, "allowSimulated", true, `want true or false, got the string "true"`},
		{"yaml yes is not a bool", "allowSimulated: yes\n", 1, "allowSimulated", true, "want true or false"},
		{"json number for bool", `{"allowSimulated": 1}`, 1, "allowSimulated", true, "want true or false, got a number"},
		{"yaml bool for string", "trustDomain: true\n", 1, "trustDomain", true, "want a string, got the boolean true"},
		{"json object for string", `{"trustDomain": {}}`, 1, "trustDomain", true, "want a string, got an object"},
		{"yaml mapping for list", "owners: {name: a}\n", 1, "owners", true, "want a sequence, got a mapping"},
		{"json string for list", `{"owners": "a"}`, 1, "owners", true, "want an array, got a string"},
		{"json array for object", `{"workloads": [[]]}`, 1, "workloads[0]", true, "want an object, got an array"},
		{"yaml custom tag", "version: !num 1\n", 1, "version", true, "got a value tagged !num"},
		{"yaml binary tag", "trustDomain: !!binary aGk=\n", 1, "trustDomain", true, "want a string, got a value tagged !!binary"},
		{"not hex", "workloads:\n  - reference: {signer: zz}\n", 2, "workloads[0].reference.signer", true, "not hex: byte 'z' at position 0"},
		{"0x hex", `{"workloads": [{"reference": {"hostData": "0xab"}}]}`, 1, "workloads[0].reference.hostData", true, "without the 0x prefix"},
		{"odd hex", "workloads:\n  - reference: {measurements: [abc]}\n", 2, "workloads[0].reference.measurements[0]", true, "odd number of digits (3)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", m)
			}
			pe, ok := errors.AsType[*ParseError](err)
			if !ok {
				t.Fatalf("error %T %q is not a *ParseError", err, err)
			}
			if !strings.Contains(pe.Msg, tt.msg) {
				t.Errorf("Msg = %q, want it to contain %q", pe.Msg, tt.msg)
			}
			if tt.line > 0 && pe.Line != tt.line {
				t.Errorf("Line = %d, want %d (%v)", pe.Line, tt.line, err)
			}
			if tt.wantPath && pe.Path != tt.path {
				t.Errorf("Path = %q, want %q (%v)", pe.Path, tt.path, err)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	big := append([]byte("version: 1\n"), bytes.Repeat([]byte("#\n"), MaxSize/2)...)
	if _, err := Parse(big); !errors.Is(err, ErrTooLarge) {
		t.Errorf("Parse(%d bytes) = %v, want ErrTooLarge", len(big), err)
	}
	if _, err := Parse(big[:MaxSize]); err != nil {
		t.Errorf("Parse(MaxSize bytes) = %v", err)
	}
}

func TestParseErrorString(t *testing.T) {
	e := &ParseError{Line: 4, Path: "workloads[0].reference", Msg: `unknown field "measurment"`}
	if got, want := e.Error(), `line 4: workloads[0].reference: unknown field "measurment"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := (&ParseError{Msg: "empty manifest"}).Error(); got != "empty manifest" {
		t.Errorf("Error() = %q", got)
	}
}

func TestReferenceUnmarshalJSON(t *testing.T) {
	var r Reference
	if err := json.Unmarshal([]byte(`{"measurement": "aabb", "debug": true}`), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Measurements) != 1 || r.Measurements[0].String() != "aabb" || !r.Debug {
		t.Errorf("r = %+v", r)
	}
	for in, want := range map[string]string{
		`{"measurement": "aa", "measurements": ["bb"]}`: "not both",
		`{"mrenclave": "aa"}`:                           `unknown field "mrenclave"`,
		`{"measurement": "xyz"}`:                        "not hex",
	} {
		var r Reference
		if err := json.Unmarshal([]byte(in), &r); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Unmarshal(%s) = %v, want %q", in, err, want)
		}
	}
	r = Reference{Debug: true}
	if err := json.Unmarshal([]byte(`null`), &r); err != nil || !r.Debug {
		t.Errorf("null: %v, %+v", err, r)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := readTestdata(t, "good.yaml")
	m, raw, err := Load(write("good.yaml", good))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, good) || len(m.Workloads) != 3 {
		t.Errorf("Load returned %d bytes, %d workloads", len(raw), len(m.Workloads))
	}

	_, _, err = Load(write("bad.yaml", bytes.Replace(good, []byte("version: 1"), []byte("version: 2"), 1)))
	if fe, ok := errors.AsType[*FieldError](err); !ok || fe.Path != "version" {
		t.Errorf("Load(bad) = %v, want a FieldError at version", err)
	}
	_, _, err = Load(write("syntax.yaml", []byte("version: [")))
	if _, ok := errors.AsType[*ParseError](err); !ok {
		t.Errorf("Load(syntax) = %v, want a ParseError", err)
	}
	_, _, err = Load(write("big.yaml", bytes.Repeat([]byte("#\n"), MaxSize)))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("Load(big) = %v, want ErrTooLarge", err)
	}
	if _, _, err = Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestDigest(t *testing.T) {
	if got, want := Digest(nil), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; got != want {
		t.Errorf("Digest(nil) = %s, want %s", got, want)
	}
	if got, want := Digest([]byte("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; got != want {
		t.Errorf("Digest(abc) = %s, want %s", got, want)
	}
}

func TestLookups(t *testing.T) {
	m, err := Parse(readTestdata(t, "good.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w, ok := m.Workload("web")
	if !ok || w != &m.Workloads[2] {
		t.Errorf("Workload(web) = %v, %v", w, ok)
	}
	if w, ok := m.Workload("nope"); ok || w != nil {
		t.Errorf("Workload(nope) = %v, %v", w, ok)
	}
	names := func(ss []Secret) string {
		var n []string
		for _, s := range ss {
			n = append(n, s.Name)
		}
		return strings.Join(n, ",")
	}
	for wl, want := range map[string]string{
		"ledger-vm": "db-password,disk-key",
		"web":       "disk-key,tls",
		"signer":    "signing-key",
		"nope":      "",
	} {
		if got := names(m.SecretsFor(wl)); got != want {
			t.Errorf("SecretsFor(%s) = %s, want %s", wl, got, want)
		}
	}
}

func TestTCBAccepted(t *testing.T) {
	if got := (Reference{}).TCBAccepted(); len(got) != 1 || got[0] != TCBUpToDate {
		t.Errorf("default = %v", got)
	}
	r := Reference{AcceptedTCB: []string{TCBUpToDate, TCBSWHardeningNeeded}}
	got := r.TCBAccepted()
	got[0] = "changed"
	if r.AcceptedTCB[0] != TCBUpToDate || len(got) != 2 {
		t.Errorf("TCBAccepted shares its slice: %v", r.AcceptedTCB)
	}
}

func TestParseSNPReferenceValues(t *testing.T) {
	doc := strings.Replace(string(readTestdata(t, "good.yaml")), "    tee: sev-snp\n", "    tee: sev-snp\n", 1)
	i := strings.Index(doc, "    reference:\n")
	doc = doc[:i+len("    reference:\n")] + "      minTCB: {bootloader: 2, snp: 5, microcode: 68}\n      vmpl: 1\n      allowMigrationAgent: true\n" + doc[i+len("    reference:\n"):]
	m, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	r := m.Workloads[0].Reference
	got := r.MinTCB.Components()
	if len(got) != 3 || got["bootloader"] != 2 || got["snp"] != 5 || got["microcode"] != 68 || r.VMPLOrDefault() != 1 || !r.AllowMigrationAgent {
		t.Errorf("reference %+v, components %v", r, got)
	}
	if _, err := Parse([]byte(strings.Replace(doc, "microcode: 68", "microcode: 300", 1))); err == nil {
		t.Error("a TCB component above 255 parsed")
	}
	if _, err := Parse([]byte(strings.Replace(doc, "microcode: 68", "ucode: 68", 1))); err == nil {
		t.Error("an unknown TCB component parsed")
	}
}
