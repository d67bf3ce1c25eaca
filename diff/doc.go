// Package diff computes the changes recorded for an audited write, in Go
// and, identically, inside PostgreSQL.
//
// An activity-stream entry stores its changes as one JSON object that always
// has three keys:
//
//	{"added_fields": {...}, "removed_fields": {...}, "changed_fields": {"col": [old, new]}}
//
// A create lists every audited column under added_fields, a delete lists them
// under removed_fields, and an update lists under changed_fields only the
// columns whose values differ. Values are JSON as PostgreSQL's to_jsonb renders
// them, and "differ" means jsonb inequality: 1.0 equals 1.00, object keys are
// unordered. A redacted column is listed like any other but its value is always
// the string "$encrypted$"; an excluded column is never listed.
//
// [Create], [Delete] and [Update] apply these rules to row images held in Go.
// The driver computes the same objects with SQL expressions inside the
// statement that performs the write, so the entry is written without a
// second round trip; the Go functions are the reference, and the package's
// tests require both sides to agree on randomly generated rows of every
// common column type.
package diff
