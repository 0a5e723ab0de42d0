package advise

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/deploy"
	"github.com/trustbound/trustbound/manifest"
)

//go:embed rules.yaml
var defaultRules []byte

// MaxRulesSize bounds a rules file.
const MaxRulesSize = 1 << 20

// Rules are the advisor's data: the questions, the options, the weighted
// rules and the hard exclusions (see rules.yaml for the commented shape).
type Rules struct {
	Version    int         `yaml:"version"`
	Questions  []Question  `yaml:"questions"`
	Options    []Option    `yaml:"options"`
	Rules      []Rule      `yaml:"rules"`
	Exclusions []Exclusion `yaml:"exclusions"`
}

// Question is one yes/no/unknown question. Its id is also the command's
// flag and the answers file's key.
type Question struct {
	ID  string `yaml:"id"`
	Ask string `yaml:"ask"`
}

// Option is one way to deploy the workload.
type Option struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
	// Boundary names the deploy.BoundaryOf row that is the option's trust
	// boundary, on the TEE it is shown for.
	Boundary struct {
		Model manifest.Model `yaml:"model"`
		TEE   attest.TEE     `yaml:"tee"`
	} `yaml:"boundary"`
	// TEEs are every TEE the option runs on.
	TEEs []attest.TEE `yaml:"tees"`
	// AlsoInside adds what the option puts inside the boundary besides the
	// row's list.
	AlsoInside []string `yaml:"alsoInside"`
	Caveats    []string `yaml:"caveats"`
	Pin        []Pin    `yaml:"pin"`
}

// Rule changes option scores when its question has the answer When.
type Rule struct {
	ID       string         `yaml:"id"`
	Question string         `yaml:"question"`
	When     string         `yaml:"when"`
	Weights  map[string]int `yaml:"weights"`
	Because  string         `yaml:"because"`
}

// Exclusion rules options out when its question has the answer When.
type Exclusion struct {
	ID       string   `yaml:"id"`
	Question string   `yaml:"question"`
	When     string   `yaml:"when"`
	Exclude  []string `yaml:"exclude"`
	Because  string   `yaml:"because"`
}

func (r *Rule) fires(a Answers) bool      { return fires(a, r.Question, r.When) }
func (e *Exclusion) fires(a Answers) bool { return fires(a, e.Question, e.When) }

func fires(a Answers, question, when string) bool {
	got := a[question]
	return got != Unknown && got.String() == when
}

// Default returns the embedded rules.
func Default() (*Rules, error) {
	r, err := ParseRules(defaultRules)
	if err != nil {
		return nil, fmt.Errorf("embedded rules.yaml: %w", err)
	}
	return r, nil
}

// ParseRules reads and validates a rules document (YAML or JSON, one
// document): unknown fields are errors, and so is every inconsistency
// validate finds.
func ParseRules(data []byte) (*Rules, error) {
	if len(data) > MaxRulesSize {
		return nil, fmt.Errorf("advise rules: larger than %d bytes", MaxRulesSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var r Rules
	if err := dec.Decode(&r); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("advise rules: empty document")
		}
		return nil, fmt.Errorf("advise rules: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("advise rules: more than one YAML document (line %d)", extra.Line)
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// validate collects every inconsistency, each named by its path.
func (r *Rules) validate() error {
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, fmt.Errorf("advise rules: %s: %s", path, fmt.Sprintf(format, args...)))
	}
	if r.Version != 1 {
		bad("version", "is %d; want 1", r.Version)
	}
	if len(r.Questions) == 0 {
		bad("questions", "none")
	}
	if len(r.Options) == 0 {
		bad("options", "none")
	}
	ids := map[string]string{}
	unique := func(path, kind, id string) {
		switch {
		case !validID(id):
			bad(path+".id", "%q is not lower-case letters, digits and dashes", id)
		case ids[kind+"/"+id] != "":
			bad(path+".id", "%q repeats %s", id, ids[kind+"/"+id])
		default:
			ids[kind+"/"+id] = path
		}
	}
	for i, q := range r.Questions {
		p := fmt.Sprintf("questions[%d]", i)
		unique(p, "question", q.ID)
		if strings.TrimSpace(q.Ask) == "" {
			bad(p+".ask", "empty")
		}
	}
	for i, o := range r.Options {
		p := fmt.Sprintf("options[%d]", i)
		unique(p, "option", o.ID)
		if strings.TrimSpace(o.Name) == "" {
			bad(p+".name", "empty")
		}
		if _, err := deploy.BoundaryOf(o.Boundary.Model, o.Boundary.TEE); err != nil {
			bad(p+".boundary", "%v", err)
		}
		if !slices.Contains(o.TEEs, o.Boundary.TEE) {
			bad(p+".tees", "does not hold the boundary's TEE %q", o.Boundary.TEE)
		}
		for j, t := range o.TEEs {
			if _, err := deploy.BoundaryOf(o.Boundary.Model, t); err != nil {
				bad(fmt.Sprintf("%s.tees[%d]", p, j), "%v", err)
			}
		}
		for j, c := range o.Caveats {
			if strings.TrimSpace(c) == "" {
				bad(fmt.Sprintf("%s.caveats[%d]", p, j), "empty")
			}
		}
		if len(o.Pin) == 0 {
			bad(p+".pin", "none: every option pins some claims")
		}
		for j, pin := range o.Pin {
			if strings.TrimSpace(pin.Claim) == "" || strings.TrimSpace(pin.Why) == "" {
				bad(fmt.Sprintf("%s.pin[%d]", p, j), "claim and why are both required")
			}
		}
	}
	condition := func(p, question, when, because string) {
		if r.question(question) == nil {
			bad(p+".question", "unknown question %q", question)
		}
		if when != "yes" && when != "no" {
			bad(p+".when", "%q is not \"yes\" or \"no\"", when)
		}
		if strings.TrimSpace(because) == "" {
			bad(p+".because", "empty: every rule explains itself")
		}
	}
	for i, rule := range r.Rules {
		p := fmt.Sprintf("rules[%d]", i)
		unique(p, "rule", rule.ID)
		condition(p, rule.Question, rule.When, rule.Because)
		if len(rule.Weights) == 0 {
			bad(p+".weights", "none")
		}
		for _, o := range sortedKeys(rule.Weights) {
			switch {
			case r.option(o) == nil:
				bad(p+".weights."+o, "unknown option")
			case rule.Weights[o] == 0:
				bad(p+".weights."+o, "zero: leave it out")
			}
		}
	}
	for i, ex := range r.Exclusions {
		p := fmt.Sprintf("exclusions[%d]", i)
		unique(p, "exclusion", ex.ID)
		condition(p, ex.Question, ex.When, ex.Because)
		if len(ex.Exclude) == 0 {
			bad(p+".exclude", "none")
		}
		for j, o := range ex.Exclude {
			if r.option(o) == nil {
				bad(fmt.Sprintf("%s.exclude[%d]", p, j), "unknown option %q", o)
			}
		}
	}
	return errors.Join(errs...)
}

func validID(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '-' {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (r *Rules) question(id string) *Question {
	for i := range r.Questions {
		if r.Questions[i].ID == id {
			return &r.Questions[i]
		}
	}
	return nil
}

func (r *Rules) option(id string) *Option {
	for i := range r.Options {
		if r.Options[i].ID == id {
			return &r.Options[i]
		}
	}
	return nil
}

// QuestionIDs lists the questions' ids in order.
func (r *Rules) QuestionIDs() []string {
	out := make([]string, len(r.Questions))
	for i, q := range r.Questions {
		out[i] = q.ID
	}
	return out
}
