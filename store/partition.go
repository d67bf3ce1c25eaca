package store

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"time"

	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// PartitionPeriod is the span of time each partition of a partitioned
// entry table covers (see [Partitioned]). Periods begin at midnight UTC:
// a month on its first day, a week on Monday (ISO 8601 weeks), a day at
// 00:00.
type PartitionPeriod int

const (
	// Monthly partitions hold a calendar month each; the zero value.
	Monthly PartitionPeriod = iota
	// Weekly partitions hold an ISO week each, Monday to Sunday.
	Weekly
	// Daily partitions hold a day each.
	Daily
)

var periodNames = [...]string{Monthly: "monthly", Weekly: "weekly", Daily: "daily"}

// String returns "monthly", "weekly" or "daily", the names that
// [ParsePartitionPeriod] reads.
func (p PartitionPeriod) String() string {
	if p.valid() {
		return periodNames[p]
	}
	return fmt.Sprintf("PartitionPeriod(%d)", int(p))
}

func (p PartitionPeriod) valid() bool { return p >= 0 && int(p) < len(periodNames) }

// ParsePartitionPeriod reads "monthly", "weekly" or "daily".
func ParsePartitionPeriod(s string) (PartitionPeriod, error) {
	for p, name := range periodNames {
		if s == name {
			return PartitionPeriod(p), nil
		}
	}
	return 0, fmt.Errorf("auditpgx: partition period %q is not monthly, weekly or daily", s)
}

// start returns the beginning of the period that holds t.
func (p PartitionPeriod) start(t time.Time) time.Time {
	t = t.UTC()
	y, m, d := t.Date()
	switch p {
	case Weekly:
		// Monday is day 0 of an ISO week.
		back := (int(t.Weekday()) + 6) % 7
		return time.Date(y, m, d-back, 0, 0, 0, 0, time.UTC)
	case Daily:
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
}

// next returns the beginning of the period after the one beginning at
// start.
func (p PartitionPeriod) next(start time.Time) time.Time {
	switch p {
	case Weekly:
		return start.AddDate(0, 0, 7)
	case Daily:
		return start.AddDate(0, 0, 1)
	}
	return start.AddDate(0, 1, 0)
}

// suffix is the end of the name of the partition of the period beginning
// at start: _p2026_12 for a month, _p2026w49 for an ISO week, _p2026_12_06
// for a day. No suffix is longer than tableName.indexName allows for.
func (p PartitionPeriod) suffix(start time.Time) string {
	switch p {
	case Weekly:
		y, w := start.ISOWeek()
		return fmt.Sprintf("_p%04dw%02d", y, w)
	case Daily:
		return start.Format("_p2006_01_02")
	}
	return start.Format("_p2006_01")
}

// defaultPartitionSuffix ends the name of an entry table's DEFAULT
// partition, which holds the entries no other partition covers.
const defaultPartitionSuffix = "_default"

// Layout comments: Migrate records the period of a partitioned entry table
// in the table's comment, which Maintain reads.
const layoutCommentPrefix = "auditpgx:partition="

var layoutComment = regexp.MustCompile(`\bauditpgx:partition=(monthly|weekly|daily)\b`)

// periodFromComment returns the period recorded in an entry table's
// comment; ok is false when none is.
func periodFromComment(comment string) (p PartitionPeriod, ok bool) {
	m := layoutComment.FindStringSubmatch(comment)
	if m == nil {
		return 0, false
	}
	p, err := ParsePartitionPeriod(m[1])
	return p, err == nil
}

// Partitioned makes [Migrate] create the entry table partitioned by range
// on created, one partition per period, instead of as one table; the
// layout cannot be changed afterwards by Migrate. The table's primary key
// is then (id, created), as PostgreSQL requires of a partitioned table,
// and ids still come from one sequence, <table>_id_seq, in the order
// entries are written (an identity column on a partitioned table needs
// PostgreSQL 17). The indexes are created on the partitioned table, so
// that every partition has them. Migrate records the period in the
// table's comment (auditpgx:partition=monthly), where [Maintain] reads
// it, and creates the partitions of the current period and the next
// three, and a DEFAULT partition for entries no other covers: run
// Maintain, or auditpgx maintain, at least once a period to create the
// ones after.
//
// Given for a table that exists, Partitioned changes nothing but the
// recorded period when the table is partitioned (the partitions made
// before keep their ranges; Maintain makes those of the new period from
// the first that overlaps none). On a table that exists unpartitioned
// Migrate fails, naming docs/RETENTION.md, whose procedure converts it.
// An invalid period is an error.
func Partitioned(p PartitionPeriod) MigrateOption {
	return MigrateOption{func(c *migrateConfig) error {
		if !p.valid() {
			return fmt.Errorf("auditpgx: Partitioned: %v is not Monthly, Weekly or Daily", p)
		}
		c.partitioned, c.period = true, p
		return nil
	}}
}

// layout is an entry table as the catalog describes it.
type layout struct {
	exists      bool
	partitioned bool // a partitioned table
	byCreated   bool // partitioned by range on created alone
	period      PartitionPeriod
	periodKnown bool // the table's comment records period
}

// readLayout reads the layout of the entry table t.
func readLayout(ctx context.Context, db Querier, t tableName) (layout, error) {
	rows, err := db.QueryContext(ctx, `SELECT c.relkind = 'p',
		coalesce(p.partstrat = 'r' AND p.partnatts = 1 AND a.attname = 'created', false),
		coalesce(pg_catalog.obj_description(c.oid, 'pg_class'), '')
		FROM pg_catalog.pg_class c
		LEFT JOIN pg_catalog.pg_partitioned_table p ON p.partrelid = c.oid
		LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0]
		WHERE c.oid = pg_catalog.to_regclass($1)`, t.Quoted())
	if err != nil {
		return layout{}, err
	}
	defer rows.Close()
	var (
		l       layout
		comment string
	)
	if rows.Next() {
		if err := rows.Scan(&l.partitioned, &l.byCreated, &comment); err != nil {
			return layout{}, err
		}
		l.exists = true
		l.period, l.periodKnown = periodFromComment(comment)
	}
	return l, rows.Err()
}

// partition is one partition of a partitioned entry table.
type partition struct {
	name      tableName // schema-qualified, as in the catalog
	shown     string    // its name qualified as the entry table's is
	isDefault bool
	// from and to bound the range of created the partition holds, from
	// inclusive and to exclusive; zero is MINVALUE or MAXVALUE.
	from, to time.Time
}

// overlaps reports whether p holds any instant of [from, to).
func (p partition) overlaps(from, to time.Time) bool {
	return !p.isDefault && (p.from.IsZero() || p.from.Before(to)) && (p.to.IsZero() || from.Before(p.to))
}

// readPartitions returns the partitions of the partitioned entry table t.
// The bounds are read back from their text, as the server writes them in
// this session, by the server.
func readPartitions(ctx context.Context, db Querier, t tableName) ([]partition, error) {
	rows, err := db.QueryContext(ctx, `SELECT nspname, here, relname, bound, bound = 'DEFAULT',
		bound LIKE 'FOR VALUES FROM (MINVALUE)%', bound LIKE '% TO (MAXVALUE)', lo::timestamptz, hi::timestamptz
		FROM (SELECT n.nspname, c.relnamespace = p.relnamespace AS here, c.relname, b.bound,
				(pg_catalog.regexp_match(b.bound, '^FOR VALUES FROM \(''([^'']*)''\) TO'))[1] AS lo,
				(pg_catalog.regexp_match(b.bound, ' TO \(''([^'']*)''\)$'))[1] AS hi
			FROM pg_catalog.pg_inherits i
			JOIN pg_catalog.pg_class p ON p.oid = i.inhparent
			JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
			JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
			LATERAL pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS b(bound)
			WHERE i.inhparent = pg_catalog.to_regclass($1)) s
		ORDER BY relname`, t.Quoted())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var parts []partition
	for rows.Next() {
		var (
			p            partition
			bound        string
			min, max     bool
			lo, hi       sql.NullTime
			schema, name string
			here         bool
		)
		if err := rows.Scan(&schema, &here, &name, &bound, &p.isDefault, &min, &max, &lo, &hi); err != nil {
			return nil, err
		}
		p.name = tableName{sqlq.Name{Schema: schema, Rel: name}}
		p.shown = p.name.String()
		if here && t.Schema == "" {
			p.shown = name
		}
		if !p.isDefault && (lo.Valid == min || hi.Valid == max) {
			return nil, fmt.Errorf("partition %s has bounds that are not a range of created: %s", sqlq.Ident(name), bound)
		}
		p.from, p.to = lo.Time, hi.Time
		parts = append(parts, p)
	}
	return parts, rows.Err()
}
