package reports

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// WriteJSON writes report.json's content.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteAll writes report.json, report.md, report.html and one PNG per plot
// into dir (created if missing) and returns the files it wrote.
func WriteAll(dir string, r *Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	figs, err := Figures(r)
	if err != nil {
		return nil, err
	}
	var files []string
	write := func(name string, fill func(io.Writer) error) error {
		var b bytes.Buffer
		if err := fill(&b); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			return err
		}
		files = append(files, path)
		return nil
	}
	if err := write("report.json", func(w io.Writer) error { return WriteJSON(w, r) }); err != nil {
		return files, err
	}
	if err := write("report.md", func(w io.Writer) error { return WriteMarkdown(w, r) }); err != nil {
		return files, err
	}
	if err := write("report.html", func(w io.Writer) error { return WriteHTML(w, r, figs) }); err != nil {
		return files, err
	}
	for _, f := range figs {
		if err := write(f.Name+".png", func(w io.Writer) error { _, err := w.Write(f.PNG); return err }); err != nil {
			return files, err
		}
	}
	return files, nil
}

// WriteMarkdown writes report.md: the verdict, the load summary, per-server
// shares and fairness, services, faults and expectations, as GitHub tables.
func WriteMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(&b, "# %s — %s\n\n", orDash(r.Scenario), verdict)
	if r.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", r.Description)
	}
	fmt.Fprintf(&b, "Duration: %s s\n\n", num(r.DurationS))
	if len(r.Expectations) > 0 {
		b.WriteString("## Expectations\n\n| | expectation | value | detail |\n|---|---|---:|---|\n")
		for _, e := range r.Expectations {
			mark := "✅"
			if !e.Passed {
				mark = "❌"
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", mark, e.Text, num(e.Value), e.Detail)
		}
		b.WriteString("\n")
	}
	if r.Load != nil {
		b.WriteString("## Load\n\n")
		loads := []Load{*r.Load}
		if len(r.Phases) > 0 {
			loads = append(slices.Clone(r.Phases), *r.Load)
		}
		b.WriteString("| phase | target | kind | mode | requests | errors | error rate | rps | Mbit/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms |\n")
		b.WriteString("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, l := range loads {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n",
				orDash(l.Name), orDash(l.Target), orDash(l.Kind), mode(l), l.Requests, l.Errors, pct(l.ErrorRate),
				num(l.ThroughputRPS), num(round(l.ThroughputBPS/1e6, 2)), num(l.LatencyMS.P50), num(l.LatencyMS.P90),
				num(l.LatencyMS.P99), num(l.LatencyMS.P999), num(l.LatencyMS.Max))
		}
		l := r.Load
		if len(l.ErrorsByClass) > 0 {
			b.WriteString("\nErrors by class:")
			for _, c := range sortedKeys(l.ErrorsByClass) {
				fmt.Fprintf(&b, " %s %d;", c, l.ErrorsByClass[c])
			}
			b.WriteString("\n")
		}
		if len(l.Realservers) > 0 {
			b.WriteString("\n### Per real server (as the client saw it)\n\n| real server | weight | connections | requests | bytes | share | weight share |\n|---|---:|---:|---:|---:|---:|---:|\n")
			for _, s := range l.Realservers {
				fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %s | %s |\n", serverName(s.ID), num(s.Weight), s.Connections, s.Requests, s.Bytes, num(s.Share), num(s.WeightShare))
			}
		}
		if l.Fairness != nil {
			b.WriteString("\n")
			writeFairness(&b, l.Fairness)
		}
		if c := l.Clients; c != nil {
			fmt.Fprintf(&b, "\n### Per client address\n\n%d client addresses, %d reached more than one real server (persistence violations), at most %d real servers per client.\n\n",
				c.Addresses, c.PersistenceViolations, c.MaxServersPerClient)
			b.WriteString("| client | connections by real server | by port |\n|---|---|---|\n")
			for _, pc := range c.PerClient {
				fmt.Fprintf(&b, "| %s | %s | %s |\n", pc.Address, serverCounts(pc.Realservers), portCounts(pc.ByPort))
			}
		}
	}
	for _, s := range r.Services {
		fmt.Fprintf(&b, "\n## Service %s\n\n", serviceTitle(s))
		b.WriteString("| real server | address | forward | weight | connections | share | weight share | in pkts | out pkts | in bytes | out bytes |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, rs := range s.Realservers {
			fmt.Fprintf(&b, "| %s | %s | %s | %d | %d | %s | %s | %d | %d | %d | %d |\n", rs.Node, rs.Address, rs.Forward, rs.Weight,
				rs.Connections, num(rs.Share), num(rs.WeightShare), rs.InPackets, rs.OutPackets, rs.InBytes, rs.OutBytes)
		}
		b.WriteString("\n")
		writeFairness(&b, &s.Fairness)
	}
	if len(r.Faults) > 0 {
		b.WriteString("\n## Faults\n\n| at s | action | target | for s | detected after s | readded after s | recovered after s | detail |\n|---:|---|---|---:|---:|---:|---:|---|\n")
		for _, f := range r.Faults {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", num(f.AtS), f.Action, f.Target, num(f.ForS),
				optional(f.DetectedAfterS), optional(f.ReaddedAfterS), optional(f.RecoveredAfterS), f.Detail)
		}
	}
	if len(r.Health) > 0 {
		b.WriteString("\n## Health checks\n\n| real server | service | downs | flaps | up at the end |\n|---|---|---:|---:|---|\n")
		for _, h := range r.Health {
			if h.Sorry {
				fmt.Fprintf(&b, "| %s (sorry server) | %s | put in %d× | | %t |\n", h.Node, h.Service, h.Ins, h.Up)
				continue
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %d | %t |\n", h.Node, h.Service, h.Downs, h.Flaps, h.Up)
		}
	}
	if len(r.Environment)+len(r.Manifest) > 0 {
		b.WriteString("\n## Environment\n\n")
		for _, m := range []map[string]string{r.Environment, r.Manifest} {
			for _, k := range sortedKeys(m) {
				fmt.Fprintf(&b, "- %s: %s\n", k, m[k])
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// serviceTitle names a service as ipvsadm -L lists it: "tcp
// 192.168.1.110:80 (wlc)", "fwmark 1 192.168.1.110 (wrr)".
func serviceTitle(s Service) string {
	t := s.Protocol
	if s.FWMark != 0 {
		t += " " + strconv.FormatUint(uint64(s.FWMark), 10)
	}
	if s.VIP != "" {
		t += " " + s.VIP
	}
	return t + " (" + s.Scheduler + ")"
}

// serverCounts writes "rs1 40, rs2 3" in natural order.
func serverCounts(m map[string]uint64) string {
	ids := slices.SortedFunc(maps.Keys(m), naturalCompare)
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = fmt.Sprintf("%s %d", id, m[id])
	}
	return strings.Join(s, ", ")
}

// portCounts writes ":80 rs1 27; :443 rs1 27" in port order.
func portCounts(m map[uint16]map[string]uint64) string {
	var s []string
	for _, p := range slices.Sorted(maps.Keys(m)) {
		s = append(s, fmt.Sprintf(":%d %s", p, serverCounts(m[p])))
	}
	return strings.Join(s, "; ")
}

func writeFairness(b *strings.Builder, f *Fairness) {
	fmt.Fprintf(b, "Fairness: Jain %s (requests %s, bytes %s), weighted Jain %s, max share error %s, CV %s, χ² %s (df %d, p %s)\n",
		num(f.Jain), num(f.JainRequests), num(f.JainBytes), num(f.WeightedJain), num(f.MaxShareError), num(f.CV), num(f.ChiSquare), f.ChiDF, num(f.ChiP))
}

func mode(l Load) string {
	ka := ""
	if l.KeepAlive {
		ka = ", keep-alive"
	}
	if l.Mode == "open" {
		return fmt.Sprintf("open %s/s %s%s", num(l.Rate), l.Arrival, ka)
	}
	if l.Mode == "closed" && l.Concurrency > 0 {
		return fmt.Sprintf("closed ×%d%s", l.Concurrency, ka)
	}
	return orDash(l.Mode) + ka
}

// num prints a number without trailing zeros or exponent noise.
func num(v float64) string {
	s := fmt.Sprintf("%.4f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		return "0"
	}
	return s
}

// optional prints a measurement that may be absent as a dash.
func optional(v *float64) string {
	if v == nil {
		return "—"
	}
	return num(*v)
}

func pct(v float64) string { return num(round(v*100, 4)) + "%" }

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, naturalCompare)
	return keys
}

//go:embed report.html.tmpl
var htmlTemplate string

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"num":    num,
	"pct":    pct,
	"mode":   mode,
	"server": serverName,
	"mbit":   func(bps float64) string { return num(round(bps/1e6, 2)) },
	"svg":    inlineSVG,
	"keys":   sortedKeys[string],
	"ukeys":  sortedKeys[uint64],
	"opt":    optional,
	"counts": serverCounts,
	"ports":  portCounts,
	"title":  serviceTitle,
}).Parse(htmlTemplate))

// inlineSVG strips the XML prolog so the SVG can sit inside HTML.
func inlineSVG(b []byte) template.HTML {
	s := string(b)
	if i := strings.Index(s, "<svg"); i > 0 {
		s = s[i:]
	}
	return template.HTML(s)
}

// WriteHTML writes the self-contained report.html with the figures inline.
func WriteHTML(w io.Writer, r *Report, figs []Figure) error {
	return htmlTmpl.Execute(w, struct {
		R    *Report
		Figs []Figure
	}{r, figs})
}
