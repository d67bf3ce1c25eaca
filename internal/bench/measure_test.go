package bench

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestMedianOfMatchesQuantile(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for n := 1; n < 60; n++ {
		x := make([]float64, n)
		for i := range x {
			x[i] = float64(rng.IntN(20)) // repeated values exercise the equal-to-pivot paths
		}
		want := quantile(slices.Sorted(slices.Values(x)), 0.5)
		if got := medianOf(slices.Clone(x)); got != want {
			t.Fatalf("medianOf(%v) = %v, want %v", x, got, want)
		}
		for k := range x {
			y := slices.Clone(x)
			got := selectKth(y, k)
			sorted := slices.Sorted(slices.Values(x))
			if got != sorted[k] {
				t.Fatalf("selectKth(%v, %d) = %v, want %v", x, k, got, sorted[k])
			}
		}
	}
}

func TestRatioCI(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const rounds, per = 20, 50
	res := &Result{Samples: map[string][]Sample{}, RoundOps: per}
	for range rounds * per {
		base := 100 + rng.Float64()*20
		res.Samples[Plain] = append(res.Samples[Plain], Sample{Duration: time.Duration(base * 1000)})
		res.Samples[Auditpgx] = append(res.Samples[Auditpgx], Sample{Duration: time.Duration(base * 1100)})
	}
	lo, hi, ok := res.RatioCI(Auditpgx, Plain)
	if !ok {
		t.Fatal("RatioCI: not ok with 20 rounds")
	}
	x := res.Ratio(Auditpgx, Plain)
	if !(lo <= x && x <= hi) || lo < 1.05 || hi > 1.15 {
		t.Errorf("RatioCI = [%.3f, %.3f], ratio %.3f: want an interval around it, within [1.05, 1.15]", lo, hi, x)
	}
	res.Samples[Plain] = res.Samples[Plain][:per*4]
	res.Samples[Auditpgx] = res.Samples[Auditpgx][:per*4]
	if _, _, ok := res.RatioCI(Auditpgx, Plain); ok {
		t.Error("RatioCI is ok with 4 rounds, want not ok")
	}
}
