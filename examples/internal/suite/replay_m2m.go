//go:build m2m

package suite

import (
	"fmt"
	"slices"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/store"
)

// RequireM2MReplay fails the test unless replaying the associate and
// disassociate entries of m, in id order from an empty join table, gives
// the current rows of the join table join.
func (e *Env) RequireM2MReplay(join string, m auditpgx.M2M) {
	e.t.Helper()
	pairs := map[string]bool{}
	for _, en := range e.Entries() {
		if en.TableName != m.Owner.Table || deref(en.RelatedTableName) != m.Related.Table || deref(en.RelatedFieldName) != m.Field {
			continue
		}
		pair := en.ObjectID + " " + deref(en.RelatedObjectID)
		switch en.Operation {
		case store.OpAssociate:
			require.False(e.t, pairs[pair], "entry %d associates %s again", en.ID, pair)
			pairs[pair] = true
		case store.OpDisassociate:
			require.True(e.t, pairs[pair], "entry %d disassociates %s, which is not associated", en.ID, pair)
			delete(pairs, pair)
		}
	}
	replayed := []string{}
	for p := range pairs {
		replayed = append(replayed, p)
	}
	slices.Sort(replayed)

	q := fmt.Sprintf(`SELECT to_jsonb(%s) #>> '{}', to_jsonb(%s) #>> '{}' FROM %s`,
		ident(m.Owner.Column), ident(m.Related.Column), ident(join))
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
	require.Equal(e.t, current, replayed, "rows of %s (-) and their replay from the entries (+)", join)
}
