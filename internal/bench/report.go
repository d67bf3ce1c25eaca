package bench

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// Target is one of the performance targets and how a run measured against
// it.
type Target struct {
	Name     string
	Limit    string
	Measured string
	// Met is meaningful only when Known.
	Met, Known bool
}

// Targets evaluates the targets that the run's workloads measure.
func (r *Report) Targets() []Target {
	var out []Target
	ratios := func(name, num, den, limit string, max float64, pick func(*Workload) bool) {
		out = append(out, r.ratioTarget(name, limit, max, pick, num, func(*Workload) string { return den }))
	}
	single := func(w *Workload) bool { return w.SingleRow }
	named := func(n string) func(*Workload) bool { return func(w *Workload) bool { return w.Name == n } }
	ratios("single-row writes, auditpgx / plain", Auditpgx, Plain, "≤ 1.25", 1.25, single)
	ratios("single-row writes, auditpgx / row trigger", Auditpgx, RowTrigger, "≤ 1.00", 1.0, single)
	bulk := thousands(r.Config.Rows) + "-row UPDATE"
	ratios(bulk+", auditpgx / row trigger", Auditpgx, RowTrigger, "≤ 0.70", 0.7, named("bulk-update"))
	ratios(bulk+", auditpgx / stmt trigger", Auditpgx, StmtTrigger, "≤ 1.00", 1.0, named("bulk-update"))
	ratios("SELECT by key, auditpgx / plain", Auditpgx, Plain, "≤ 1.02", 1.02, named("select"))
	out = append(out, r.floorTargets()...)
	heap := Target{Name: "Go heap allocated by the " + bulk + " through auditpgx", Limit: "< 1 MiB"}
	if res := r.Result("bulk-update"); res != nil {
		if st := res.Stats(Auditpgx); st.N > 0 {
			heap.Known = true
			heap.Met = st.MaxAlloc < 1<<20
			heap.Measured = fmt.Sprintf("%s median, %s max (plain: %s)", bytesString(float64(st.MedianAlloc)), bytesString(float64(st.MaxAlloc)),
				bytesString(float64(res.Stats(Plain).MedianAlloc)))
		}
	}
	return append(out, heap)
}

// WriteTables writes the run's figures as Markdown tables: the medians and
// ratios of every workload, the targets (with extra ones appended), and
// the size of an entry.
func (r *Report) WriteTables(w io.Writer, extra []Target) {
	variants := r.Config.Variants
	fmt.Fprintf(w, "| workload |")
	for _, v := range variants {
		fmt.Fprintf(w, " %s |", v)
	}
	ratioCols := [][2]string{{Auditpgx, Plain}, {Auditpgx, RowTrigger}, {Auditpgx, StmtTrigger},
		{Auditpgx, Floor}, {Auditpgx, FloorPreImage}, {FloorPreImage, Floor}, {Auditpgx, FloorDiff}, {FloorDiff, r.updateFloor()}}
	var shown [][2]string
	for _, rc := range ratioCols {
		if slices.Contains(variants, rc[0]) && slices.Contains(variants, rc[1]) {
			shown = append(shown, rc)
			fmt.Fprintf(w, " %s / %s |", rc[0], rc[1])
		}
	}
	fmt.Fprintf(w, "\n|---|%s%s\n", strings.Repeat("--:|", len(variants)), strings.Repeat("--:|", len(shown)))
	for _, res := range r.Results {
		fmt.Fprintf(w, "| %s |", res.Workload.title(r.Config))
		for _, v := range variants {
			st := res.Stats(v)
			if st.N == 0 {
				fmt.Fprintf(w, " – |")
				continue
			}
			fmt.Fprintf(w, " %s ±%.0f%% |", durationString(st.Median), 100*st.Spread())
		}
		for _, rc := range shown {
			if x := res.Ratio(rc[0], rc[1]); x > 0 {
				fmt.Fprintf(w, " %.2f |", x)
			} else {
				fmt.Fprintf(w, " – |")
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nMedians; ± is half the interquartile range over %s.\n", r.sampleCounts())
	r.writeCPU(w, variants, shown)

	r.writeClient(w, variants)

	fmt.Fprintf(w, "\n| target | limit | measured (95%% confidence interval of the ratio, bootstrap over rounds) | met |\n|---|---|---|---|\n")
	for _, t := range append(r.Targets(), extra...) {
		met := "not measured"
		if t.Known {
			met = map[bool]string{true: "yes", false: "**no**"}[t.Met]
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", t.Name, t.Limit, t.Measured, met)
	}

	for _, op := range []string{"update", "create"} {
		sizes := r.EntrySizes[op]
		if len(sizes) == 0 {
			continue
		}
		fmt.Fprintf(w, "\nBytes per %s entry (fresh table, no bloat):\n\n| variant | entries | heap | TOAST | indexes | total |\n|---|--:|--:|--:|---|--:|\n", op)
		for _, v := range variants {
			es := sizes[v]
			if es == nil || es.Entries == 0 {
				continue
			}
			total := es.Heap + es.Toast
			var idx []string
			for _, name := range slices.Sorted(maps.Keys(es.Indexes)) {
				total += es.Indexes[name]
				idx = append(idx, fmt.Sprintf("%s %.0f", strings.TrimPrefix(name, "auditpgx_entry_"), es.Indexes[name]))
			}
			fmt.Fprintf(w, "| %s | %d | %.0f | %.0f | %s | %.0f |\n", v, es.Entries, es.Heap, es.Toast, strings.Join(idx, ", "), total)
		}
	}
}

// writeCPU writes the server's CPU time per operation, which a loaded
// machine inflates far less than elapsed time.
func (r *Report) writeCPU(w io.Writer, variants []string, ratios [][2]string) {
	any := false
	for _, res := range r.Results {
		any = any || len(res.CPU) > 0
	}
	if !any {
		return
	}
	fmt.Fprintf(w, "\nServer CPU time per operation (the backends' time on a CPU from /proc/<pid>/schedstat, triggers included; median over rounds):\n\n| workload |")
	for _, v := range variants {
		fmt.Fprintf(w, " %s |", v)
	}
	for _, rc := range ratios {
		fmt.Fprintf(w, " %s / %s |", rc[0], rc[1])
	}
	fmt.Fprintf(w, "\n|---|%s%s\n", strings.Repeat("--:|", len(variants)), strings.Repeat("--:|", len(ratios)))
	for _, res := range r.Results {
		fmt.Fprintf(w, "| %s |", res.Workload.Name)
		for _, v := range variants {
			if m, spread, n := res.CPUStats(v); n > 0 {
				fmt.Fprintf(w, " %s ±%.0f%% |", durationString(m), 100*spread)
			} else {
				fmt.Fprintf(w, " – |")
			}
		}
		for _, rc := range ratios {
			if x := res.CPURatio(rc[0], rc[1]); x > 0 {
				fmt.Fprintf(w, " %.2f |", x)
			} else {
				fmt.Fprintf(w, " – |")
			}
		}
		fmt.Fprintln(w)
	}
}

// writeClient writes this process's CPU time per operation: what the
// driver costs on the client, which elapsed time mixes with the server's
// and the network's.
func (r *Report) writeClient(w io.Writer, variants []string) {
	any := false
	for _, res := range r.Results {
		any = any || len(res.Client) > 0
	}
	if !any {
		return
	}
	diff := slices.Contains(variants, Auditpgx) && slices.Contains(variants, Plain)
	fmt.Fprintf(w, "\nClient CPU time per operation (this process, from getrusage: database/sql, the driver, pgx, and the garbage collector; mean per round, median over rounds):\n\n| workload |")
	for _, v := range variants {
		fmt.Fprintf(w, " %s |", v)
	}
	if diff {
		fmt.Fprintf(w, " auditpgx − plain |")
	}
	fmt.Fprintf(w, "\n|---|%s%s\n", strings.Repeat("--:|", len(variants)), map[bool]string{true: "--:|"}[diff])
	for _, res := range r.Results {
		if len(res.Client) == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s |", res.Workload.Name)
		for _, v := range variants {
			if m, spread, n := res.ClientStats(v); n > 0 {
				fmt.Fprintf(w, " %.1f µs ±%.0f%% |", float64(m)/1e3, 100*spread)
			} else {
				fmt.Fprintf(w, " – |")
			}
		}
		if diff {
			a, _, na := res.ClientStats(Auditpgx)
			b, _, nb := res.ClientStats(Plain)
			if na > 0 && nb > 0 {
				fmt.Fprintf(w, " %+.1f µs |", float64(a-b)/1e3)
			} else {
				fmt.Fprintf(w, " – |")
			}
		}
		fmt.Fprintln(w)
	}
}

func (r *Report) sampleCounts() string {
	o := r.Options
	var scaled []string
	for _, res := range r.Results {
		if w := res.Workload; w.Kind == PerOp && w.RoundsScale > 1 {
			scaled = append(scaled, fmt.Sprintf("%s %d×%d", w.Name, o.Rounds*w.RoundsScale, o.Ops))
		}
	}
	extra := ""
	if len(scaled) > 0 {
		extra = " (" + strings.Join(scaled, ", ") + ")"
	}
	return fmt.Sprintf("%d×%d operations per variant for single statements%s, %d samples of %d×%d×3 statements for the concurrent workload, %d samples per bulk workload",
		o.Rounds, o.Ops, extra, o.ThroughputRounds, r.Config.Conns, o.ThroughputIters, o.BulkSamples)
}

func durationString(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.0f µs", float64(d)/1e3)
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func bytesString(b float64) string {
	switch {
	case b < 1<<10:
		return fmt.Sprintf("%.0f B", b)
	case b < 1<<20:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.1f MiB", b/(1<<20))
}

// floorOf is the floor variant a workload's auditpgx figure is held
// against: before PostgreSQL 18 an UPDATE's floor must read the
// pre-image, as auditpgx does there.
func (r *Report) floorOf(w *Workload) string {
	switch w.Name {
	case "update", "prepared", "gorm-save", "bulk-update":
		return r.updateFloor()
	}
	return Floor
}

// updateFloor is the floor an UPDATE is held against, and the one
// FloorDiff adds the comparisons to: the pre-image floor before
// PostgreSQL 18.
func (r *Report) updateFloor() string {
	if r.ServerVersion < 180000 {
		return FloorPreImage
	}
	return Floor
}

// ratioTarget is the target that num / den(w) be at most max for every
// workload w that pick selects, with the ratios and their intervals.
func (r *Report) ratioTarget(name, limit string, max float64, pick func(*Workload) bool, num string, den func(*Workload) string) Target {
	t := Target{Name: name, Limit: limit, Met: true}
	var parts []string
	for _, res := range r.Results {
		if !pick(res.Workload) {
			continue
		}
		d := den(res.Workload)
		x := res.Ratio(num, d)
		if x == 0 {
			continue
		}
		t.Known = true
		t.Met = t.Met && x <= max
		part := fmt.Sprintf("%s %.2f", res.Workload.Name, x)
		if lo, hi, ok := res.RatioCI(num, d); ok {
			part += fmt.Sprintf(" [%.3f–%.3f]", lo, hi)
		}
		parts = append(parts, part)
	}
	t.Measured = strings.Join(parts, ", ")
	return t
}

// floorTargets are auditpgx / floor for the single-row writes (≤ 1.05 on
// PostgreSQL 18 and later, ≤ 1.10 before) and the bulk writes (≤ 1.05),
// when the run has the floor variants; and the same limits for auditpgx /
// floor+diff, the cost of auditpgx's own shape beyond the comparisons its
// entries need.
func (r *Report) floorTargets() []Target {
	limit, max := "≤ 1.05", 1.05
	if r.ServerVersion < 180000 {
		limit, max = "≤ 1.10", 1.10
	}
	single := func(w *Workload) bool { return w.SingleRow }
	bulk := func(w *Workload) bool { return w.Kind == Bulk }
	return []Target{
		r.ratioTarget("single-row writes, auditpgx / floor (the pre-image floor for UPDATEs before 18)", limit, max, single, Auditpgx, r.floorOf),
		r.ratioTarget("bulk writes, auditpgx / floor (the pre-image floor for the UPDATE before 18)", "≤ 1.05", 1.05, bulk, Auditpgx, r.floorOf),
		r.ratioTarget("single-row writes, auditpgx / floor+diff (auditpgx's shape beyond the diff)", limit, max, single, Auditpgx, floorDiff),
		r.ratioTarget("bulk writes, auditpgx / floor+diff", "≤ 1.05", 1.05, bulk, Auditpgx, floorDiff),
	}
}

// floorDiff is FloorDiff for every workload.
func floorDiff(*Workload) string { return FloorDiff }
