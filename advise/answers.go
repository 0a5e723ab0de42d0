package advise

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxAnswersSize bounds an answers file.
const MaxAnswersSize = 64 << 10

// ParseAnswers reads an answers file: one JSON object whose keys are the
// rules' question ids and whose values are true (yes), false (no), null
// (unknown) or the strings "yes", "no", "unknown". Unknown questions,
// repeated keys, other values and trailing data are errors naming the key.
func ParseAnswers(rules *Rules, data []byte) (Answers, error) {
	if len(data) > MaxAnswersSize {
		return nil, fmt.Errorf("answers: larger than %d bytes", MaxAnswersSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("answers: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("answers: not a JSON object")
	}
	out := Answers{}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("answers: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("answers: key %v is not a string", tok)
		}
		path := "answers." + key
		if rules.question(key) == nil {
			return nil, fmt.Errorf("%s: unknown question (known: %s)", path, strings.Join(rules.QuestionIDs(), ", "))
		}
		if seen[key] {
			return nil, fmt.Errorf("%s: given twice", path)
		}
		seen[key] = true
		tok, err = dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		var a Answer
		switch v := tok.(type) {
		case bool:
			a = No
			if v {
				a = Yes
			}
		case nil:
			a = Unknown
		case string:
			switch v {
			case "yes":
				a = Yes
			case "no":
				a = No
			case "unknown":
				a = Unknown
			default:
				return nil, fmt.Errorf("%s: %q is not \"yes\", \"no\" or \"unknown\"", path, v)
			}
		default:
			return nil, fmt.Errorf("%s: want true, false, null, \"yes\", \"no\" or \"unknown\"", path)
		}
		if a != Unknown {
			out[key] = a
		}
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("answers: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("answers: data after the JSON object")
	}
	return out, nil
}

// maxPromptLine bounds one typed answer.
const maxPromptLine = 256

// maxTries is how often a question is asked again after an answer that
// is not yes, no or unknown.
const maxTries = 3

// Ask asks every question on w and reads the answers from in, one line
// each: y/yes, n/no, or u/unknown/?/empty line. A line that is none of
// these asks again (at most three times, then it is an error). When in
// ends, the questions not yet answered stay unknown.
func Ask(rules *Rules, in io.Reader, w io.Writer) (Answers, error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, maxPromptLine), maxPromptLine)
	out := Answers{}
	fmt.Fprintln(w, "Answer y (yes), n (no) or u (unknown, also an empty line); unknown answers count neither way.")
	for i, q := range rules.Questions {
		for try := 1; ; try++ {
			fmt.Fprintf(w, "[%d/%d] %s [y/n/u] ", i+1, len(rules.Questions), q.Ask)
			if !sc.Scan() {
				if err := sc.Err(); err != nil {
					return nil, fmt.Errorf("reading the answer to %s: %w", q.ID, err)
				}
				fmt.Fprintln(w, "\n(input ended: the remaining answers are unknown)")
				return out, nil
			}
			a, err := ParseAnswer(sc.Text())
			if err == nil {
				if a != Unknown {
					out[q.ID] = a
				}
				break
			}
			if try == maxTries {
				return nil, fmt.Errorf("question %s: %w (asked %d times)", q.ID, err, maxTries)
			}
			fmt.Fprintf(w, "%v; please answer y, n or u.\n", err)
		}
	}
	return out, nil
}
