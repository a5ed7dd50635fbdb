package metrics

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// resultJSON is the transport form of a Result (between an agent and the
// runner). Histograms are HdrHistogram V2 compressed, base64 in JSON.
type resultJSON struct {
	Start         time.Time                            `json:"start"`
	IntervalNS    int64                                `json:"interval_ns"`
	ElapsedNS     int64                                `json:"elapsed_ns"`
	Scheduled     uint64                               `json:"scheduled"`
	Sent          uint64                               `json:"sent"`
	Outcomes      map[string]uint64                    `json:"outcomes"`
	BytesSent     uint64                               `json:"bytes_sent"`
	BytesReceived uint64                               `json:"bytes_received"`
	Latency       []byte                               `json:"latency_hdr"`
	Servers       map[string]*ServerCounts             `json:"servers"`
	Clients       map[netip.AddrPort]map[string]uint64 `json:"clients,omitempty"`
	Series        []intervalJSON                       `json:"series"`
}

type intervalJSON struct {
	Outcomes      map[string]uint64 `json:"outcomes,omitempty"`
	BytesReceived uint64            `json:"bytes_received,omitempty"`
	Latency       []byte            `json:"latency_hdr,omitempty"`
	Connections   map[string]uint64 `json:"connections,omitempty"`
}

func outcomesJSON(o *[NumClasses]uint64) map[string]uint64 {
	m := map[string]uint64{}
	for c, n := range o {
		if n != 0 {
			m[Class(c).String()] = n
		}
	}
	return m
}

func outcomesFromJSON(m map[string]uint64, o *[NumClasses]uint64) error {
next:
	for name, n := range m {
		for c := range o {
			if Class(c).String() == name {
				o[c] = n
				continue next
			}
		}
		return fmt.Errorf("metrics: unknown outcome class %q", name)
	}
	return nil
}

// MarshalJSON encodes r for transport.
func (r *Result) MarshalJSON() ([]byte, error) {
	lat, err := r.Latency.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, err
	}
	w := resultJSON{
		Start: r.Start, IntervalNS: int64(r.Interval), ElapsedNS: int64(r.Elapsed),
		Scheduled: r.Scheduled, Sent: r.Sent, Outcomes: outcomesJSON(&r.Outcomes),
		BytesSent: r.BytesSent, BytesReceived: r.BytesReceived, Latency: lat, Servers: r.Servers, Clients: r.Clients,
		Series: make([]intervalJSON, len(r.Series)),
	}
	for i := range r.Series {
		iv := &r.Series[i]
		s := &w.Series[i]
		s.Outcomes = outcomesJSON(&iv.Outcomes)
		s.BytesReceived = iv.BytesReceived
		s.Connections = iv.Connections
		if iv.Latency.TotalCount() > 0 {
			if s.Latency, err = iv.Latency.Encode(hdrhistogram.V2CompressedEncodingCookieBase); err != nil {
				return nil, err
			}
		}
	}
	return json.Marshal(&w)
}

// UnmarshalJSON decodes what MarshalJSON wrote.
func (r *Result) UnmarshalJSON(b []byte) error {
	var w resultJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.IntervalNS <= 0 {
		return fmt.Errorf("metrics: interval_ns %d is not positive", w.IntervalNS)
	}
	out := NewResult(w.Start, time.Duration(w.IntervalNS))
	out.Elapsed = time.Duration(w.ElapsedNS)
	out.Scheduled, out.Sent = w.Scheduled, w.Sent
	out.BytesSent, out.BytesReceived = w.BytesSent, w.BytesReceived
	if err := outcomesFromJSON(w.Outcomes, &out.Outcomes); err != nil {
		return err
	}
	if err := mergeEncoded(out.Latency, w.Latency); err != nil {
		return err
	}
	for id, sc := range w.Servers {
		if sc != nil {
			out.server(id).add(*sc)
		}
	}
	for a, m := range w.Clients {
		for id, n := range m {
			out.client(a)[id] += n
		}
	}
	for i := range w.Series {
		s := &w.Series[i]
		iv := out.interval(i)
		if err := outcomesFromJSON(s.Outcomes, &iv.Outcomes); err != nil {
			return err
		}
		iv.BytesReceived = s.BytesReceived
		for id, n := range s.Connections {
			iv.Connections[id] = n
		}
		if err := mergeEncoded(iv.Latency, s.Latency); err != nil {
			return err
		}
	}
	*r = *out
	return nil
}

func mergeEncoded(into *hdrhistogram.Histogram, enc []byte) error {
	if len(enc) == 0 {
		return nil
	}
	h, err := hdrhistogram.Decode(enc)
	if err != nil {
		return fmt.Errorf("metrics: latency histogram: %w", err)
	}
	into.Merge(h)
	return nil
}
