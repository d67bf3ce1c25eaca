package auditpgx_test

import (
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx"
)

const m2mDDL = `
CREATE TABLE teams (id int PRIMARY KEY, name text);
CREATE TABLE users (id int PRIMARY KEY, name text);
CREATE TABLE team_members (team_id int REFERENCES teams, user_id int REFERENCES users, role text DEFAULT 'member',
	PRIMARY KEY (team_id, user_id));
INSERT INTO teams VALUES (1, 't1'), (2, 't2');
INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 600) g;`

var members = auditpgx.M2M{
	Field:   "members",
	Owner:   auditpgx.Ref{Table: "teams", Column: "team_id"},
	Related: auditpgx.Ref{Table: "users", Column: "user_id"},
}

func registerMembers(r *auditpgx.Registry) error { return r.RegisterM2M("team_members", members) }

// link is the comparable part of an associate/disassociate entry.
type link struct{ Op, Owner, Related string }

func (e *env) links() []link {
	e.t.Helper()
	rows, err := e.plain.QueryContext(e.ctx, `SELECT operation, table_name, object_id, related_table_name, related_object_id,
		related_field_name, changes IS NULL FROM auditpgx_entry WHERE related_field_name IS NOT NULL ORDER BY id`)
	require.NoError(e.t, err)
	defer rows.Close()
	var out []link
	for rows.Next() {
		var l link
		var table, relTable, field string
		var nullChanges bool
		require.NoError(e.t, rows.Scan(&l.Op, &table, &l.Owner, &relTable, &l.Related, &field, &nullChanges))
		require.Equal(e.t, "teams", table)
		require.Equal(e.t, "users", relTable)
		require.Equal(e.t, "members", field)
		require.True(e.t, nullChanges)
		out = append(out, l)
	}
	require.NoError(e.t, rows.Err())
	return out
}

func TestM2MAssociateDisassociate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, m2mDDL, registerMembers)
	exec := func(q string, args ...any) int64 {
		t.Helper()
		res, err := e.db.ExecContext(e.ctx, q, args...)
		require.NoError(t, err)
		n, _ := res.RowsAffected()
		return n
	}
	require.EqualValues(t, 2, exec(`INSERT INTO team_members (team_id, user_id) VALUES (1, 1), (1, 2)`))
	require.EqualValues(t, 1, exec(`INSERT INTO team_members (team_id, user_id) VALUES (1, 2), (1, 3) ON CONFLICT DO NOTHING`))
	require.EqualValues(t, 1, exec(`INSERT INTO team_members (team_id, user_id, role) VALUES (1, 3, 'admin'), (2, 3, 'x')
		ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role`)-1)
	require.EqualValues(t, 1, exec(`UPDATE team_members SET role = 'lead' WHERE user_id = 1`)) // extra column: nothing
	require.EqualValues(t, 1, exec(`UPDATE team_members SET user_id = 4 WHERE team_id = 1 AND user_id = 1`))
	require.EqualValues(t, 1, exec(`DELETE FROM team_members WHERE team_id = $1 AND user_id = $2`, 1, 2))
	require.EqualValues(t, 0, exec(`DELETE FROM team_members WHERE team_id = 1 AND user_id = 99`)) // no link: nothing
	require.EqualValues(t, 2, exec(`DELETE FROM team_members m USING users u WHERE m.user_id = u.id AND u.name IN ('u3')`))
	require.Equal(t, []link{
		{"associate", "1", "1"}, {"associate", "1", "2"},
		{"associate", "1", "3"},
		{"associate", "2", "3"},
		{"disassociate", "1", "1"}, {"associate", "1", "4"},
		{"disassociate", "1", "2"},
		{"disassociate", "1", "3"}, {"disassociate", "2", "3"},
	}, e.links())
}

func TestM2MBulkAndByOwner(t *testing.T) {
	t.Parallel()
	e := newEnv(t, m2mDDL, registerMembers)
	_, err := e.db.ExecContext(e.ctx, `INSERT INTO team_members (team_id, user_id) SELECT 2, g FROM generate_series(1, 500) g`)
	require.NoError(t, err)
	res, err := e.db.ExecContext(e.ctx, `DELETE FROM team_members WHERE team_id = 2`)
	require.NoError(t, err)
	n, _ := res.RowsAffected()
	require.EqualValues(t, 500, n)
	links := e.links()
	require.Len(t, links, 1000)
	for i, l := range links {
		op := "associate"
		if i >= 500 {
			op = "disassociate"
		}
		require.Equal(t, op, l.Op)
		require.Equal(t, "2", l.Owner)
	}
}

func TestM2MAlsoAuditedTable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, m2mDDL, func(r *auditpgx.Registry) error {
		if err := r.RegisterM2M("team_members", members); err != nil {
			return err
		}
		return r.RegisterTable("team_members")
	})
	_, err := e.db.ExecContext(e.ctx, `INSERT INTO team_members (team_id, user_id) VALUES (1, 5)`)
	require.NoError(t, err)
	_, err = e.db.ExecContext(e.ctx, `UPDATE team_members SET role = 'lead'`)
	require.NoError(t, err)
	var ops []string
	rows, err := e.plain.Query(`SELECT operation || ':' || table_name || ':' || object_id FROM auditpgx_entry ORDER BY id`)
	require.NoError(t, err)
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		ops = append(ops, s)
	}
	require.Equal(t, []string{"create:team_members:[1,5]", "associate:teams:1", "update:team_members:[1,5]"}, ops)
}

func TestM2MRegistrationChecks(t *testing.T) {
	t.Parallel()
	reg, err := auditpgx.NewRegistry(auditpgx.RegistryConfig{})
	require.NoError(t, err)
	require.ErrorContains(t, reg.RegisterM2M("x", auditpgx.M2M{Owner: members.Owner, Related: members.Related}), "Field is empty")
	require.NoError(t, reg.RegisterM2M("team_members", members))
	require.ErrorContains(t, reg.RegisterM2M("team_members", members), "already registered")

	e := newEnv(t, m2mDDL, func(r *auditpgx.Registry) error {
		bad := members
		bad.Related.Column = "member_id"
		return r.RegisterM2M("team_members", bad)
	})
	_, err = e.db.ExecContext(e.ctx, `INSERT INTO team_members (team_id, user_id) VALUES (1, 5)`)
	require.ErrorIs(t, err, auditpgx.ErrInvalidRegistration)
	require.ErrorContains(t, err, `join table "team_members" has no column "member_id"`)
}

// TestM2MRollback: links written in a rolled-back transaction leave no
// entries, and the actor is recorded.
func TestM2MRollbackAndActor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, m2mDDL, registerMembers)
	ctx := auditpgx.WithActor(e.ctx, "alice")
	tx, err := e.db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `INSERT INTO team_members (team_id, user_id) VALUES (1, 7)`)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	_, err = e.db.ExecContext(ctx, `INSERT INTO team_members (team_id, user_id) VALUES (1, 8)`)
	require.NoError(t, err)
	var who sql.NullString
	var related string
	require.NoError(t, e.plain.QueryRow(`SELECT created_by, related_object_id FROM auditpgx_entry`).Scan(&who, &related))
	require.Equal(t, "alice", who.String)
	require.Equal(t, "8", related)
	require.Equal(t, 1, e.countEntries())
}

// TestCascadedDeletesAreRecorded: rows that ON DELETE CASCADE removes with
// a deleted row are recorded as well: links as disassociate entries,
// audited rows as delete entries.
func TestCascadedDeletesAreRecorded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, `CREATE TABLE groups (id int PRIMARY KEY);
		CREATE TABLE people (id int PRIMARY KEY);
		CREATE TABLE group_people (group_id int REFERENCES groups ON DELETE CASCADE,
			person_id int REFERENCES people ON DELETE CASCADE, PRIMARY KEY (group_id, person_id));
		CREATE TABLE notes (id int PRIMARY KEY, person_id int REFERENCES people ON DELETE CASCADE, body text);
		INSERT INTO groups VALUES (1), (2); INSERT INTO people VALUES (10), (11);
		INSERT INTO group_people VALUES (1, 10), (2, 10), (1, 11);
		INSERT INTO notes VALUES (100, 10, 'hi');`,
		func(r *auditpgx.Registry) error {
			if err := r.RegisterM2M("group_people", auditpgx.M2M{Field: "people",
				Owner: auditpgx.Ref{Table: "groups", Column: "group_id"}, Related: auditpgx.Ref{Table: "people", Column: "person_id"}}); err != nil {
				return err
			}
			return r.RegisterTable("notes")
		})
	_, err := e.db.ExecContext(e.ctx, `DELETE FROM people WHERE id = $1`, 10)
	require.NoError(t, err)
	rows, err := e.plain.Query(`SELECT operation || ':' || table_name || ':' || object_id || ':' || coalesce(related_object_id, '-') FROM auditpgx_entry ORDER BY id`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		got = append(got, s)
	}
	require.ElementsMatch(t, []string{"disassociate:groups:1:10", "disassociate:groups:2:10", "delete:notes:100:-"}, got)
	var links int
	require.NoError(t, e.plain.QueryRow(`SELECT count(*) FROM group_people`).Scan(&links))
	require.Equal(t, 1, links)
}
