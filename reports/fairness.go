package reports

import (
	"math"

	"gonum.org/v1/gonum/stat/distuv"
)

// Fairness says how evenly (or how faithfully to the weights) traffic was
// split over a service's real servers.
type Fairness struct {
	// Jain is Jain's fairness index over connections: (Σx)² / (n·Σx²), 1 when
	// every server got the same, 1/n when one got everything.
	Jain float64 `json:"jain"`
	// WeightedJain is Jain's index over share/weight-share, over servers of
	// positive weight: 1 when every server got exactly its weight's share.
	WeightedJain float64 `json:"weighted_jain"`
	// MaxShareError is the largest |share − weight share| over all servers
	// (a server of weight 0 should get nothing new).
	MaxShareError float64 `json:"max_share_error"`
	// JainRequests and JainBytes are Jain's index over requests and response
	// bytes (they differ from connections under keep-alive). For a service,
	// which the director sees as packets, they are over its inbound packets
	// and its bytes both ways.
	JainRequests float64 `json:"jain_requests"`
	JainBytes    float64 `json:"jain_bytes"`
	// CV is the coefficient of variation (population standard deviation over
	// mean) of share/weight-share over servers of positive weight: 0 is a
	// split exactly by weight.
	CV float64 `json:"cv"`
	// ChiSquare tests the observed connection counts against counts in
	// proportion to the weights (servers of positive weight): a small p-value
	// says the split is unlikely to come from those weights. A deterministic
	// scheduler (rr, wrr) splits more evenly than chance, so its p is near 1.
	ChiSquare float64 `json:"chi2"`
	ChiDF     int     `json:"chi2_df"`
	ChiP      float64 `json:"chi2_p"`
}

// Jain is Jain's fairness index of x; 1 for an empty or all-zero x (nothing
// was split unfairly).
func Jain(x []float64) float64 {
	var sum, sq float64
	for _, v := range x {
		sum += v
		sq += v * v
	}
	if sq == 0 {
		return 1
	}
	return sum * sum / (float64(len(x)) * sq)
}

// Shares returns each x as a fraction of the total (all zero if the total is zero).
func Shares(x []float64) []float64 {
	var sum float64
	for _, v := range x {
		sum += v
	}
	s := make([]float64, len(x))
	if sum == 0 {
		return s
	}
	for i, v := range x {
		s[i] = v / sum
	}
	return s
}

// normalized returns share/weight-share for the servers of positive weight.
func normalized(x, w []float64) []float64 {
	s, ws := Shares(x), Shares(w)
	var r []float64
	for i := range x {
		if ws[i] > 0 {
			r = append(r, s[i]/ws[i])
		}
	}
	return r
}

// WeightedJain is Jain's index over share/weight-share, over servers of positive weight.
func WeightedJain(x, w []float64) float64 { return Jain(normalized(x, w)) }

// MaxShareError is the largest |share − weight share|.
func MaxShareError(x, w []float64) float64 {
	s, ws := Shares(x), Shares(w)
	var m float64
	for i := range s {
		m = max(m, math.Abs(s[i]-ws[i]))
	}
	return m
}

// CV is the coefficient of variation of share/weight-share over servers of positive weight.
func CV(x, w []float64) float64 {
	r := normalized(x, w)
	if len(r) == 0 {
		return 0
	}
	var mean float64
	for _, v := range r {
		mean += v
	}
	mean /= float64(len(r))
	if mean == 0 {
		return 0
	}
	var ss float64
	for _, v := range r {
		ss += (v - mean) * (v - mean)
	}
	return math.Sqrt(ss/float64(len(r))) / mean
}

// ChiSquare is Pearson's χ² of the counts x against expectations in
// proportion to the weights w, over servers of positive weight, with its
// degrees of freedom and p-value. With fewer than two such servers or no
// counts there is nothing to test: 0 degrees of freedom and p = 1.
func ChiSquare(x, w []float64) (stat float64, df int, p float64) {
	var n, wsum float64
	k := 0
	for i := range x {
		if w[i] > 0 {
			n += x[i]
			wsum += w[i]
			k++
		}
	}
	if k < 2 || n == 0 {
		return 0, 0, 1
	}
	for i := range x {
		if w[i] > 0 {
			e := n * w[i] / wsum
			stat += (x[i] - e) * (x[i] - e) / e
		}
	}
	df = k - 1
	return stat, df, distuv.ChiSquared{K: float64(df)}.Survival(stat)
}

// ComputeFairness measures the split of connections, requests and bytes over
// servers with weights w (equal weights when w is nil).
func ComputeFairness(conns, requests, bytes, w []float64) Fairness {
	if w == nil {
		w = make([]float64, len(conns))
		for i := range w {
			w[i] = 1
		}
	}
	f := Fairness{
		Jain:          Jain(conns),
		WeightedJain:  WeightedJain(conns, w),
		MaxShareError: MaxShareError(conns, w),
		JainRequests:  Jain(requests),
		JainBytes:     Jain(bytes),
		CV:            CV(conns, w),
	}
	f.ChiSquare, f.ChiDF, f.ChiP = ChiSquare(conns, w)
	return f
}
