package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// An object whose entries do not account for its state (here an update of
// a row from before auditing, and a baseline later) is a 409 that
// explains, with the fields known; after the baseline's snapshot, a 200.
func TestObjectIncomplete(t *testing.T) {
	f := seed(t)
	ctx := context.Background()
	_, err := f.db.ExecContext(ctx, `INSERT INTO auditpgx_entry (created, operation, table_name, object_id, changes, tx_id)
		VALUES ($1, 'update', 'users', '5', '{"changed_fields": {"name": ["Old", "New"]}}', 20),
		       ($2, 'snapshot', 'users', '5', '{"added_fields": {"id": 5, "name": "New", "age": 50}}', 21),
		       ($2, 'snapshot', 'users', '', '{"snapshot": "21:21:", "rows": 1}', 21)`,
		base.Add(100*time.Minute), base.Add(110*time.Minute))
	require.NoError(t, err)
	h := newHandler(t, f.db, allowAll)

	code, _, body := do(t, h, http.MethodGet, "/objects/users/5?as_of=2024-03-01T13:45:00Z")
	require.Equal(t, http.StatusConflict, code, "%v", body)
	require.Equal(t, "users", body["table_name"])
	require.Equal(t, "5", body["object_id"])
	require.Equal(t, "2024-03-01T13:45:00Z", body["as_of"])
	require.Equal(t, map[string]any{"name": "New"}, body["known_fields"])
	gap := body["gap"].(map[string]any)
	require.Equal(t, "update", gap["operation"])
	require.Equal(t, "the object does not exist", gap["reason"])
	require.Contains(t, body["detail"], "known_fields")
	require.Contains(t, body["detail"], "baseline")

	code, _, body = do(t, h, http.MethodGet, "/objects/users/5?as_of=2024-03-01T13:50:00Z")
	require.Equal(t, http.StatusOK, code, "%v", body)
	require.Equal(t, map[string]any{"id": 5.0, "name": "New", "age": 50.0}, body["fields"])

	// History lists the entries in the order they apply, marker included.
	code, _, body = do(t, h, http.MethodGet, "/objects/users/5/history")
	require.Equal(t, http.StatusOK, code)
	results := body["results"].([]any)
	require.Len(t, results, 3)
	marker := results[2].(map[string]any)
	require.Equal(t, "snapshot", marker["operation"])
	require.Nil(t, marker["changes"])
	require.Equal(t, map[string]any{"snapshot": "21:21:", "rows": 1.0}, marker["baseline"])
}
