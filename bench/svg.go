package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// Series is one line of a chart: y against x, drawn in Color.
type Series struct {
	Name  string
	Color string
	X, Y  []float64
}

// Chart is a line chart with a logarithmic (base 2) or linear x axis and a
// linear y axis from zero.
type Chart struct {
	Title, XLabel, YLabel string
	LogX                  bool
	Series                []Series
}

const (
	svgW, svgH                   = 640, 400
	padL, padR, padTop, padBelow = 70, 20, 40, 60
)

// niceMax rounds v up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// WriteSVG draws c as a standalone SVG document.
func (c *Chart) WriteSVG(w io.Writer) error {
	var xs []float64
	ymax := 0.0
	for _, s := range c.Series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("bench: chart %q: series %q has %d x and %d y values", c.Title, s.Name, len(s.X), len(s.Y))
		}
		xs = append(xs, s.X...)
		for _, y := range s.Y {
			ymax = max(ymax, y)
		}
	}
	if len(xs) == 0 {
		return fmt.Errorf("bench: chart %q has no points", c.Title)
	}
	fx := func(x float64) float64 { return x }
	if c.LogX {
		for _, x := range xs {
			if x <= 0 {
				return fmt.Errorf("bench: chart %q: x value %v on a log axis", c.Title, x)
			}
		}
		fx = math.Log2
	}
	xmin, xmax := fx(xs[0]), fx(xs[0])
	for _, x := range xs {
		xmin, xmax = min(xmin, fx(x)), max(xmax, fx(x))
	}
	if xmax == xmin {
		xmin, xmax = xmin-1, xmax+1
	}
	ytop := niceMax(ymax)
	plotW, plotH := float64(svgW-padL-padR), float64(svgH-padTop-padBelow)
	px := func(x float64) float64 { return padL + (fx(x)-xmin)/(xmax-xmin)*plotW }
	py := func(y float64) float64 { return padTop + plotH - y/ytop*plotH }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" text-anchor="middle">%s</text>`+"\n", svgW/2, html.EscapeString(c.Title))
	// Axes, y grid and ticks.
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", padL, padTop, padL, svgH-padBelow)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", padL, svgH-padBelow, svgW-padR, svgH-padBelow)
	for i := 0; i <= 5; i++ {
		y := ytop * float64(i) / 5
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", padL, py(y), svgW-padR, py(y))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, py(y)+4, tick(y))
	}
	seen := map[float64]bool{}
	for _, x := range xs {
		if seen[x] {
			continue
		}
		seen[x] = true
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black"/>`+"\n", px(x), svgH-padBelow, px(x), svgH-padBelow+5)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px(x), svgH-padBelow+18, tick(x))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", padL+int(plotW)/2, svgH-padBelow+38, html.EscapeString(c.XLabel))
	fmt.Fprintf(&b, `<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">%s</text>`+"\n", padTop+int(plotH)/2, padTop+int(plotH)/2, html.EscapeString(c.YLabel))
	// Lines, points and legend.
	for i, s := range c.Series {
		pts := make([]string, len(s.X))
		for j := range s.X {
			pts[j] = fmt.Sprintf("%.1f,%.1f", px(s.X[j]), py(s.Y[j]))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", html.EscapeString(s.Color), strings.Join(pts, " "))
		for j := range s.X {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"><title>%s: %s</title></circle>`+"\n", px(s.X[j]), py(s.Y[j]), html.EscapeString(s.Color), html.EscapeString(s.Name), tick(s.Y[j]))
		}
		ly := padTop + 8 + 18*i
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="14" height="4" fill="%s"/>`+"\n", padL+12, ly, html.EscapeString(s.Color))
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", padL+32, ly+6, html.EscapeString(s.Name))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// tick formats an axis value compactly.
func tick(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e7:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
