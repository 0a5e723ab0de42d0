package advise

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.*")

func testRules(t testing.TB) *Rules {
	t.Helper()
	r, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func advise(t *testing.T, a Answers) *Result {
	t.Helper()
	res, err := Advise(testRules(t), a)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func ids(res *Result) []string {
	var out []string
	for _, r := range res.Ranking {
		out = append(out, r.ID)
	}
	return out
}

func scores(res *Result) map[string]int {
	out := map[string]int{}
	for _, r := range res.Ranking {
		out[r.ID] = r.Score
	}
	return out
}

func option(t *testing.T, res *Result, id string) Ranked {
	t.Helper()
	for _, r := range res.Ranking {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("option %s not in the result", id)
	return Ranked{}
}

const (
	cvm  = "confidential-vm"
	pool = "cvm-node-pool"
	pod  = "confidential-pod"
	ec   = "enclave-container"
	lib  = "enclave-libos"
	sdk  = "enclave-sdk"
)

// score builds the expected scores in the options' order.
func score(v ...int) map[string]int {
	return map[string]int{cvm: v[0], pool: v[1], pod: v[2], ec: v[3], lib: v[4], sdk: v[5]}
}

func TestNoAnswersKeepsTheFixedOrder(t *testing.T) {
	res := advise(t, nil)
	if want := []string{cvm, pool, pod, ec, lib, sdk}; !slices.Equal(ids(res), want) {
		t.Errorf("ranking %v, want %v", ids(res), want)
	}
	for i, r := range res.Ranking {
		if r.Score != 0 || r.Rank != i+1 || r.Reasons != nil || r.Excluded != nil {
			t.Errorf("%s: %+v", r.ID, r)
		}
	}
	// Unknown answers count neither way.
	all := Answers{}
	for _, q := range testRules(t).Questions {
		all[q.ID] = Unknown
	}
	if got := advise(t, all); !reflect.DeepEqual(got.Ranking, res.Ranking) {
		t.Errorf("unknown answers changed the ranking: %v", ids(got))
	}
}

// TestEachRule shows each rule's effect alone: the scores, the ranking
// and the reason on every option whose score it changed.
func TestEachRule(t *testing.T) {
	tests := []struct {
		rule    string
		answers Answers
		scores  map[string]int
		ranking []string
	}{
		{"legacy-lift-and-shift", Answers{"legacy": Yes}, score(4, 0, 0, 0, -1, 0), []string{cvm, lib, pool, pod, ec, sdk}},
		{"multi-os", Answers{"multi-os": Yes}, score(3, 1, 0, 0, -1, 0), []string{cvm, pool, pod, ec, sdk, lib}},
		{"whole-os", Answers{"whole-os": Yes}, score(4, 1, -1, -3, -2, -3), []string{cvm, pool, pod, lib, ec, sdk}},
		{"migrate-vms", Answers{"migrate-vms": Yes}, score(4, 0, -1, -1, -1, -1), []string{cvm, pool, pod, ec, lib, sdk}},
		{"cost-pressure", Answers{"cost-pressure": Yes}, score(-1, 1, 2, 1, 0, 0), []string{pod, pool, ec, lib, sdk, cvm}},
		{"cloud-native", Answers{"cloud-native": Yes}, score(-1, 2, 3, 2, 1, 2), []string{pod, pool, ec, sdk, lib, cvm}},
		{"not-cloud-native", Answers{"cloud-native": No}, score(0, 0, -1, -2, 0, -3), []string{cvm, pool, lib, pod, ec, sdk}},
		{"multi-cloud", Answers{"multi-cloud": Yes}, score(2, 1, -2, -2, -2, -2), []string{cvm, pool, pod, ec, lib, sdk}},
		{"kubernetes", Answers{"kubernetes": Yes}, score(-2, 3, 4, 3, -1, -1), []string{pod, pool, ec, lib, sdk, cvm}},
		{"not-kubernetes", Answers{"kubernetes": No}, score(0, -3, -3, -3, 0, 0), []string{cvm, lib, sdk, pool, pod, ec}},
		{"guest-admin-outside", Answers{"exclude-guest-admin": Yes}, score(0, 0, 2, 2, 2, 2), []string{pod, ec, lib, sdk, cvm, pool}},
		{"cluster-admin-outside", Answers{"exclude-cluster-admin": Yes}, score(0, 0, 3, 2, 0, 0), []string{pod, ec, cvm, lib, sdk, pool}},
		{"gpu", Answers{"gpu": Yes}, score(3, 2, -1, 0, 0, 0), []string{cvm, pool, pod, ec, lib, sdk}},
		{"windows", Answers{"windows": Yes}, score(3, 0, 0, 0, 0, 0), []string{cvm, pool, sdk, pod, ec, lib}},
		{"firmware-trusted", Answers{"trust-vendor-firmware": Yes}, score(1, 1, 1, 0, 0, 0), []string{cvm, pool, pod, ec, lib, sdk}},
		{"firmware-not-trusted", Answers{"trust-vendor-firmware": No}, score(-3, -3, -2, 1, 1, 2), []string{sdk, ec, lib, pod, cvm, pool}},
	}
	rules := testRules(t)
	tested := map[string]bool{}
	for _, tt := range tests {
		tested[tt.rule] = true
		t.Run(tt.rule, func(t *testing.T) {
			res := advise(t, tt.answers)
			if got := scores(res); !reflect.DeepEqual(got, tt.scores) {
				t.Errorf("scores %v, want %v", got, tt.scores)
			}
			if got := ids(res); !slices.Equal(got, tt.ranking) {
				t.Errorf("ranking %v, want %v", got, tt.ranking)
			}
			for _, r := range res.Ranking {
				hasReason := slices.ContainsFunc(r.Reasons, func(why Reason) bool { return why.Rule == tt.rule && why.Delta == r.Score })
				if hasReason != (r.Score != 0) {
					t.Errorf("%s (score %d): reasons %+v", r.ID, r.Score, r.Reasons)
				}
			}
		})
	}
	for _, r := range rules.Rules {
		if !tested[r.ID] {
			t.Errorf("rule %s has no case here", r.ID)
		}
	}
}

// TestEachExclusion shows each hard exclusion with its explanation: the
// options stay in the result, last, with "excluded: <why>".
func TestEachExclusion(t *testing.T) {
	tests := []struct {
		exclusion string
		answers   Answers
		excluded  []string
		text      string
	}{
		{"legacy-cannot-containerize", Answers{"legacy": Yes}, []string{pool, pod, ec},
			"excluded: the application cannot be containerized, and node pools, pods and enclave-aware containers run containers only"},
		{"legacy-cannot-modify", Answers{"legacy": Yes}, []string{sdk},
			"excluded: the application cannot be modified, and an SDK enclave means rewriting it into trusted and untrusted parts"},
		{"guest-admin-inside-cvm", Answers{"exclude-guest-admin": Yes}, []string{cvm, pool},
			"excluded: the guest administrator (root in the VM) is inside a confidential VM's trust boundary and can read everything in it"},
		{"cluster-admin-inside-node", Answers{"exclude-cluster-admin": Yes}, []string{pool},
			"excluded: the cluster administrator schedules and execs into the pods on a confidential node, so is inside the node's boundary"},
		{"gpu-outside-enclave", Answers{"gpu": Yes}, []string{ec, lib, sdk},
			"excluded: an SGX enclave cannot take a GPU into its boundary; data handed to the GPU leaves the enclave"},
		{"windows-pods-linux-only", Answers{"windows": Yes}, []string{pod, ec, lib},
			"excluded: confidential pods run Linux containers in a Linux pod VM, and enclave-aware containers and library OSes (Gramine, Occlum, EGo) are Linux only"},
	}
	tested := map[string]bool{}
	for _, tt := range tests {
		tested[tt.exclusion] = true
		t.Run(tt.exclusion, func(t *testing.T) {
			res := advise(t, tt.answers)
			for _, id := range tt.excluded {
				r := option(t, res, id)
				if !slices.Contains(r.Excluded, tt.text) {
					t.Errorf("%s: excluded %q, want %q among them", id, r.Excluded, tt.text)
				}
				if r.Rank != 0 {
					t.Errorf("%s: excluded but rank %d", id, r.Rank)
				}
			}
			// Excluded options come after every option that can serve.
			seenExcluded := false
			for _, r := range res.Ranking {
				if len(r.Excluded) > 0 {
					seenExcluded = true
				} else if seenExcluded {
					t.Errorf("%s is ranked after an excluded option: %v", r.ID, ids(res))
				}
			}
		})
	}
	for _, ex := range testRules(t).Exclusions {
		if !tested[ex.ID] {
			t.Errorf("exclusion %s has no case here", ex.ID)
		}
	}
}

// The deployment guide's own scenarios.
func TestScenarios(t *testing.T) {
	t.Run("legacy app: confidential VM first", func(t *testing.T) {
		res := advise(t, Answers{"legacy": Yes})
		if top, _ := res.Top(); top.ID != cvm {
			t.Errorf("top %s, want %s (%v)", top.ID, cvm, ids(res))
		}
		res = advise(t, loadAnswers(t, "legacy.json"))
		if top, _ := res.Top(); top.ID != cvm || top.Score != 11 {
			t.Errorf("legacy.json: top %s score %d, want %s score 11 (%v)", top.ID, top.Score, cvm, ids(res))
		}
	})
	t.Run("cloud-native on Kubernetes: confidential pod first", func(t *testing.T) {
		res := advise(t, Answers{"cloud-native": Yes, "kubernetes": Yes})
		if top, _ := res.Top(); top.ID != pod || top.Score != 7 {
			t.Errorf("top %s score %d, want %s score 7 (%v)", top.ID, top.Score, pod, ids(res))
		}
		res = advise(t, loadAnswers(t, "kubernetes.json"))
		if top, _ := res.Top(); top.ID != pod || top.Score != 12 {
			t.Errorf("kubernetes.json: top %s score %d, want %s score 12 (%v)", top.ID, top.Score, pod, ids(res))
		}
	})
	t.Run("guest admin excluded: enclave or pod first, never a CVM", func(t *testing.T) {
		for _, a := range []Answers{
			{"exclude-guest-admin": Yes},
			{"exclude-guest-admin": Yes, "legacy": No, "whole-os": Yes, "migrate-vms": Yes, "multi-os": Yes},
			loadAnswers(t, "guest-admin.json"),
		} {
			res := advise(t, a)
			top, _ := res.Top()
			if top.Model == "confidential-vm" || !slices.Contains([]string{pod, ec, lib, sdk}, top.ID) {
				t.Errorf("%v: top %s", a, top.ID)
			}
			for _, id := range []string{cvm, pool} {
				r := option(t, res, id)
				if len(r.Excluded) == 0 || !strings.Contains(r.Excluded[0], "guest administrator (root in the VM) is inside") {
					t.Errorf("%v: %s excluded %q", a, id, r.Excluded)
				}
			}
		}
		if top, _ := advise(t, loadAnswers(t, "guest-admin.json")).Top(); top.ID != sdk {
			t.Errorf("guest-admin.json: top %s, want %s", top.ID, sdk)
		}
	})
	t.Run("everything excluded", func(t *testing.T) {
		res := advise(t, Answers{"legacy": Yes, "exclude-guest-admin": Yes, "gpu": Yes})
		if top, ok := res.Top(); ok {
			t.Errorf("top %s, want none", top.ID)
		}
		var text bytes.Buffer
		if err := WriteText(&text, res); err != nil || !strings.Contains(text.String(), "No option fits: every one is excluded.") {
			t.Errorf("text: %v\n%s", err, text.String())
		}
		if err := WriteSVG(io.Discard, res); err == nil {
			t.Error("SVG of nothing: no error")
		}
	})
}

func TestBoundaryFromDeploy(t *testing.T) {
	res := advise(t, nil)
	pool := option(t, res, pool)
	if !slices.Contains(pool.Boundary.Inside, "VM administrators (root in the guest)") ||
		!slices.Contains(pool.Boundary.Inside, "Kubernetes control plane") ||
		!slices.Contains(pool.Boundary.Outside, "cloud operator") {
		t.Errorf("node pool boundary %+v", pool.Boundary)
	}
	pod := option(t, res, pod)
	if slices.Contains(pod.Boundary.Inside, "cluster administrator") || !slices.Contains(pod.Boundary.Outside, "cluster administrator") {
		t.Errorf("pod boundary %+v", pod.Boundary)
	}
	if !slices.ContainsFunc(pod.Caveats, func(c string) bool { return strings.HasPrefix(c, "No exec in a policy-locked pod") }) {
		t.Errorf("pod caveats %q", pod.Caveats)
	}
	if pod.Pin[0].Claim != "hostData" {
		t.Errorf("pod pins %+v first", pod.Pin[0])
	}
	sdk := option(t, res, sdk)
	if sdk.Boundary.TEE != "sgx" || !slices.Contains(sdk.Boundary.Outside, "guest OS") || sdk.Boundary.TCB[0] != "the Intel CPU and its SGX microcode" {
		t.Errorf("sdk boundary %+v", sdk.Boundary)
	}
	// The boundary's own caveats follow the option's.
	vm := option(t, res, cvm)
	if !slices.ContainsFunc(vm.Caveats, func(c string) bool {
		return strings.HasPrefix(c, "On Azure you neither choose nor rebuild the paravisor")
	}) ||
		!slices.ContainsFunc(vm.Caveats, func(c string) bool { return strings.HasPrefix(c, "Root in the guest and every application") }) {
		t.Errorf("cvm caveats %q", vm.Caveats)
	}
}

func TestAdviseUnknownQuestion(t *testing.T) {
	_, err := Advise(testRules(t), Answers{"legacyy": Yes})
	if err == nil || !strings.Contains(err.Error(), `unknown question "legacyy"`) {
		t.Errorf("err = %v", err)
	}
}

func loadAnswers(t *testing.T, name string) Answers {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseAnswers(testRules(t), b)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestJSONDecodesStrictly(t *testing.T) {
	res := advise(t, loadAnswers(t, "kubernetes.json"))
	var buf bytes.Buffer
	if err := WriteJSON(&buf, res); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(&buf)
	dec.DisallowUnknownFields()
	var got Result
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, res) {
		t.Errorf("round trip differs:\n%+v\n%+v", got, *res)
	}
	var a Answer
	if err := json.Unmarshal([]byte(`"maybe"`), &a); err == nil {
		t.Error(`"maybe" decoded as an answer`)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./advise/ -update rewrites it); got:\n%s", p, got)
	}
}

func TestTextGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteText(&buf, advise(t, loadAnswers(t, "kubernetes.json"))); err != nil {
		t.Fatal(err)
	}
	golden(t, "kubernetes.golden.txt", buf.Bytes())
}

func TestSVGGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteSVG(&buf, advise(t, loadAnswers(t, "kubernetes.json"))); err != nil {
		t.Fatal(err)
	}
	golden(t, "kubernetes.golden.svg", buf.Bytes())
	texts := svgTexts(t, buf.Bytes())
	for _, want := range []string{
		"Trust boundary: confidential container pod (pod TEE)",
		"inside the trust boundary", "outside the trust boundary",
		"the pod (its containers)", "cluster administrator",
	} {
		if !slices.Contains(texts, want) {
			t.Errorf("no text %q in %q", want, texts)
		}
	}
}

// svgTexts parses an SVG as XML and returns its <text> contents.
func svgTexts(t *testing.T, svg []byte) []string {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var texts []string
	var in bool
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
				if tok.Name.Space != "http://www.w3.org/2000/svg" {
					t.Errorf("root namespace %q", tok.Name.Space)
				}
			}
			in = tok.Name.Local == "text"
			if in {
				texts = append(texts, "")
			}
		case xml.CharData:
			if in {
				texts[len(texts)-1] += string(tok)
			}
		case xml.EndElement:
			in = false
		}
	}
	if root != "svg" {
		t.Errorf("root element %q", root)
	}
	return texts
}

func TestSVGEscapes(t *testing.T) {
	res := advise(t, nil)
	res.Ranking[0].Name = `<script>&"x"</script>`
	res.Ranking[0].Boundary.Inside = []string{"a < b & c > d"}
	var buf bytes.Buffer
	if err := WriteSVG(&buf, res); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("<script>")) {
		t.Error("name not escaped")
	}
	texts := svgTexts(t, buf.Bytes())
	if !slices.Contains(texts, `Trust boundary: <script>&"x"</script>`) || !slices.Contains(texts, "a < b & c > d") {
		t.Errorf("texts %q", texts)
	}
}

func TestWrap(t *testing.T) {
	got := wrap("aaa bbb ccc dddddddddd e", 7)
	if want := []string{"aaa bbb", "ccc", "dddddddddd", "e"}; !slices.Equal(got, want) {
		t.Errorf("wrap = %q, want %q", got, want)
	}
	if got := wrap("", 7); !slices.Equal(got, []string{""}) {
		t.Errorf("wrap empty = %q", got)
	}
}
