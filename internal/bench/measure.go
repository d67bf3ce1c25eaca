package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"
)

// Options sets how many samples a run takes.
type Options struct {
	// Rounds is how many rounds each PerOp workload runs; a round runs Ops
	// operations on each variant in turn. Default 20.
	Rounds int
	// Ops is the number of operations per variant per round. Default 100.
	Ops int
	// ThroughputRounds is how many samples the Throughput workload takes
	// per variant. Default 7.
	ThroughputRounds int
	// ThroughputIters is how many insert-update-delete cycles each
	// goroutine runs per sample. Default 20.
	ThroughputIters int
	// BulkSamples is how many samples each Bulk workload takes per
	// variant. Default 5.
	BulkSamples int
	// Workloads selects workloads by name. Default all.
	Workloads []string
	// Progress, when set, receives a line per workload and round.
	Progress io.Writer
}

func (o *Options) setDefaults() error {
	def := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	def(&o.Rounds, 20)
	def(&o.Ops, 100)
	def(&o.ThroughputRounds, 7)
	def(&o.ThroughputIters, 20)
	def(&o.BulkSamples, 5)
	if o.Rounds < 1 || o.Ops < 1 || o.ThroughputRounds < 1 || o.ThroughputIters < 1 || o.BulkSamples < 1 {
		return fmt.Errorf("bench: Options: counts must be positive: %+v", *o)
	}
	if len(o.Workloads) == 0 {
		for _, w := range Workloads {
			o.Workloads = append(o.Workloads, w.Name)
		}
	}
	for _, name := range o.Workloads {
		if WorkloadByName(name) == nil {
			return fmt.Errorf("bench: unknown workload %q", name)
		}
	}
	return nil
}

// Result holds one workload's samples, by variant name.
type Result struct {
	Workload *Workload
	Samples  map[string][]Sample
	// CPU holds, per round, the server's CPU time per operation (per
	// statement for Throughput), when the server's processes can be read.
	CPU map[string][]time.Duration
	// Client holds, for PerOp workloads, per round, this process's CPU
	// time per operation (database/sql, the driver and pgx, and whatever
	// else the process ran meanwhile, such as the garbage collector).
	Client map[string][]time.Duration
	// RoundOps is how many samples each round added per variant; the
	// samples of a variant are in round order.
	RoundOps int
}

// Report is the outcome of a run.
type Report struct {
	Config  Config
	Options Options
	// ServerVersion is the server's server_version_num.
	ServerVersion int
	// Durability is the server's fsync, synchronous_commit and
	// full_page_writes settings (Suite.Durability).
	Durability string
	Started    time.Time
	Elapsed    time.Duration
	Results    []*Result
	// EntrySizes holds each audited variant's entry size after a bulk
	// workload, keyed by operation ("update" after the bulk UPDATE,
	// "create" after the bulk INSERT) and then variant name.
	EntrySizes map[string]map[string]*EntrySize
}

// Run runs the selected workloads on every variant, interleaving the
// variants (see round) so that drift in the machine's speed spreads evenly
// over them. Each PerOp and Throughput workload starts with a warm-up
// round that is not recorded.
func (s *Suite) Run(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	r := &Report{Config: s.cfg, Options: opts, ServerVersion: s.ServerVersion, Durability: s.Durability, Started: time.Now(),
		EntrySizes: map[string]map[string]*EntrySize{}}
	progress := func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, format+"\n", args...)
		}
	}
	for _, name := range opts.Workloads {
		w := WorkloadByName(name)
		vs := s.variantsFor(w)
		res := &Result{Workload: w, Samples: map[string][]Sample{}, CPU: map[string][]time.Duration{}, Client: map[string][]time.Duration{}}
		rounds, n := opts.Rounds*max(1, w.RoundsScale), opts.Ops
		res.RoundOps = n
		switch w.Kind {
		case Throughput:
			rounds, n = opts.ThroughputRounds, opts.ThroughputIters
			res.RoundOps = 1
		case Bulk:
			rounds, n = opts.BulkSamples, 1
			res.RoundOps = 1
		}
		if w.Kind != Bulk {
			for _, v := range vs {
				if _, err := w.Run(ctx, s, v, -1, max(1, n/5)); err != nil {
					return nil, err
				}
			}
		}
		for round := range rounds {
			start := time.Now()
			if err := s.round(ctx, w, vs, round, n, res); err != nil {
				return nil, err
			}
			progress("%-12s round %d/%d  %.1fs", w.Name, round+1, rounds, time.Since(start).Seconds())
		}
		r.Results = append(r.Results, res)
		if w.Kind == Bulk {
			op := map[string]string{"bulk-update": "update", "bulk-insert": "create"}[w.Name]
			r.EntrySizes[op] = map[string]*EntrySize{}
			for _, v := range vs {
				if !v.Audited {
					continue
				}
				es, err := s.EntrySize(ctx, v)
				if err != nil {
					return nil, err
				}
				r.EntrySizes[op][v.Name] = es
			}
		}
	}
	r.Elapsed = time.Since(r.Started)
	return r, nil
}

// round runs one round of w. PerOp rounds alternate the variants
// operation by operation, in an order shuffled for each operation; the
// others run a variant's batch at a time, in an order that rotates.
func (s *Suite) round(ctx context.Context, w *Workload, vs []*Variant, round, n int, res *Result) error {
	batches := map[*Variant]*Batch{}
	defer func() {
		for _, b := range batches {
			b.Close()
		}
	}()
	start := func(v *Variant) (*Batch, error) {
		b, err := w.Start(ctx, s, v, round, n)
		if err == nil {
			batches[v] = b
		}
		return b, err
	}
	finish := func(v *Variant, cpu0 time.Duration, ok bool, ops int) error {
		cpu1, ok1, err := s.serverCPU(ctx, v)
		if err != nil {
			return err
		}
		b := batches[v]
		if ok && ok1 && cpu1 >= cpu0 {
			res.CPU[v.Name] = append(res.CPU[v.Name], (cpu1-cpu0)/time.Duration(ops*b.b.stmts))
		}
		delete(batches, v)
		return b.Close()
	}
	if w.Kind != PerOp {
		for k := range vs {
			v := vs[(k+round)%len(vs)]
			b, err := start(v)
			if err != nil {
				return err
			}
			cpu0, ok, err := s.serverCPU(ctx, v)
			if err != nil {
				return err
			}
			sample, err := b.Time(0)
			if err != nil {
				return err
			}
			res.Samples[v.Name] = append(res.Samples[v.Name], sample)
			if err := finish(v, cpu0, ok, 1); err != nil {
				return err
			}
		}
		return nil
	}
	cpu0 := map[*Variant]time.Duration{}
	cpuOK := map[*Variant]bool{}
	for _, v := range vs {
		if _, err := start(v); err != nil {
			return err
		}
	}
	for _, v := range vs {
		c, ok, err := s.serverCPU(ctx, v)
		if err != nil {
			return err
		}
		cpu0[v], cpuOK[v] = c, ok
	}
	client := map[*Variant]time.Duration{}
	clientOK := true
	// A fresh order for every operation: with a rotating one, each variant
	// would nearly always run right after the same other variant.
	rng := rand.New(rand.NewPCG(uint64(round), 0x5eed))
	order := make([]*Variant, len(vs))
	copy(order, vs)
	for i := range n {
		rng.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, v := range order {
			c0, ok0 := processCPU()
			sample, err := batches[v].Time(i)
			if err != nil {
				return err
			}
			c1, ok1 := processCPU()
			clientOK = clientOK && ok0 && ok1
			client[v] += c1 - c0
			res.Samples[v.Name] = append(res.Samples[v.Name], sample)
		}
	}
	for _, v := range vs {
		if clientOK {
			res.Client[v.Name] = append(res.Client[v.Name], client[v]/time.Duration(n))
		}
		if err := finish(v, cpu0[v], cpuOK[v], n); err != nil {
			return err
		}
	}
	return nil
}

func (s *Suite) variantsFor(w *Workload) []*Variant {
	if !w.ReadOnly {
		return s.Variants
	}
	var out []*Variant
	for _, v := range s.Variants {
		if v.Name == Plain || v.Name == Auditpgx {
			out = append(out, v)
		}
	}
	return out
}

// Stats summarises samples.
type Stats struct {
	N                     int
	Median, P25, P75      time.Duration
	MedianAlloc, MaxAlloc uint64
}

// Spread is half the interquartile range relative to the median.
func (st Stats) Spread() float64 {
	if st.Median == 0 {
		return 0
	}
	return float64(st.P75-st.P25) / 2 / float64(st.Median)
}

// Summarize returns the statistics of samples.
func Summarize(samples []Sample) Stats {
	if len(samples) == 0 {
		return Stats{}
	}
	d := make([]float64, len(samples))
	a := make([]float64, len(samples))
	for i, s := range samples {
		d[i], a[i] = float64(s.Duration), float64(s.Alloc)
	}
	slices.Sort(d)
	slices.Sort(a)
	return Stats{
		N:           len(samples),
		Median:      time.Duration(quantile(d, 0.5)),
		P25:         time.Duration(quantile(d, 0.25)),
		P75:         time.Duration(quantile(d, 0.75)),
		MedianAlloc: uint64(quantile(a, 0.5)),
		MaxAlloc:    uint64(a[len(a)-1]),
	}
}

// quantile interpolates linearly between the sorted values.
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := int(pos)
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(lo)
	return sorted[lo]*(1-frac) + sorted[lo+1]*frac
}

// Stats returns the statistics of a variant's samples in r.
func (r *Result) Stats(variant string) Stats { return Summarize(r.Samples[variant]) }

// Ratio returns the ratio of the medians of two variants, 0 when either
// has no samples.
func (r *Result) Ratio(num, den string) float64 {
	a, b := r.Stats(num), r.Stats(den)
	if a.N == 0 || b.N == 0 || b.Median == 0 {
		return 0
	}
	return float64(a.Median) / float64(b.Median)
}

// CPUStats returns the median server CPU time per operation of a variant
// over the rounds, and half its interquartile range relative to the
// median; n is 0 when it was not measured.
func (r *Result) CPUStats(variant string) (median time.Duration, spread float64, n int) {
	return roundStats(r.CPU[variant])
}

// ClientStats is CPUStats for this process's CPU time (Client).
func (r *Result) ClientStats(variant string) (median time.Duration, spread float64, n int) {
	return roundStats(r.Client[variant])
}

func roundStats(perRound []time.Duration) (median time.Duration, spread float64, n int) {
	samples := make([]Sample, len(perRound))
	for i, d := range perRound {
		samples[i].Duration = d
	}
	st := Summarize(samples)
	return st.Median, st.Spread(), st.N
}

// RatioCI returns a 95% confidence interval for Ratio(num, den) by a
// bootstrap over rounds: each resample draws whole rounds with
// replacement, the same rounds for both variants, so that the pairing of
// the interleaved operations and any drift between rounds are kept. ok is
// false with fewer than 5 rounds.
func (r *Result) RatioCI(num, den string) (lo, hi float64, ok bool) {
	a, b := r.Samples[num], r.Samples[den]
	per := r.RoundOps
	if per < 1 || len(a) != len(b) || len(a)%per != 0 || len(a)/per < 5 {
		return 0, 0, false
	}
	rounds := len(a) / per
	const resamples = 1000
	rng := rand.New(rand.NewPCG(1, 2))
	ratios := make([]float64, 0, resamples)
	bufA := make([]float64, 0, len(a))
	bufB := make([]float64, 0, len(b))
	for range resamples {
		bufA, bufB = bufA[:0], bufB[:0]
		for range rounds {
			k := rng.IntN(rounds) * per
			for j := k; j < k+per; j++ {
				bufA = append(bufA, float64(a[j].Duration))
				bufB = append(bufB, float64(b[j].Duration))
			}
		}
		if mb := medianOf(bufB); mb > 0 {
			ratios = append(ratios, medianOf(bufA)/mb)
		}
	}
	if len(ratios) == 0 {
		return 0, 0, false
	}
	slices.Sort(ratios)
	return quantile(ratios, 0.025), quantile(ratios, 0.975), true
}

// medianOf returns the median of x, reordering x.
func medianOf(x []float64) float64 {
	n := len(x)
	if n%2 == 1 {
		return selectKth(x, n/2)
	}
	lo := selectKth(x, n/2-1)
	// After selecting n/2-1, the elements above it hold the next one.
	return (lo + slices.Min(x[n/2:])) / 2
}

// selectKth reorders x so that x[k] is the k-th smallest, smaller or equal
// ones before it and larger or equal ones after it, and returns it.
func selectKth(x []float64, k int) float64 {
	lo, hi := 0, len(x)-1
	for lo < hi {
		pivot := x[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for x[i] < pivot {
				i++
			}
			for x[j] > pivot {
				j--
			}
			if i <= j {
				x[i], x[j] = x[j], x[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return x[k]
		}
	}
	return x[k]
}

// CPURatio returns the ratio of two variants' median server CPU time, 0
// when either was not measured.
func (r *Result) CPURatio(num, den string) float64 {
	a, _, na := r.CPUStats(num)
	b, _, nb := r.CPUStats(den)
	if na == 0 || nb == 0 || b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Result returns the result of the workload of that name, or nil.
func (r *Report) Result(name string) *Result {
	for _, res := range r.Results {
		if res.Workload.Name == name {
			return res
		}
	}
	return nil
}
