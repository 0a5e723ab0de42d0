// Package advise ranks the deployment models for a workload from yes/no/
// unknown answers, by rules held as data (rules.yaml), and shows each
// option's trust boundary (from package deploy), caveats and the manifest
// claims to pin; it never talks to a TEE.
package advise

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/trustbound/trustbound/attest"
	"github.com/trustbound/trustbound/deploy"
	"github.com/trustbound/trustbound/manifest"
)

// Answer is the answer to one question: yes, no or unknown. Unknown
// answers count neither way.
type Answer int8

// The answers. The zero value is Unknown.
const (
	Unknown Answer = iota
	Yes
	No
)

// String returns "yes", "no" or "unknown".
func (a Answer) String() string {
	switch a {
	case Yes:
		return "yes"
	case No:
		return "no"
	}
	return "unknown"
}

// ParseAnswer reads "yes"/"y"/"true", "no"/"n"/"false" or
// "unknown"/"u"/"?"/"" (case-insensitive, surrounding blanks ignored).
func ParseAnswer(s string) (Answer, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "y", "true":
		return Yes, nil
	case "no", "n", "false":
		return No, nil
	case "unknown", "u", "?", "":
		return Unknown, nil
	}
	return Unknown, fmt.Errorf("answer %q is not yes, no or unknown", s)
}

// MarshalJSON encodes the answer as "yes", "no" or "unknown".
func (a Answer) MarshalJSON() ([]byte, error) { return json.Marshal(a.String()) }

// UnmarshalJSON accepts exactly "yes", "no" or "unknown".
func (a *Answer) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("an answer is a string: %w", err)
	}
	switch s {
	case "yes":
		*a = Yes
	case "no":
		*a = No
	case "unknown":
		*a = Unknown
	default:
		return fmt.Errorf("answer %q is not yes, no or unknown", s)
	}
	return nil
}

// Answers maps question ids to answers; a question not in the map is
// unknown.
type Answers map[string]Answer

// Result is the advice: the answers it was given and every option, ranked.
type Result struct {
	// Answers lists every question with its answer, in the rules' order.
	Answers []QuestionAnswer `json:"answers"`
	// Ranking holds every option: first those not excluded, by score
	// (highest first, ties in the rules' order), then the excluded ones in
	// the rules' order.
	Ranking []Ranked `json:"ranking"`
}

// QuestionAnswer is one question with its answer.
type QuestionAnswer struct {
	ID     string `json:"id"`
	Ask    string `json:"ask"`
	Answer Answer `json:"answer"`
}

// Ranked is one option with its score, the reasons for it, and what
// deploying it means.
type Ranked struct {
	// Rank is 1 for the best option; 0 for an excluded one.
	Rank  int    `json:"rank"`
	ID    string `json:"id"`
	Name  string `json:"name"`
	Score int    `json:"score"`
	// Excluded holds why the option cannot serve, each "excluded: <why>";
	// empty when it can.
	Excluded []string `json:"excluded,omitempty"`
	// Reasons are the rules that changed the score, in the rules' order.
	Reasons  []Reason       `json:"reasons,omitempty"`
	Model    manifest.Model `json:"model"`
	TEEs     []attest.TEE   `json:"tees"`
	Boundary Boundary       `json:"boundary"`
	// Caveats are the option's own, then its boundary's.
	Caveats []string `json:"caveats"`
	// Pin lists the manifest reference fields to pin.
	Pin []Pin `json:"pin"`
}

// Reason is one rule's effect on an option's score.
type Reason struct {
	Rule     string `json:"rule"`
	Question string `json:"question"`
	Answer   Answer `json:"answer"`
	Delta    int    `json:"delta"`
	Because  string `json:"because"`
}

// Boundary is the trust boundary of an option on the TEE it is shown for.
type Boundary struct {
	TEE     attest.TEE `json:"tee"`
	Inside  []string   `json:"inside"`
	Outside []string   `json:"outside"`
	// TCB is the CPU vendor's trusted computing base on that TEE, inside
	// every boundary there.
	TCB []string `json:"tcb"`
}

// Pin is one manifest reference field to pin, and why.
type Pin struct {
	Claim string `json:"claim" yaml:"claim"`
	Why   string `json:"why" yaml:"why"`
}

// Top returns the best option that is not excluded, and false when every
// option is excluded.
func (r *Result) Top() (Ranked, bool) {
	if len(r.Ranking) == 0 || r.Ranking[0].Rank != 1 {
		return Ranked{}, false
	}
	return r.Ranking[0], true
}

// Advise ranks the rules' options for the answers. An answer to a
// question the rules do not ask is an error.
func Advise(rules *Rules, answers Answers) (*Result, error) {
	for id := range answers {
		if rules.question(id) == nil {
			return nil, fmt.Errorf("advise: answer to unknown question %q (known: %s)", id, strings.Join(rules.QuestionIDs(), ", "))
		}
	}
	res := &Result{}
	for _, q := range rules.Questions {
		res.Answers = append(res.Answers, QuestionAnswer{ID: q.ID, Ask: q.Ask, Answer: answers[q.ID]})
	}
	order := make(map[string]int, len(rules.Options))
	for i, o := range rules.Options {
		r, err := o.ranked()
		if err != nil {
			return nil, err
		}
		for _, rule := range rules.Rules {
			w := rule.Weights[o.ID]
			if w == 0 || !rule.fires(answers) {
				continue
			}
			r.Score += w
			r.Reasons = append(r.Reasons, Reason{Rule: rule.ID, Question: rule.Question, Answer: answers[rule.Question], Delta: w, Because: rule.Because})
		}
		for _, ex := range rules.Exclusions {
			if ex.fires(answers) && slices.Contains(ex.Exclude, o.ID) {
				r.Excluded = append(r.Excluded, "excluded: "+ex.Because)
			}
		}
		order[o.ID] = i
		res.Ranking = append(res.Ranking, r)
	}
	slices.SortStableFunc(res.Ranking, func(a, b Ranked) int {
		ae, be := len(a.Excluded) > 0, len(b.Excluded) > 0
		switch {
		case ae != be:
			if ae {
				return 1
			}
			return -1
		case !ae && a.Score != b.Score:
			return cmp.Compare(b.Score, a.Score)
		}
		return cmp.Compare(order[a.ID], order[b.ID])
	})
	for i := range res.Ranking {
		if len(res.Ranking[i].Excluded) == 0 {
			res.Ranking[i].Rank = i + 1
		}
	}
	return res, nil
}

// ranked builds the option's entry with a zero score: its boundary from
// deploy.BoundaryOf plus what the option adds inside it.
func (o *Option) ranked() (Ranked, error) {
	b, err := deploy.BoundaryOf(o.Boundary.Model, o.Boundary.TEE)
	if err != nil {
		return Ranked{}, fmt.Errorf("advise: option %s: %w", o.ID, err)
	}
	return Ranked{
		ID:    o.ID,
		Name:  o.Name,
		Model: o.Boundary.Model,
		TEEs:  slices.Clone(o.TEEs),
		Boundary: Boundary{
			TEE:     o.Boundary.TEE,
			Inside:  append(b.Inside, o.AlsoInside...),
			Outside: b.Outside,
			TCB:     b.TCB,
		},
		Caveats: append(slices.Clone(o.Caveats), b.Caveats...),
		Pin:     slices.Clone(o.Pin),
	}, nil
}
