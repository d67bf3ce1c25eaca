package parser

import pg_query "github.com/pganalyze/pg_query_go/v6"

// upsert holds what INSERT ... ON CONFLICT DO UPDATE needs beyond an insert.
type upsert struct{}

func (rw *rewriter) prepareUpsert(w *write, s *pg_query.InsertStmt) (*upsert, error) {
	return nil, unsupported("INSERT ... ON CONFLICT DO UPDATE is not audited yet")
}

func (u *upsert) preCTE(w *write) *pg_query.Node { return nil }

func (u *upsert) generated(w *write, keyList, image string) generated { return generated{} }
