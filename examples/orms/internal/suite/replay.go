package suite

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/internal/sqlq"
	"github.com/auditpgx/auditpgx/store"
)

// RequireReplay fails the test unless replaying every entry in id order,
// starting from empty tables, gives the current contents of every table in
// the registry:
//
//   - a table registered with RegisterTable must equal [store.Replay] of
//     the entries, compared with [store.EqualStates]: the same objects
//     with the same audited values, excluded columns left out and
//     redacted ones as "$encrypted$";
//   - a join table registered with RegisterM2M must hold exactly the links
//     that its associate entries add and its disassociate entries remove.
//
// It holds only when the tables were empty when the test began and every
// write to them went through auditpgx.
func (e *Env) RequireReplay() {
	e.t.Helper()
	require.NoError(e.t, auditpgx.Check(e.Ctx, e.Audited, auditpgx.WithRegistry(e.Registry)),
		"resolving the registered tables")
	tables := e.Registry.Tables()
	entries := e.Entries()

	keys := map[string][]string{}
	for _, t := range tables {
		require.True(e.t, t.Checked, "table %q is not resolved", t.Name)
		keys[t.Name] = t.PrimaryKey
	}
	state, err := store.Replay(entries, keys)
	require.NoError(e.t, err, "replaying the entries")
	for _, t := range tables {
		if t.Audited {
			e.requireTableReplay(t, state[t.Name])
		}
		if t.Link != nil {
			e.requireLinkReplay(t, *t.Link, entries)
		}
	}
}

func (e *Env) requireTableReplay(t auditpgx.RegisteredTable, replayed map[string]diff.Image) {
	e.t.Helper()
	table := t.Name
	current, err := store.Snapshot(e.Ctx, e.admin, table, t.PrimaryKey, t.Columns)
	require.NoError(e.t, err)
	if replayed == nil {
		replayed = map[string]diff.Image{}
	}
	if err := store.EqualStates(current, replayed); err != nil {
		require.Equal(e.t, e.render(current), e.render(replayed),
			"table %q (-) and its replay from the entries (+): %v", table, err)
		require.NoError(e.t, err, "table %q (a) and its replay from the entries (b)", table)
	}
}

// render turns images into comparable text, for a readable failure.
func (e *Env) render(objects map[string]diff.Image) map[string]string {
	out := map[string]string{}
	for id, img := range objects {
		b, err := json.Marshal(img)
		require.NoError(e.t, err)
		out[id] = canonical(e.t, string(b), nil)
	}
	return out
}

// requireLinkReplay checks a join table against its associate and
// disassociate entries.
func (e *Env) requireLinkReplay(t auditpgx.RegisteredTable, m auditpgx.M2M, entries []store.Entry) {
	e.t.Helper()
	links := map[string]bool{}
	for _, en := range entries {
		if en.TableName != m.Owner.Table || deref(en.RelatedTableName) != m.Related.Table || deref(en.RelatedFieldName) != m.Field {
			continue
		}
		link := en.ObjectID + " " + deref(en.RelatedObjectID)
		switch en.Operation {
		case store.OpAssociate:
			require.False(e.t, links[link], "entry %d associates %s, which is already associated", en.ID, link)
			links[link] = true
		case store.OpDisassociate:
			require.True(e.t, links[link], "entry %d disassociates %s, which is not associated", en.ID, link)
			delete(links, link)
		}
	}
	replayed := []string{}
	for l := range links {
		replayed = append(replayed, l)
	}
	slices.Sort(replayed)

	q := fmt.Sprintf(`SELECT to_jsonb(%s) #>> '{}', to_jsonb(%s) #>> '{}' FROM %s`,
		sqlq.Ident(m.Owner.Column), sqlq.Ident(m.Related.Column), t.Table)
	rows, err := e.admin.QueryContext(e.Ctx, q)
	require.NoError(e.t, err)
	defer rows.Close()
	current := []string{}
	for rows.Next() {
		var owner, related string
		require.NoError(e.t, rows.Scan(&owner, &related))
		current = append(current, owner+" "+related)
	}
	require.NoError(e.t, rows.Err())
	slices.Sort(current)
	require.Equal(e.t, current, replayed, "links in %s (-) and their replay from the entries (+)", t.Name)
}
