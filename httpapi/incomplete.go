package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/auditpgx/auditpgx/diff"
	"github.com/auditpgx/auditpgx/store"
)

// incompleteBody is the 409 answer of GET /objects/{table}/{id} for an
// object whose entries do not account for its state at as_of (see
// store.IncompleteError): typically a row that existed before auditing
// began, asked about before its table was baselined. known_fields holds
// the columns whose values are known, those set since the gap; the others
// are unknown, not null.
//
//	{"detail": "…", "table_name": "users", "object_id": "7", "as_of": "…",
//	 "gap": {"entry_id": 12, "operation": "update", "table_name": "users", "object_id": "7",
//	         "reason": "the object does not exist"},
//	 "known_fields": {"name": "Bob"}}
type incompleteBody struct {
	Detail      string     `json:"detail"`
	TableName   string     `json:"table_name"`
	ObjectID    string     `json:"object_id"`
	AsOf        time.Time  `json:"as_of"`
	Gap         gap        `json:"gap"`
	KnownFields diff.Image `json:"known_fields"`
}

type gap struct {
	EntryID   int64           `json:"entry_id"`
	Operation store.Operation `json:"operation"`
	TableName string          `json:"table_name"`
	ObjectID  string          `json:"object_id"`
	Reason    string          `json:"reason"`
}

// incomplete answers 409 Conflict, with a body that explains, for an
// error saying that the entries do not account for an object's state
// (store.ErrIncomplete, store.ErrInconsistent), and reports whether it
// did. It is logged at debug level, as client errors are: the server did
// not fail, the history has a gap.
func (h *Handler) incomplete(w http.ResponseWriter, r *http.Request, err error) bool {
	var ie *store.IncompleteError
	switch {
	case errors.As(err, &ie):
		h.logger.DebugContext(r.Context(), "auditpgx: httpapi: incomplete history", "method", r.Method, "path", r.URL.Path, "error", err)
		known := ie.Known
		if known == nil {
			known = diff.Image{}
		}
		writeJSON(w, http.StatusConflict, incompleteBody{
			Detail: "the entries do not account for the whole state of " + ie.TableName + " " + ie.ObjectID +
				" at as_of: " + ie.Gap.Reason + " (entry " + strconv.FormatInt(ie.Gap.EntryID, 10) + "); only known_fields, set since, are known. " +
				"Rows that existed before auditing began are known from a baseline of their table (auditpgx baseline).",
			TableName: ie.TableName, ObjectID: ie.ObjectID, AsOf: ie.At,
			Gap: gap{EntryID: ie.Gap.EntryID, Operation: ie.Gap.Operation, TableName: ie.Gap.TableName,
				ObjectID: ie.Gap.ObjectID, Reason: ie.Gap.Reason},
			KnownFields: known,
		})
		return true
	case errors.Is(err, store.ErrIncomplete), errors.Is(err, store.ErrInconsistent):
		h.clientError(w, r, http.StatusConflict, err.Error())
		return true
	}
	return false
}
