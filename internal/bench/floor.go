package bench

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/record"
)

// The floor variants run, through plain pgx, the least a one-statement
// design can send for each of the workloads' writes: the write in a
// writing CTE and, per row written, one entry of the shape auditpgx
// writes (the same columns; changes holding the same fields, the redacted
// one masked) inserted from the CTE into the same entry table with the
// same indexes. They leave out what auditpgx adds to that: the image and
// diff expressions' structure, count(*) for RowsAffected, the object id's
// rendering, the CTE chain, and, for an UPDATE on PostgreSQL before 18,
// the pre-image:
//
//   - Floor reads no pre-image before 18: an UPDATE's entry records NULL
//     as every assigned column's old value (on 18 and later, RETURNING
//     old gives it, as auditpgx's rewrite there does).
//   - FloorPreImage reads it as auditpgx does before 18: a CTE that
//     selects the old values FOR UPDATE, which the UPDATE joins.
//   - FloorDiff is FloorPreImage (RETURNING old on 18) whose UPDATE also
//     compares each assigned column's old and new values, with auditpgx's
//     own diff expression (record.ChangedTypedValuesSQL), and writes an
//     entry only for a row where one differs: its entries are auditpgx's,
//     byte for byte. As not every row updated then has an entry, its
//     entries are inserted by a second writing CTE and an outer SELECT of
//     the updated rows reports how many there were, as auditpgx's does.
//     What it leaves out of auditpgx's statement is the rest of auditpgx's
//     own shape: the guard, and the entry's other columns.
//
// Floor and FloorPreImage record every assigned audited column of an
// UPDATE, changed or not; so FloorDiff / FloorPreImage is the cost of the
// comparisons, which entries need, and auditpgx / FloorDiff the cost of
// the rest. Every floor reports as many rows affected as the write.
const (
	Floor         = "floor"
	FloorPreImage = "floor+pre-image"
	FloorDiff     = "floor+diff"
)

// floorFingerprint stands for the statement fingerprint auditpgx records.
const floorFingerprint = "0000000000000000"

// floorStatement is one of the workloads' writes and its floor.
type floorStatement struct {
	op string // create, update, delete
	// write is the statement up to its RETURNING; for an UPDATE, set and
	// where are its SET list and WHERE condition instead, and assigned
	// the audited columns it assigns.
	write      string
	set, where string
	assigned   []string
	params     int  // the write's parameters; the actor is the next one
	returning  bool // the write returns the new row's id
}

// floorStatements maps each write of the workloads to its floor.
var floorStatements = map[string]floorStatement{
	insertSQL:                   {op: "create", write: insertSQL, params: 10},
	insertSQL + ` RETURNING id`: {op: "create", write: insertSQL, params: 10, returning: true},
	gormCreateSQL:               {op: "create", write: strings.TrimSuffix(gormCreateSQL, ` RETURNING "id"`), params: 10, returning: true},
	updateSQL: {op: "update", set: `name = $1, balance = $2, updated_at = $3`, where: `id = $4`,
		assigned: []string{"name", "balance"}, params: 4},
	gormSaveSQL: {op: "update",
		set:      `"name"=$1,"email"=$2,"balance"=$3,"active"=$4,"score"=$5,"tags"=$6,"meta"=$7,"created_at"=$8,"password_hash"=$9,"updated_at"=$10`,
		where:    `"id" = $11`,
		assigned: []string{"name", "email", "balance", "active", "score", "tags", "meta", "created_at", "password_hash"}, params: 11},
	bulkUpdateSQL: {op: "update", set: `score = coalesce(score, 0) + 1, updated_at = $1`, where: `id BETWEEN $2 AND $3`,
		assigned: []string{"score"}, params: 3},
	deleteSQL:     {op: "delete", write: deleteSQL, params: 1},
	bulkInsertSQL: {op: "create", write: bulkInsertSQL, params: 3},
}

// floorSQL returns the floor of the workload statement q for a server of
// version (server_version_num), for the floor variant named variant.
func floorSQL(q string, version int, variant string) (string, error) {
	f, ok := floorStatements[q]
	if !ok {
		return "", fmt.Errorf("bench: no floor statement for %q", q)
	}
	compare := variant == FloorDiff
	// Before 18 the old values come from a pre-image read FOR UPDATE.
	preImage := variant == FloorPreImage || compare && version < 180000
	image := func(prefix string) string {
		var b strings.Builder
		b.WriteString("jsonb_build_object(")
		for i, c := range auditedColumns() {
			if i > 0 {
				b.WriteString(", ")
			}
			v := prefix + c
			if c == redactedColumn {
				v = `'$encrypted$'::text`
			}
			fmt.Fprintf(&b, "'%s', %s", c, v)
		}
		return b.String() + ")"
	}
	// The write returns what the entries need: the audited columns, or
	// for an UPDATE the key and the assigned columns' new and old values.
	audited := strings.Join(auditedColumns(), ", ")
	var write, changes, only string
	switch f.op {
	case "create":
		write = f.write + ` RETURNING ` + audited
		changes = `jsonb_build_object('added_fields', ` + image("w.") + `, 'removed_fields', '{}'::jsonb, 'changed_fields', '{}'::jsonb)`
	case "delete":
		write = f.write + ` RETURNING ` + audited
		changes = `jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', ` + image("w.") + `, 'changed_fields', '{}'::jsonb)`
	case "update":
		ret := []string{"account.id"}
		var pairs, olds, news []string
		for i, c := range f.assigned {
			old := "o" + strconv.Itoa(i)
			switch {
			case preImage:
				olds = append(olds, "p."+old)
			case version >= 180000:
				olds = append(olds, "old."+c)
			default:
				olds = append(olds, "NULL::text")
			}
			news = append(news, "account."+c)
			if compare {
				continue
			}
			ret = append(ret, news[i], olds[i]+" AS "+old)
			pair := fmt.Sprintf("jsonb_build_array(w.%s, w.%s)", old, c)
			if c == redactedColumn {
				pair = `jsonb_build_array('$encrypted$'::text, '$encrypted$'::text)`
			}
			pairs = append(pairs, fmt.Sprintf("'%s', %s", c, pair))
		}
		changed := `jsonb_build_object(` + strings.Join(pairs, ", ") + `)`
		if compare {
			types := make([]uint32, len(f.assigned))
			for i, c := range f.assigned {
				types[i] = typeOIDOf(c)
			}
			ret = append(ret, record.ChangedTypedValuesSQL(olds, news, types,
				diff.Columns{Names: f.assigned, Redacted: map[string]bool{redactedColumn: true}})+" AS ch")
			changed = "w.ch"
		}
		if preImage {
			pre := []string{"id AS p_id"}
			for i, c := range f.assigned {
				pre = append(pre, fmt.Sprintf("%s AS o%d", c, i))
			}
			write = `p AS (SELECT ` + strings.Join(pre, ", ") + ` FROM account WHERE ` + f.where + ` FOR UPDATE), w AS (` +
				`UPDATE account SET ` + f.set + ` FROM p WHERE account.id = p.p_id RETURNING ` + strings.Join(ret, ", ") + `)`
		} else {
			write = `UPDATE account SET ` + f.set + ` WHERE ` + f.where + ` RETURNING ` + strings.Join(ret, ", ")
		}
		changes = `jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', '{}'::jsonb, 'changed_fields', ` + changed + `)`
		if compare {
			only = ` WHERE w.ch <> '{}'::jsonb`
		}
	}
	if !strings.HasPrefix(write, "p AS") {
		write = `w AS (` + write + `)`
	}
	insert := `INSERT INTO auditpgx_entry (created_by, operation, table_name, object_id, changes, tx_id, statement_fingerprint)
SELECT $` + strconv.Itoa(f.params+1) + `::text, '` + f.op + `', 'account', w.id::text, ` + changes + `,
  pg_current_xact_id()::text::bigint, '` + floorFingerprint + `' FROM w` + only
	out := `WITH ` + write + `
` + insert
	if only != "" {
		// Not every row updated has an entry: the rows affected are
		// counted by the outer SELECT.
		out = `WITH ` + write + `, e AS (` + insert + `)
SELECT FROM w`
	}
	if f.returning {
		out += ` RETURNING object_id::bigint AS id`
	}
	return out, nil
}

// sqlFor returns the statement v sends for the workload statement q, and
// its arguments: q and args, or on a floor variant q's floor with the
// actor after args.
func (v *Variant) sqlFor(q string, args []any) (string, []any) {
	if v.floor == nil {
		return q, args
	}
	f, ok := v.floor[q]
	if !ok {
		panic(fmt.Sprintf("bench: variant %s has no floor statement for %q", v.Name, q))
	}
	return f, append(args[:len(args):len(args)], v.floorActor)
}
