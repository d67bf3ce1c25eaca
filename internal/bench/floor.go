package bench

import (
	"fmt"
	"strconv"
	"strings"
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
//
// An UPDATE's floor records every assigned audited column, changed or not.
// Both report as many rows affected as the write: one entry per row.
const (
	Floor         = "floor"
	FloorPreImage = "floor+pre-image"
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
// version (server_version_num); preImage reads the old values FOR UPDATE
// first, as FloorPreImage does.
func floorSQL(q string, version int, preImage bool) (string, error) {
	f, ok := floorStatements[q]
	if !ok {
		return "", fmt.Errorf("bench: no floor statement for %q", q)
	}
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
	var write, changes string
	switch f.op {
	case "create":
		write = f.write + ` RETURNING ` + audited
		changes = `jsonb_build_object('added_fields', ` + image("w.") + `, 'removed_fields', '{}'::jsonb, 'changed_fields', '{}'::jsonb)`
	case "delete":
		write = f.write + ` RETURNING ` + audited
		changes = `jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', ` + image("w.") + `, 'changed_fields', '{}'::jsonb)`
	case "update":
		ret := []string{"account.id"}
		var diff []string
		for i, c := range f.assigned {
			ret = append(ret, "account."+c)
			old := "o" + strconv.Itoa(i)
			switch {
			case preImage:
				ret = append(ret, fmt.Sprintf("p.%s", old))
			case version >= 180000:
				ret = append(ret, fmt.Sprintf("old.%s AS %s", c, old))
			default:
				ret = append(ret, fmt.Sprintf("NULL::text AS %s", old))
			}
			pair := fmt.Sprintf("jsonb_build_array(w.%s, w.%s)", old, c)
			if c == redactedColumn {
				pair = `jsonb_build_array('$encrypted$'::text, '$encrypted$'::text)`
			}
			diff = append(diff, fmt.Sprintf("'%s', %s", c, pair))
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
		changes = `jsonb_build_object('added_fields', '{}'::jsonb, 'removed_fields', '{}'::jsonb, 'changed_fields', jsonb_build_object(` +
			strings.Join(diff, ", ") + `))`
	}
	if !strings.HasPrefix(write, "p AS") {
		write = `w AS (` + write + `)`
	}
	out := `WITH ` + write + `
INSERT INTO auditpgx_entry (created_by, operation, table_name, object_id, changes, tx_id, statement_fingerprint)
SELECT $` + strconv.Itoa(f.params+1) + `::text, '` + f.op + `', 'account', w.id::text, ` + changes + `,
  pg_current_xact_id()::text::bigint, '` + floorFingerprint + `' FROM w`
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
