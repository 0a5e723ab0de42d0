package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/trustbound/trustbound/advise"
)

const adviseUsage = `advise [--format text|json|svg] [--answers FILE] [--QUESTION[=yes|no|unknown]]... [--answer ID=VALUE]... [--rules FILE]

Ranks the deployment models (confidential VM, CVM node pool, confidential
container pod, enclave-aware container, enclave with a library OS, enclave
with an SDK) for a workload and shows each one's trust boundary, caveats
and the manifest claims to pin. With no answers given and a terminal on
stdin, it asks each question (y/n/u) on stderr. Unknown answers count
neither way; hard exclusions are listed with their reason.`

func cmdAdvise(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runAdvise(args, os.Stdin, stdinIsTerminal(), stdout, stderr)
}

// stdinIsTerminal reports whether stdin is a character device (a terminal).
func stdinIsTerminal() bool {
	fi, err := os.Stdin.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// answerFlag is one question's --QUESTION flag: bare means yes, or
// =yes|no|unknown (also y, n, u, true, false).
type answerFlag struct {
	id   string
	into map[string]advise.Answer
}

func (f *answerFlag) String() string   { return "" }
func (f *answerFlag) IsBoolFlag() bool { return true }
func (f *answerFlag) Set(s string) error {
	a, err := advise.ParseAnswer(s)
	if err != nil {
		return err
	}
	f.into[f.id] = a
	return nil
}

// answerList is the repeatable --answer ID=VALUE flag: it answers any
// question, including those of a --rules file.
type answerList struct{ into map[string]advise.Answer }

func (l *answerList) String() string { return "" }
func (l *answerList) Set(s string) error {
	id, v, ok := strings.Cut(s, "=")
	if !ok || id == "" {
		return fmt.Errorf("%q is not ID=yes|no|unknown", s)
	}
	a, err := advise.ParseAnswer(v)
	if err != nil {
		return err
	}
	l.into[id] = a
	return nil
}

// runAdvise is the command with its input injected: answers come from
// --answers, then the flags (which override the file); with neither and a
// terminal, from questions asked on stderr and read from stdin.
func runAdvise(args []string, stdin io.Reader, terminal bool, stdout, stderr io.Writer) error {
	builtin, err := advise.Default()
	if err != nil {
		return err
	}
	fs := newFlags("advise", stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: trustbound %s\n\nflags:\n", adviseUsage)
		fs.PrintDefaults()
	}
	format := fs.String("format", "text", "output: text, json, or svg (the top option's trust boundary)")
	answersFile := fs.String("answers", "", "a JSON answers file: {\"QUESTION\": true|false|null|\"yes\"|\"no\"|\"unknown\", ...}")
	rulesFile := fs.String("rules", "", "rules file to use instead of the built-in rules (same shape as advise/rules.yaml)")
	flagged := map[string]advise.Answer{}
	fs.Var(&answerList{flagged}, "answer", "answer a question by id, `ID=yes|no|unknown`; repeatable")
	for _, q := range builtin.Questions {
		fs.Var(&answerFlag{id: q.ID, into: flagged}, q.ID, q.Ask+" (bare: yes; or =no, =unknown)")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageErr("advise takes no arguments, got %q (answers are flags: --gpu, --gpu=no)", fs.Args())
	}
	switch *format {
	case "text", "json", "svg":
	default:
		return usageErr("--format %q: want text, json or svg", *format)
	}
	rules := builtin
	if *rulesFile != "" {
		b, err := readBounded(*rulesFile, advise.MaxRulesSize)
		if err != nil {
			return err
		}
		if rules, err = advise.ParseRules(b); err != nil {
			return fmt.Errorf("%s: %w", *rulesFile, err)
		}
	}
	answers := advise.Answers{}
	if *answersFile != "" {
		b, err := readBounded(*answersFile, advise.MaxAnswersSize)
		if err != nil {
			return err
		}
		if answers, err = advise.ParseAnswers(rules, b); err != nil {
			return fmt.Errorf("%s: %w", *answersFile, err)
		}
	}
	for id, a := range flagged {
		if a == advise.Unknown {
			delete(answers, id)
		} else {
			answers[id] = a
		}
	}
	if *answersFile == "" && len(flagged) == 0 {
		if terminal {
			if answers, err = advise.Ask(rules, stdin, stderr); err != nil {
				return err
			}
		} else {
			fmt.Fprintln(stderr, "trustbound advise: no answers given (flags, --answers, or a terminal to ask on): every answer is unknown")
		}
	}
	res, err := advise.Advise(rules, answers)
	if err != nil {
		return usageErr("%v", err)
	}
	switch *format {
	case "json":
		return advise.WriteJSON(stdout, res)
	case "svg":
		return advise.WriteSVG(stdout, res)
	}
	return advise.WriteText(stdout, res)
}
