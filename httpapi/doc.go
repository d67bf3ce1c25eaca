// Package httpapi serves the activity stream read-only over HTTP, as a plain
// net/http handler:
//
//	h, err := httpapi.New(db, httpapi.Config{
//		Authorize: func(r *http.Request, table string) bool { return isAuditor(r) },
//	})
//	if err != nil {
//		return err
//	}
//	http.Handle("/audit/", http.StripPrefix("/audit", h))
//
// There is no default authorization: [New] refuses a Config without
// Authorize, so an audit log is never served open by accident.
//
// # Routes
//
// Only GET (and HEAD) are served; any other method gets 405 with an Allow
// header. Errors are JSON objects with a "detail" message, as in Django REST
// framework: 400 names the parameter at fault, 403 the table refused, 404
// what was not found. Server errors are logged at error level and answered
// with a generic message; client errors (4xx) are logged at debug level
// only.
//
// A query string is parsed completely or refused with 400, never used in
// part: a pair with an unescaped ";" (which url.ParseQuery drops), a bad
// percent-escape, or more than 1000 parameters. A parameter name or value,
// and the table and id of a path, must be UTF-8 without NUL bytes (text
// PostgreSQL can take); otherwise 400 names it.
//
// GET /entries lists entries, oldest first, as a page:
//
//	{"next": "/entries?cursor=djFhMTA&table=users", "results": [entry, ...]}
//
// next is a relative link to the following page (the same path and
// parameters with a cursor), or null on the last page. Parameters:
//
//	table              entries of this audited table (table_name)
//	object_id          entries of this object (its primary key as text)
//	related_table      association entries whose related table is this
//	related_object_id  association entries whose related object is this
//	actor              entries whose created_by is this
//	operation          create, update, delete, associate, disassociate, truncate, snapshot or suppressed;
//	                   repeat it or separate with commas for several
//	tx_id              entries of this transaction id
//	since, until       created >= since and created < until, RFC 3339
//	added=F            entries that list field F under added_fields
//	removed=F          ... under removed_fields
//	changed=F          ... under changed_fields
//	added.F=V          F was added with value V
//	removed.F=V        F was removed with value V
//	changed.F.from=V   F changed from V
//	changed.F.to=V     F changed to V
//	context.K=V        the entry context holds K with value V (jsonb containment:
//	                   {"K": V}); at most 100 of them
//	order              id (oldest first, the default) or -id (newest first)
//	limit              entries per page, 1 to 1000; default 100
//	cursor             the cursor of a next link
//
// A value V is JSON when it parses as JSON (7, true, null, "7", {"a": 1})
// and a string otherwise (Bob). Values compare as jsonb: 1.0 equals 1, "1"
// does not. JSON that jsonb cannot hold or that is out of bounds is a 400
// error: the escape \u0000, an unpaired surrogate escape (\ud800), a number
// with more than 1000 digits or an exponent beyond ±1000, nesting deeper
// than 100. An unknown parameter, or a single-valued one given twice, is a
// 400 error rather than being ignored.
//
// operation, added, removed and changed take at most 100 values each,
// repeated or (operation) comma-separated, duplicates included; duplicates
// are sent to the database once. A listing has at most 100 change filters
// (distinct fields of added, removed, changed and the dotted forms
// together). Beyond these bounds the answer is 400.
//
// An entry is store.Entry's JSON, close to django-ansible-base's activity
// stream serializer:
//
//	{
//	  "id": 12,
//	  "created": "2024-03-01T12:00:00Z",
//	  "created_by": "alice",
//	  "operation": "update",
//	  "table_name": "users",
//	  "object_id": "7",
//	  "changes": {"added_fields": {}, "removed_fields": {}, "changed_fields": {"name": ["Al", "Bob"]}},
//	  "related_table_name": null,
//	  "related_object_id": null,
//	  "related_field_name": null,
//	  "tx_id": 7431,
//	  "statement_fingerprint": "2c26b46b68ffc68f"
//	}
//
// changes is null for associate, disassociate and truncate entries, and
// for suppressed entries, which instead carry "rows": the number of rows
// their statement wrote without entries of their own.
//
// GET /entries/{id} returns one entry.
//
// GET /objects/{table}/{id}/history returns every entry of one object,
// oldest first, as {"results": [entry, ...]}: see store.History. Association
// entries filed under another table appear only when that table is
// authorized too.
//
// GET /objects/{table}/{id}?as_of=T returns the object's audited columns at
// T (RFC 3339; default now), rebuilt from its entries (see store.AsOf), or
// 404 when it did not exist then, or 409 when its entries do not account
// for its state (rows that existed before auditing began and were never
// baselined, writes the driver did not see): the body then has "detail",
// the first "gap" and the "known_fields" set since it (see
// store.ErrIncomplete):
//
//	{"table_name": "users", "object_id": "7", "as_of": "2024-03-01T12:30:00Z",
//	 "fields": {"id": 7, "name": "Bob", "password": "$encrypted$"}}
//
// An object id is written in the path percent-encoded: a composite key
// [7,"eu"] is /objects/stock/%5B7%2C%22eu%22%5D.
//
// # Authorization
//
// Config.Authorize(r, table) is asked before anything is read: with the
// table parameter's value for /entries ("" when it is absent, meaning every
// table), with the path's table for /objects, and with the entry's
// table_name for /entries/{id}. false answers 403, except for
// /entries/{id}, where it answers the same 404 as an id that does not
// exist: the answer tells nothing about an entry the request may not read.
package httpapi
