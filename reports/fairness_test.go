package reports

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestJain(t *testing.T) {
	for _, tc := range []struct {
		name string
		x    []float64
		want float64
	}{
		{"equal counts: 40²/(4·400) = 1", []float64{10, 10, 10, 10}, 1},
		{"one server takes all: 40²/(4·1600) = 1/4", []float64{40, 0, 0, 0}, 0.25},
		{"3 and 1: 4²/(2·10) = 0.8", []float64{3, 1}, 0.8},
		{"1, 2, 3: 6²/(3·14) = 6/7", []float64{1, 2, 3}, 6.0 / 7},
		{"no traffic is not unfair", []float64{0, 0}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDelta(t, tc.want, Jain(tc.x), 1e-12)
		})
	}
}

func TestWeightedFairness(t *testing.T) {
	t.Run("30:10 over weights 3:1 is exact: weighted Jain 1, no share error, CV 0", func(t *testing.T) {
		x, w := []float64{30, 10}, []float64{3, 1}
		assert.InDelta(t, 1, WeightedJain(x, w), 1e-12)
		assert.InDelta(t, 0, MaxShareError(x, w), 1e-12)
		assert.InDelta(t, 0, CV(x, w), 1e-12)
		assert.InDelta(t, 0.8, Jain(x), 1e-12, "the plain index still sees the 3:1 split")
	})
	t.Run("20:20 over weights 3:1: ratios 2/3 and 2, Jain (8/3)²/(2·(4/9+4)) = 0.8, share error 0.25", func(t *testing.T) {
		x, w := []float64{20, 20}, []float64{3, 1}
		assert.InDelta(t, 0.8, WeightedJain(x, w), 1e-12)
		assert.InDelta(t, 0.25, MaxShareError(x, w), 1e-12)
		// ratios 2/3 and 2: mean 4/3, sd 2/3, CV 1/2
		assert.InDelta(t, 0.5, CV(x, w), 1e-12)
	})
	t.Run("a quiescent server (weight 0) is left out of the weighted index but not the share error", func(t *testing.T) {
		x, w := []float64{45, 45, 10}, []float64{1, 1, 0}
		assert.InDelta(t, 1, WeightedJain(x, w), 1e-12)
		assert.InDelta(t, 0.1, MaxShareError(x, w), 1e-12)
	})
}

func TestChiSquare(t *testing.T) {
	t.Run("60:40 against equal weights: χ² = 10²/50+10²/50 = 4, df 1, p = 0.0455", func(t *testing.T) {
		stat, df, p := ChiSquare([]float64{60, 40}, []float64{1, 1})
		assert.InDelta(t, 4, stat, 1e-12)
		assert.Equal(t, 1, df)
		assert.InDelta(t, 0.0455, p, 1e-4)
	})
	t.Run("an exact 3:2:1 split of 600 has χ² 0 and p 1", func(t *testing.T) {
		stat, df, p := ChiSquare([]float64{300, 200, 100}, []float64{3, 2, 1})
		assert.InDelta(t, 0, stat, 1e-12)
		assert.Equal(t, 2, df)
		assert.InDelta(t, 1, p, 1e-12)
	})
	t.Run("110:90:100 against equal weights: χ² = (100+100+0)/100 = 2, df 2, p = e^-1", func(t *testing.T) {
		stat, df, p := ChiSquare([]float64{110, 90, 100}, []float64{1, 1, 1})
		assert.InDelta(t, 2, stat, 1e-12)
		assert.Equal(t, 2, df)
		assert.InDelta(t, 0.36788, p, 1e-5)
	})
	t.Run("one weighted server leaves nothing to test", func(t *testing.T) {
		_, df, p := ChiSquare([]float64{10, 5}, []float64{1, 0})
		assert.Equal(t, 0, df)
		assert.Equal(t, 1.0, p)
	})
}

func TestNaturalCompare(t *testing.T) {
	assert.Negative(t, naturalCompare("rs2", "rs10"))
	assert.Positive(t, naturalCompare("rs10", "rs9"))
	assert.Negative(t, naturalCompare("", "rs1"))
	assert.Zero(t, naturalCompare("rs1", "rs1"))
}
