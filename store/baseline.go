package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// A baseline (auditpgx.Baseline, auditpgx baseline) records the rows a
// table holds in one REPEATABLE READ transaction: one snapshot entry per
// row, then one marker entry (operation snapshot, empty object_id) that
// holds the transaction's snapshot. Writes through the driver go on
// meanwhile, and their entries interleave with the snapshot entries by id:
// a write committed after the snapshot was taken (or running then) is not
// in the snapshot entries, yet its entry may have a lower id than the
// snapshot entry of the row it changed. Readers therefore apply entries
// in id order, except that an entry with a lower id than a marker that
// its snapshot does not see applies just after that marker (after every
// snapshot entry of the baseline). Entries the snapshot sees always have
// lower ids than the baseline's own entries, so the order is: what the
// snapshot accounts for, the snapshot, what came after.

// pgSnapshot is a parsed pg_snapshot: xmin:xmax:xip,…
type pgSnapshot struct {
	xmin, xmax uint64
	xip        map[uint64]bool
}

func parseSnapshot(s string) (pgSnapshot, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return pgSnapshot{}, fmt.Errorf("snapshot %q is not xmin:xmax:xip", s)
	}
	xmin, err1 := strconv.ParseUint(parts[0], 10, 64)
	xmax, err2 := strconv.ParseUint(parts[1], 10, 64)
	if err1 != nil || err2 != nil || xmin > xmax {
		return pgSnapshot{}, fmt.Errorf("snapshot %q is not xmin:xmax:xip", s)
	}
	snap := pgSnapshot{xmin: xmin, xmax: xmax}
	if parts[2] != "" {
		snap.xip = map[uint64]bool{}
		for _, x := range strings.Split(parts[2], ",") {
			v, err := strconv.ParseUint(x, 10, 64)
			if err != nil || v < xmin || v >= xmax {
				return pgSnapshot{}, fmt.Errorf("snapshot %q: %q is not a transaction between xmin and xmax", s, x)
			}
			snap.xip[v] = true
		}
	}
	return snap, nil
}

// sees reports whether the snapshot sees the changes of transaction tx
// (pg_visible_in_snapshot): committed before it was taken.
func (s pgSnapshot) sees(tx int64) bool {
	if tx < 0 {
		return false
	}
	x := uint64(tx)
	switch {
	case x < s.xmin:
		return true
	case x >= s.xmax:
		return false
	}
	return !s.xip[x]
}

// run is one baseline of a table, known by its marker entry.
type run struct {
	marker int64 // the marker's id; the run's snapshot entries have lower ones
	tx     int64 // the baseline's transaction
	snap   pgSnapshot
}

func newRun(e *Entry) (run, error) {
	snap, err := parseSnapshot(e.Baseline.Snapshot)
	if err != nil {
		return run{}, &ReplayError{EntryID: e.ID, Operation: e.Operation, TableName: e.TableName, ObjectID: e.ObjectID,
			Reason: "the baseline marker's " + err.Error()}
	}
	return run{marker: e.ID, tx: e.TxID, snap: snap}, nil
}

// unseen reports whether e is a change the run's snapshot entries do not
// account for: written by another transaction, one the snapshot does not
// see.
func (r *run) unseen(e *Entry) bool {
	return e.TxID != r.tx && !r.snap.sees(e.TxID)
}

// position is where an entry applies among the entries of its table:
// at its own id, or (moved) just after the marker with id at, among the
// entries moved there in id order.
type position struct {
	at    int64
	moved bool
	id    int64
}

func (p position) less(q position) bool {
	if p.at != q.at {
		return p.at < q.at
	}
	if p.moved != q.moved {
		return !p.moved
	}
	return p.id < q.id
}

// positionIn returns where e applies, given the baselines of its table in
// id order: after the last marker with a higher id whose snapshot does
// not see e, else at its id.
func positionIn(e *Entry, runs []run) position {
	for i := len(runs) - 1; i >= 0; i-- {
		r := &runs[i]
		if e.ID >= r.marker {
			break
		}
		if r.unseen(e) {
			return position{at: r.marker, moved: true, id: e.ID}
		}
	}
	return position{at: e.ID, id: e.ID}
}

// arrange returns entries in the order they apply: the order given,
// except that an entry that a later baseline marker of its table (further
// on in entries) does not see moves to just after the last such marker.
// last gives, by table, the index in the result of the table's last
// marker.
func arrange(entries []Entry) (seq []*Entry, last map[string]int, err error) {
	runs := map[int]*run{}
	markers := map[string][]int{} // by table, indexes of markers in entries
	for i := range entries {
		if entries[i].IsBaselineMarker() {
			r, err := newRun(&entries[i])
			if err != nil {
				return nil, nil, err
			}
			runs[i] = &r
			markers[entries[i].TableName] = append(markers[entries[i].TableName], i)
		}
	}
	seq = make([]*Entry, 0, len(entries))
	last = map[string]int{}
	if len(runs) == 0 {
		for i := range entries {
			seq = append(seq, &entries[i])
		}
		return seq, last, nil
	}
	moved := map[int][]*Entry{} // by marker index
	target := make([]int, len(entries))
	for i := range entries {
		target[i] = -1
		ms := markers[entries[i].TableName]
		for j := len(ms) - 1; j >= 0 && ms[j] > i; j-- {
			if runs[ms[j]].unseen(&entries[i]) {
				target[i] = ms[j]
				moved[ms[j]] = append(moved[ms[j]], &entries[i])
				break
			}
		}
	}
	for i := range entries {
		if target[i] >= 0 {
			continue
		}
		seq = append(seq, &entries[i])
		if runs[i] != nil {
			last[entries[i].TableName] = len(seq) - 1
			seq = append(seq, moved[i]...)
		}
	}
	return seq, last, nil
}

// loadRuns reads the baseline markers of table, in id order.
func loadRuns(ctx context.Context, db Querier, t tableName, table string) ([]run, error) {
	markers, err := readEntries(ctx, db, t, `SELECT `+entryColumns+` FROM `+t.Quoted()+
		` WHERE table_name = $1 AND object_id = '' AND operation = 'snapshot' ORDER BY id`, []any{table})
	if err != nil {
		return nil, err
	}
	var runs []run
	for i := range markers {
		if !markers[i].IsBaselineMarker() {
			continue
		}
		r, err := newRun(&markers[i])
		if err != nil {
			return nil, err
		}
		runs = append(runs, r)
	}
	return runs, nil
}
