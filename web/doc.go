// Package web serves the activity stream as read-only web pages, for the
// people who would rather look than query: support staff, auditors, the
// engineer asking who changed a row. It is a plain net/http handler, served
// by "auditpgx serve" under /web/ and mountable in an application beside
// the HTTP API, with the same required authorization:
//
//	h, err := web.New(db, web.Config{
//		Authorize: func(r *http.Request, table string) bool { return isAuditor(r) },
//	})
//	if err != nil {
//		return err
//	}
//	http.Handle("/audit/", http.StripPrefix("/audit", h))
//
// Links are written relative to wherever the handler is mounted.
//
// # Pages
//
//   - / — the stream, newest first, 100 entries a page: time (in
//     Config.Location; UTC on hover), actor, operation, table, object and a
//     one-line summary of what changed. Entries of one transaction that are
//     next to each other are grouped under a link to the transaction.
//     Filters, set by a form and kept in the address so a view can be
//     shared: table, actor, operation, since and until (a datetime-local
//     value in Config.Location, or RFC 3339), changed (a field listed under
//     changed_fields), tx (a transaction id), request (the entry context's
//     request_id) and fingerprint (the statement fingerprint). Paging is by
//     entry id (before=ID for older entries, after=ID for newer), so a page
//     never shifts as entries are written.
//   - /entries/{id} — one entry: its facts, and its changes as a field, old,
//     new table (added fields on the new side, removed ones on the old,
//     changed ones on both; JSON pretty-printed; a redacted value shown as
//     "redacted", never as data), with links to the object's history, the
//     transaction and the entries of the same statement fingerprint.
//   - /objects/{table}/{id}?as_of=T — the object's history (its associations
//     included, followed across key changes as store.History does) and its
//     state as of T (store.AsOf; default: its last entry), with links
//     stepping to the times of the previous and next entries.
//   - /transactions/{tx} — every entry of one transaction, in order.
//   - /live?after=ID&<filters> — with Config.Live only: the rows of newer
//     entries, which the stream page's "Live" switch (off until turned on)
//     polls for.
//
// # Security
//
// Config.Authorize is asked for every table a page would show. A table the
// request may not read appears nowhere: not in listings, counts, the table
// filter's choices or an association's related side; its entries and
// objects are answered 404 as missing ones are. A request authorized for
// table "" may read every table.
//
// Every value is escaped by html/template. Pages carry a strict
// Content-Security-Policy (the page's own script and style sheet only; no
// inline script, no framing: frame-ancestors 'none'), X-Content-Type-Options
// nosniff, X-Frame-Options DENY, Referrer-Policy no-referrer and
// Cache-Control no-store. Only GET and HEAD are served. The one script,
// embedded with the style sheet, is optional: every page works without it.
//
// # Speed
//
// A stream page is one query for the tables in the entry table (a loose
// index scan, one index probe per table) and one for the page, served by the
// entry table's indexes; see docs/PERFORMANCE.md for the figures on
// 1,000,000 entries.
package web
