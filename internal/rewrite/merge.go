package rewrite

import (
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"

	"github.com/auditpgx/auditpgx/internal/record"
	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// MERGE is audited from PostgreSQL 17, whose MERGE has RETURNING and
// merge_action(): every row it inserts, updates or deletes comes back with
// the action taken, and becomes a create, update or delete entry.
//
// On PostgreSQL 18 RETURNING old.* and new.* give both images of each row.
// On 17 RETURNING gives the row as the action left it (the deleted row for a
// DELETE), so the old images of updated rows come, as for an UPDATE, from
// pre: a locking read of the target rows an UPDATE action may reach, those
// with a source row for WHEN MATCHED, those without for WHEN NOT MATCHED BY
// SOURCE. A condition that reads pre (the gate) is added to every UPDATE
// action, so pre is read before the first row is updated. Updated rows are
// found in pre by primary key (and by tableoid, as inheritance children
// may repeat keys, except in a partitioned table, where an update may move
// a row to another partition), so an UPDATE action that assigns the key is
// audited from 18 only. A row pre did not hold (a concurrent change made it
// match) gets replaced_fields, as an upsert's does, never invented old
// values.

// colAction is the RETURNING item that carries merge_action().
const colAction = "__auditpgx_act"

// merge holds what a MERGE needs beyond the write.
type merge struct {
	pre *pg_query.SelectStmt // nil when no old image is read
}

func (rw *rewriter) prepareMerge(w *write, s *pg_query.MergeStmt) error {
	if w.t.Link != nil {
		return unsupported("MERGE into join table %q is not audited; use INSERT ... ON CONFLICT DO NOTHING and DELETE", w.t.Registered)
	}
	if rw.opt.ServerVersion < 170000 {
		return unsupported("MERGE is audited from PostgreSQL 17, whose MERGE has RETURNING; this server is older: use INSERT ... ON CONFLICT, UPDATE or DELETE")
	}
	w.merge = &merge{}
	if !w.t.Audited {
		return nil // only its deletes' cascades are recorded
	}
	key := map[string]bool{}
	for _, k := range w.t.PrimaryKey {
		key[k] = true
	}
	var matched, bySource bool
	for _, c := range s.MergeWhenClauses {
		wc := c.GetMergeWhenClause()
		if wc == nil || wc.CommandType != pg_query.CmdType_CMD_UPDATE {
			continue
		}
		if w.returningOld {
			continue
		}
		for _, item := range wc.TargetList {
			if rt := item.GetResTarget(); rt != nil && key[rt.Name] {
				return unsupported("a MERGE that updates primary key column %q of table %q is audited from PostgreSQL 18; update the key with UPDATE", rt.Name, w.t.Registered)
			}
		}
		switch wc.MatchKind {
		case pg_query.MergeMatchKind_MERGE_WHEN_NOT_MATCHED_BY_SOURCE:
			bySource = true
		default:
			matched = true
		}
		wc.Condition = and(marker(w.gateMarker(w.gates)), wc.Condition)
		w.gates++
	}
	if !matched && !bySource {
		return nil
	}
	pre := selectOf(markerTarget(markPre + w.suffix()))
	pre.FromClause = []*pg_query.Node{{Node: &pg_query.Node_RangeVar{RangeVar: proto.Clone(w.rel).(*pg_query.RangeVar)}}}
	pre.LockingClause = []*pg_query.Node{forUpdateOf(w.ref)}
	if matched != bySource {
		// EXISTS (SELECT FROM source WHERE join condition), or NOT EXISTS:
		// each target row once, however many source rows it matches.
		sub := selectOf()
		sub.FromClause = []*pg_query.Node{proto.Clone(s.SourceRelation).(*pg_query.Node)}
		sub.WhereClause = proto.Clone(s.JoinCondition).(*pg_query.Node)
		exists := &pg_query.Node{Node: &pg_query.Node_SubLink{SubLink: &pg_query.SubLink{
			SubLinkType: pg_query.SubLinkType_EXISTS_SUBLINK,
			Subselect:   &pg_query.Node{Node: &pg_query.Node_SelectStmt{SelectStmt: sub}},
		}}}
		if bySource {
			exists = pg_query.MakeBoolExprNode(pg_query.BoolExprType_NOT_EXPR, []*pg_query.Node{exists}, -1)
		}
		pre.WhereClause = exists
	}
	w.merge.pre = pre
	return nil
}

// gateMarker names the n-th gate of a write.
func (w *write) gateMarker(n int) string {
	return markGate + w.suffix() + strconv.Itoa(n) + "_"
}

// mergeGenerated is the SQL of a MERGE's entries.
func (w *write) mergeGenerated(keyList string) generated {
	g := generated{returning: "merge_action() AS " + colAction}
	if !w.t.Audited {
		return g
	}
	ref := sqlq.Ident(w.ref)
	cols := w.t.Audit
	g.returning += ", " + keyList
	var d string
	switch {
	case w.returningOld:
		g.returning += ", " + record.ImageSQL("new", cols) + " AS " + colNew + ", " + record.ImageSQL("old", cols) + " AS " + colOld
		d = "(SELECT " + w.keyList("") + ", " + colAction + ", " + colNew + ", " + colOld + ", CASE WHEN " + colAction +
			" = 'UPDATE' THEN " + record.ChangedSQL(colOld, colNew, cols) + " END AS " + colChanges + " FROM " + w.name() + " OFFSET 0) d"
	case w.merge.pre == nil:
		// No UPDATE action: the returned image is the inserted or the
		// deleted row.
		g.returning += ", " + record.ImageSQL(ref, cols) + " AS " + colNew
		d = "(SELECT " + w.keyList("") + ", " + colAction + ", " + colNew + ", " + colNew + " AS " + colOld +
			", NULL::jsonb AS " + colChanges + " FROM " + w.name() + " OFFSET 0) d"
	default:
		image := record.ImageSQL(ref, cols)
		g.returning += ", " + image + " AS " + colNew + ", " + ref + ".tableoid AS " + colTable
		g.pre = keyList + ", " + ref + ".tableoid AS " + colTable + ", " + image + " AS " + colOld
		g.gate = "(SELECT count(*) FROM " + w.pre() + ") >= 0"
		join := []string{"w." + colAction + " = 'UPDATE'"}
		for i := range w.t.PrimaryKey {
			k := colKey + strconv.Itoa(i+1)
			join = append(join, "w."+k+" = p."+k)
		}
		if !w.t.Partitioned() {
			join = append(join, "w."+colTable+" = p."+colTable)
		}
		d = "(SELECT " + w.keyList("w.") + ", w." + colAction + ", w." + colNew +
			", CASE WHEN w." + colAction + " = 'DELETE' THEN w." + colNew + " ELSE p." + colOld + " END AS " + colOld +
			", CASE WHEN p." + colOld + " IS NOT NULL THEN " + record.ChangedSQL("p."+colOld, "w."+colNew, cols) + " END AS " + colChanges +
			" FROM " + w.name() + " w LEFT JOIN " + w.pre() + " p ON " + strings.Join(join, " AND ") + " OFFSET 0) d"
	}
	act := "d." + colAction
	op := "CASE " + act + " WHEN 'INSERT' THEN 'create' WHEN 'DELETE' THEN 'delete' ELSE 'update' END"
	changes := "CASE " + act + " WHEN 'INSERT' THEN " + record.CreateSQL("d."+colNew, cols) +
		" WHEN 'DELETE' THEN " + record.DeleteSQL("d."+colOld, cols) +
		" ELSE CASE WHEN d." + colOld + " IS NULL THEN " + record.ReplacedSQL("d."+colNew, cols) +
		" ELSE " + record.UpdateSQL("d."+colChanges) + " END END"
	g.entries = w.entrySelect(op, changes) + " FROM " + d +
		" WHERE " + act + " <> 'UPDATE' OR d." + colOld + " IS NULL OR d." + colChanges + " <> '{}'::jsonb"
	return g
}
