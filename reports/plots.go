package reports

import (
	"bytes"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Figure is one rendered plot: SVG for inlining, PNG for a file beside the report.
type Figure struct {
	Name  string // file stem: throughput, latency, cdf, shares…
	Title string
	SVG   []byte
	PNG   []byte
}

const (
	figWidth  = 18 * vg.Centimeter
	figHeight = 8 * vg.Centimeter
)

var (
	colorOK     = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colorErr    = color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	colorFault  = color.RGBA{R: 0x99, G: 0x55, B: 0x00, A: 0xff}
	colorWeight = color.RGBA{R: 0xaa, G: 0xaa, B: 0xaa, A: 0xff}
	palette     = []color.Color{
		color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, colorOK,
		color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, colorErr,
	}
)

// Figures renders every plot the report has data for.
func Figures(r *Report) ([]Figure, error) {
	var figs []Figure
	add := func(name, title string, p *plot.Plot, err error) error {
		if err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		if p == nil {
			return nil
		}
		f := Figure{Name: name, Title: title}
		if f.SVG, err = render(p, "svg"); err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		if f.PNG, err = render(p, "png"); err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		figs = append(figs, f)
		return nil
	}
	ts := &r.Timeseries
	if len(ts.RPS) > 0 {
		p, err := throughputPlot(ts, r.Faults)
		if err := add("throughput", "Throughput over time", p, err); err != nil {
			return nil, err
		}
		p, err = latencyPlot(ts, r.Faults)
		if err := add("latency", "Latency percentiles over time", p, err); err != nil {
			return nil, err
		}
	}
	if r.Load != nil && len(r.Load.LatencyCDF) > 1 {
		p, err := cdfPlot(r.Load.LatencyCDF)
		if err := add("cdf", "Latency distribution", p, err); err != nil {
			return nil, err
		}
	}
	if r.Load != nil && len(r.Load.Realservers) > 0 {
		names, share, wshare := []string{}, []float64{}, []float64{}
		for _, s := range r.Load.Realservers {
			names, share, wshare = append(names, serverName(s.ID)), append(share, s.Share), append(wshare, s.WeightShare)
		}
		p, err := sharePlot("Connections per real server (client side)", names, share, wshare)
		if err := add("shares", "Share per real server against weight share (client side)", p, err); err != nil {
			return nil, err
		}
	}
	for i, svc := range r.Services {
		names, share, wshare := []string{}, []float64{}, []float64{}
		for _, rs := range svc.Realservers {
			names, share, wshare = append(names, rs.Node), append(share, rs.Share), append(wshare, rs.WeightShare)
		}
		title := fmt.Sprintf("%s %s (%s): director connections", svc.Protocol, svc.VIP, svc.Scheduler)
		p, err := sharePlot(title, names, share, wshare)
		if err := add(fmt.Sprintf("service%d-shares", i+1), title, p, err); err != nil {
			return nil, err
		}
	}
	return figs, nil
}

func render(p *plot.Plot, format string) ([]byte, error) {
	w, err := p.WriterTo(figWidth, figHeight, format)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func serverName(id string) string {
	if id == "" {
		return "(unnamed)"
	}
	return id
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	return p
}

func timeLine(ts *Timeseries, v []float64, c color.Color, dashed bool) (*plotter.Line, error) {
	xy := make(plotter.XYs, len(v))
	for i, y := range v {
		xy[i].X, xy[i].Y = float64(i)*ts.IntervalS, y
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return nil, err
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	}
	return l, nil
}

func throughputPlot(ts *Timeseries, faults []Fault) (*plot.Plot, error) {
	p := newPlot("Throughput", "time (s)", "per second")
	ok, err := timeLine(ts, ts.RPS, colorOK, false)
	if err != nil {
		return nil, err
	}
	errs := make([]float64, len(ts.Errors))
	for i, e := range ts.Errors {
		errs[i] = float64(e) / ts.IntervalS
	}
	bad, err := timeLine(ts, errs, colorErr, false)
	if err != nil {
		return nil, err
	}
	p.Add(ok, bad)
	p.Legend.Add("responses/s", ok)
	p.Legend.Add("errors/s", bad)
	p.Y.Min, p.Y.Max = 0, headroom(maxOf(ts.RPS, errs))
	return p, faultMarkers(p, faults, maxOf(ts.RPS, errs))
}

func latencyPlot(ts *Timeseries, faults []Fault) (*plot.Plot, error) {
	p := newPlot("Latency from the intended send time", "time (s)", "ms")
	series := []struct {
		name string
		v    []float64
	}{{"p50", ts.P50MS}, {"p90", ts.P90MS}, {"p99", ts.P99MS}, {"max", ts.MaxMS}}
	for i, s := range series {
		l, err := timeLine(ts, s.v, palette[i], s.name == "max")
		if err != nil {
			return nil, err
		}
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	p.Y.Min, p.Y.Max = 0, headroom(maxOf(ts.MaxMS))
	return p, faultMarkers(p, faults, maxOf(ts.MaxMS))
}

// faultMarkers draws a vertical line and a label at each fault's time.
func faultMarkers(p *plot.Plot, faults []Fault, top float64) error {
	if len(faults) == 0 {
		return nil
	}
	top = max(top*1.1, 0.9)
	var lbl plotter.XYLabels
	for _, f := range faults {
		l, err := plotter.NewLine(plotter.XYs{{X: f.AtS, Y: 0}, {X: f.AtS, Y: top}})
		if err != nil {
			return err
		}
		l.Color = colorFault
		l.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(l)
		lbl.XYs = append(lbl.XYs, plotter.XY{X: f.AtS, Y: top})
		lbl.Labels = append(lbl.Labels, " "+f.Action+" "+f.Target)
	}
	labels, err := plotter.NewLabels(lbl)
	if err != nil {
		return err
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].Color = colorFault
	}
	p.Add(labels)
	return nil
}

// headroom leaves the top fifth of a plot to its legend and fault labels.
func headroom(top float64) float64 { return max(top*1.25, 1) }

func maxOf(vs ...[]float64) float64 {
	m := 0.0
	for _, v := range vs {
		for _, x := range v {
			m = max(m, x)
		}
	}
	return m
}

// cdfPlot draws latency against percentile on the usual HdrHistogram axis,
// 1/(1-p) on a log scale, so the tail gets the room it deserves.
func cdfPlot(points []CDFPoint) (*plot.Plot, error) {
	p := newPlot("Latency by percentile", "percentile", "ms")
	var xy plotter.XYs
	maxX := 1.0
	for _, pt := range points {
		if pt.Percentile >= 100 {
			continue
		}
		x := 1 / (1 - pt.Percentile/100)
		maxX = max(maxX, x)
		xy = append(xy, plotter.XY{X: x, Y: pt.MS})
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return nil, err
	}
	l.Color = colorOK
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	for k, label := range []string{"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"} {
		x := math.Pow(10, float64(k))
		if x > maxX*10 {
			break
		}
		ticks = append(ticks, plot.Tick{Value: x, Label: label})
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.X.Min = 1
	p.Y.Min = 0
	return p, nil
}

func sharePlot(title string, names []string, share, wshare []float64) (*plot.Plot, error) {
	p := newPlot(title, "", "share")
	w := vg.Points(14)
	obs, err := plotter.NewBarChart(plotter.Values(share), w)
	if err != nil {
		return nil, err
	}
	obs.Color, obs.LineStyle.Width, obs.Offset = colorOK, 0, -w/2
	exp, err := plotter.NewBarChart(plotter.Values(wshare), w)
	if err != nil {
		return nil, err
	}
	exp.Color, exp.LineStyle.Width, exp.Offset = colorWeight, 0, w/2
	p.Add(obs, exp)
	p.Legend.Add("observed share", obs)
	p.Legend.Add("weight share", exp)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4
	p.Y.Min = 0
	p.Y.Max = max(1.0/float64(max(len(names), 1))*1.5, maxOf(share, wshare)*1.35)
	p.X.Tick.Label.Rotation = 0
	p.X.Tick.Label.XAlign = draw.XCenter
	return p, nil
}
