package advise

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes the result as indented JSON.
func WriteJSON(w io.Writer, res *Result) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes the result for people: the answers, then each option
// in rank order with its reasons; options that can serve also with their
// boundary, caveats and the claims to pin, excluded ones with why.
func WriteText(w io.Writer, res *Result) error {
	var b bytes.Buffer
	var unknown []string
	answered := 0
	for _, qa := range res.Answers {
		if qa.Answer == Unknown {
			unknown = append(unknown, qa.ID)
			continue
		}
		answered++
	}
	fmt.Fprintf(&b, "Answers (%d of %d given):\n", answered, len(res.Answers))
	for _, qa := range res.Answers {
		if qa.Answer != Unknown {
			fmt.Fprintf(&b, "  %-22s %-3s  %s\n", qa.ID, qa.Answer, qa.Ask)
		}
	}
	if len(unknown) > 0 {
		fmt.Fprintf(&b, "  unknown (not counted): %s\n", strings.Join(unknown, ", "))
	}
	if _, ok := res.Top(); !ok {
		fmt.Fprintln(&b, "\nNo option fits: every one is excluded.")
	}
	for _, r := range res.Ranking {
		rank := "-"
		if r.Rank > 0 {
			rank = fmt.Sprint(r.Rank)
		}
		tees := make([]string, len(r.TEEs))
		for i, t := range r.TEEs {
			tees[i] = string(t)
		}
		fmt.Fprintf(&b, "\n%s. %s [%s]  score %d\n", rank, r.Name, r.ID, r.Score)
		fmt.Fprintf(&b, "   model %s on %s\n", r.Model, strings.Join(tees, ", "))
		for _, ex := range r.Excluded {
			fmt.Fprintf(&b, "   %s\n", ex)
		}
		if len(r.Reasons) > 0 {
			fmt.Fprintln(&b, "   why:")
			for _, why := range r.Reasons {
				fmt.Fprintf(&b, "     %+d  %s = %s (rule %s): %s\n", why.Delta, why.Question, why.Answer, why.Rule, why.Because)
			}
		}
		if len(r.Excluded) > 0 {
			continue
		}
		list := func(title string, items []string) {
			fmt.Fprintf(&b, "   %s:\n", title)
			for _, it := range items {
				fmt.Fprintf(&b, "     - %s\n", it)
			}
		}
		list(fmt.Sprintf("inside the trust boundary (%s)", r.Boundary.TEE), r.Boundary.Inside)
		list("outside the trust boundary", r.Boundary.Outside)
		list(fmt.Sprintf("vendor TCB on %s (inside every boundary there)", r.Boundary.TEE), r.Boundary.TCB)
		list("caveats", r.Caveats)
		fmt.Fprintln(&b, "   pin in the manifest (reference):")
		for _, p := range r.Pin {
			fmt.Fprintf(&b, "     - %s: %s\n", p.Claim, p.Why)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// SVG layout, in pixels.
const (
	svgWidth    = 960
	svgMargin   = 20
	svgLine     = 15 // text line height
	svgPad      = 8  // padding inside a box
	svgGap      = 8  // between boxes
	svgLeftX    = 20
	svgLeftW    = 460
	svgRightX   = 520
	svgRightW   = 420
	svgBoxChars = 54 // characters per line inside a box
)

// WriteSVG draws the trust boundary of the top-ranked option: a dashed
// boundary holding a box for each party inside and for the vendor's TCB,
// and a box for each party outside. It is an error when every option is
// excluded.
func WriteSVG(w io.Writer, res *Result) error {
	top, ok := res.Top()
	if !ok {
		return errors.New("advise: no option to draw: every option is excluded")
	}
	var body bytes.Buffer
	y := 78
	// Inside: the boundary's parties, then the vendor TCB.
	ly := y + 30
	text(&body, svgLeftX+16, ly-8, 13, "bold", "#1e7b34", "inside the trust boundary")
	for _, it := range top.Boundary.Inside {
		ly += box(&body, svgLeftX+16, ly, svgLeftW-32, it, "#e6f4ea", "#1e7b34") + svgGap
	}
	ly += 18
	text(&body, svgLeftX+16, ly-8, 13, "bold", "#8a5300", fmt.Sprintf("vendor TCB on %s (inside every boundary there)", top.Boundary.TEE))
	for _, it := range top.Boundary.TCB {
		ly += box(&body, svgLeftX+16, ly, svgLeftW-32, it, "#fff4e0", "#b26a00") + svgGap
	}
	// Outside.
	ry := y + 30
	text(&body, svgRightX, ry-8, 13, "bold", "#b3261e", "outside the trust boundary")
	for _, it := range top.Boundary.Outside {
		ry += box(&body, svgRightX, ry, svgRightW, it, "#fdeaea", "#b3261e") + svgGap
	}
	boundaryH := ly - y + 8
	height := max(y+boundaryH, ry) + svgMargin

	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif">`+"\n", svgWidth, height, svgWidth, height)
	b.WriteString("<title>")
	escape(&b, fmt.Sprintf("Trust boundary of %s (%s on %s)", top.Name, top.Model, top.Boundary.TEE))
	b.WriteString("</title>\n")
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", svgWidth, height)
	text(&b, svgMargin, 32, 18, "bold", "#000000", fmt.Sprintf("Trust boundary: %s", top.Name))
	text(&b, svgMargin, 54, 13, "normal", "#333333", fmt.Sprintf("rank 1 of %d, score %d; model %s, shown on %s", len(res.Ranking), top.Score, top.Model, top.Boundary.TEE))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" rx="10" fill="none" stroke="#1e7b34" stroke-width="3" stroke-dasharray="10 6"/>`+"\n", svgLeftX, y, svgLeftW, boundaryH)
	b.Write(body.Bytes())
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// box draws a labelled box at (x, y) and returns its height.
func box(b *bytes.Buffer, x, y, width int, label, fill, stroke string) int {
	lines := wrap(label, svgBoxChars*width/svgLeftW)
	h := len(lines)*svgLine + 2*svgPad
	fmt.Fprintf(b, `<rect x="%d" y="%d" width="%d" height="%d" rx="4" fill="%s" stroke="%s"/>`+"\n", x, y, width, h, fill, stroke)
	for i, l := range lines {
		text(b, x+svgPad, y+svgPad+svgLine*(i+1)-3, 12, "normal", "#000000", l)
	}
	return h
}

func text(b *bytes.Buffer, x, y, size int, weight, fill, s string) {
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="%d" font-weight="%s" fill="%s">`, x, y, size, weight, fill)
	escape(b, s)
	b.WriteString("</text>\n")
}

func escape(b *bytes.Buffer, s string) {
	xml.EscapeText(b, []byte(s)) // a bytes.Buffer does not fail
}

// wrap breaks s into lines of at most n characters at spaces (a longer
// word gets a line of its own).
func wrap(s string, n int) []string {
	var lines []string
	var cur string
	for _, word := range strings.Fields(s) {
		switch {
		case cur == "":
			cur = word
		case len([]rune(cur))+1+len([]rune(word)) <= n:
			cur += " " + word
		default:
			lines = append(lines, cur)
			cur = word
		}
	}
	if cur != "" || len(lines) == 0 {
		lines = append(lines, cur)
	}
	return lines
}
