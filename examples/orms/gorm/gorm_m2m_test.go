package main

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/auditpgx/auditpgx"
	"github.com/auditpgx/auditpgx/examples/orms/internal/suite"
)

// Team has many users through the join table team_members, which GORM
// creates and fills.
type Team struct {
	ID      uint `gorm:"primaryKey"`
	Name    string
	Members []User `gorm:"many2many:team_members;"`
}

var teamMembers = auditpgx.M2M{
	Field:   "members",
	Owner:   auditpgx.Ref{Table: "teams", Column: "team_id"},
	Related: auditpgx.Ref{Table: "users", Column: "user_id"},
}

func registerTeams(r *auditpgx.Registry) error {
	return errors.Join(registerTables(r), r.RegisterTable("teams"), r.RegisterM2M("team_members", teamMembers))
}

func TestMany2Many(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, gorm.Config{}, registerTeams, &User{}, &Product{}, &Team{})
	type out struct {
		Team    Team
		Results []result
		Errs    []string
	}
	want, got := both(e, "alice", func(db *gorm.DB) (o out) {
		// The team, two new users and two join rows.
		o.Team = Team{Name: "core", Members: []User{
			{Name: "a", Email: "a@example.com"},
			{Name: "b", Email: "b@example.com"},
		}}
		o.Results = append(o.Results, resultOf(db.Create(&o.Team)))
		a, b := o.Team.Members[0], o.Team.Members[1]
		c := User{Name: "c", Email: "c@example.com"}
		o.Results = append(o.Results, resultOf(db.Create(&c)))
		members := func() *gorm.Association { return db.Model(&o.Team).Association("Members") }
		o.Errs = append(o.Errs, errText(members().Append(&c)))
		o.Errs = append(o.Errs, errText(members().Delete(&a)))
		o.Errs = append(o.Errs, errText(members().Replace([]*User{&c})))
		var loaded Team
		o.Results = append(o.Results, resultOf(db.Preload("Members").First(&loaded, o.Team.ID)))
		require.Len(t, loaded.Members, 1)
		o.Errs = append(o.Errs, errText(members().Clear()))
		o.Errs = append(o.Errs, errText(members().Append(&b)))
		// Deleting the team with its associations deletes its join rows.
		o.Results = append(o.Results, resultOf(db.Select("Members").Delete(&o.Team)))
		return o
	})
	require.Equal(t, want, got)
	require.Equal(t, []string{"", "", "", "", ""}, got.Errs)
	e.RequireSameTables()
	team := `{"id": 1, "name": "core"}`
	e.RequireEntries(suite.By("alice",
		suite.Create("teams", "1", team),
		suite.Create("users", "1", userJSON(1, "a", "a@example.com", 0, "null")),
		suite.Create("users", "2", userJSON(2, "b", "b@example.com", 0, "null")),
		suite.Associate("teams", "1", "members", "users", "1"),
		suite.Associate("teams", "1", "members", "users", "2"),
		suite.Create("users", "3", userJSON(3, "c", "c@example.com", 0, "null")),
		suite.Associate("teams", "1", "members", "users", "3"),
		suite.Disassociate("teams", "1", "members", "users", "1"),
		// Replace keeps 3 and drops the rest.
		suite.Disassociate("teams", "1", "members", "users", "2"),
		// Clear.
		suite.Disassociate("teams", "1", "members", "users", "3"),
		suite.Associate("teams", "1", "members", "users", "2"),
		// Select("Members").Delete: the join rows, then the team.
		suite.Disassociate("teams", "1", "members", "users", "2"),
		suite.Delete("teams", "1", team),
	)...)
	e.RequireReplay()
}
