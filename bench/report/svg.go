package report

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
)

// Series is one line of the CDF: a label and its RTT samples in ns.
type Series struct {
	Label   string
	Samples []int64
}

var palette = []string{"#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"}

// WriteCDF draws the latency CDFs of series on a logarithmic time axis
// (1 us .. the largest p99.9) as a standalone SVG.
func WriteCDF(w io.Writer, title string, series []Series) error {
	const (
		W, H           = 820, 480
		left, right    = 70, 190
		top, bottom    = 40, 50
		plotW, plotH   = W - left - right, H - top - bottom
		lo             = 1.0 // us
		maxPoints      = 400
		fracShownLimit = 0.999
	)
	hi := 10.0
	sorted := make([][]int64, len(series))
	for i, s := range series {
		v := slices.Clone(s.Samples)
		slices.Sort(v)
		sorted[i] = v
		if p := float64(Percentile(v, fracShownLimit)) / 1e3; p > hi {
			hi = p
		}
	}
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	x := func(us float64) float64 {
		us = math.Max(us, lo)
		return left + plotW*math.Log10(us/lo)/math.Log10(hi/lo)
	}
	y := func(f float64) float64 { return top + plotH*(1-f) }
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", W, H)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p(`<text x="%d" y="22" font-size="15">%s</text>`+"\n", left, escape(title))
	for d := lo; d <= hi; d *= 10 {
		p(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", x(d), top, x(d), top+plotH)
		p(`<text x="%.1f" y="%d" text-anchor="middle">%g</text>`+"\n", x(d), top+plotH+16, d)
	}
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 0.9, 0.99, 1} {
		p(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`+"\n", left, y(f), left+plotW, y(f))
		p(`<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", left-6, y(f)+4, f)
	}
	p(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="black"/>`+"\n", left, top, plotW, plotH)
	p(`<text x="%d" y="%d" text-anchor="middle">round-trip time (us, log scale)</text>`+"\n", left+plotW/2, H-12)
	p(`<text x="16" y="%d" transform="rotate(-90 16 %d)" text-anchor="middle">fraction of round trips</text>`+"\n", top+plotH/2, top+plotH/2)
	order := make([]int, len(series))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return Percentile(sorted[order[a]], 0.5) < Percentile(sorted[order[b]], 0.5)
	})
	for li, i := range order {
		v := sorted[i]
		if len(v) == 0 {
			continue
		}
		col := palette[li%len(palette)]
		p(`<polyline fill="none" stroke="%s" stroke-width="1.8" points="`, col)
		step := max(1, len(v)/maxPoints)
		for k := 0; k < len(v); k += step {
			f := float64(k+1) / float64(len(v))
			if f > fracShownLimit {
				break
			}
			p("%.1f,%.1f ", x(float64(v[k])/1e3), y(f))
		}
		p("\"/>\n")
		ly := top + 14 + 18*li
		p(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", left+plotW+10, ly-4, left+plotW+30, ly-4, col)
		p(`<text x="%d" y="%d">%s (p50 %.1f)</text>`+"\n", left+plotW+35, ly, escape(series[i].Label), float64(Percentile(v, 0.5))/1e3)
	}
	_, err := io.WriteString(w, "</svg>\n")
	return err
}

func escape(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '<':
			out = append(out, "&lt;"...)
		case '>':
			out = append(out, "&gt;"...)
		case '&':
			out = append(out, "&amp;"...)
		default:
			out = append(out, s[i])
		}
	}
	return string(out)
}
