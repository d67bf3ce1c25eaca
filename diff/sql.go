package diff

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/auditpgx/auditpgx/internal/sqlq"
)

// The builders below return SQL expression text of type jsonb. Arguments named
// *Img are jsonb expressions holding a raw (unmasked) row image with at least
// every column of cols.Names as a key, such as a column filled by [ImageSQL];
// a key missing from an image reads as JSON null, where [Update] would record
// the column as added or removed.
//
// An image expression is repeated once or more per column and PostgreSQL does
// not share the work, so it must be a cheap reference to an image computed
// once: a column of a MATERIALIZED CTE or of a data-modifying CTE's RETURNING.
// A plain subquery or CTE is inlined, and ImageSQL's call is then evaluated
// again for every reference (about five times slower at eleven columns, and
// quadratic in the column count).
//
// Names and constants are quoted with sqlq; nothing takes parameters, so the
// text can be spliced into any statement.

// argsPerCall is how many columns one jsonb_build_object call takes: the
// function accepts at most 100 arguments, two per column.
const argsPerCall = 50

const emptyObjectSQL = `'{}'::jsonb`

// ImageSQL returns the jsonb image of the row rowRef (an alias or table
// reference, already quoted) over cols.Names:
//
//	jsonb_build_object('id', "u"."id", 'name', "u"."name")
//
// Values render as to_jsonb renders them and SQL NULL becomes JSON null.
// Beyond 50 columns the calls are chunked and concatenated with ||. With no
// columns it is '{}'::jsonb. Redaction does not apply here: the image is raw.
func ImageSQL(rowRef string, cols Columns) string {
	return buildObject(cols.Names, func(name string) string {
		return rowRef + "." + sqlq.Ident(name)
	})
}

// CreateSQL returns the changes object of an insert whose new row image is
// newImg: every column of cols.Names under added_fields, redacted ones as
// "$encrypted$", and no other key of newImg.
func CreateSQL(newImg string, cols Columns) string {
	return changesObject(maskedSQL(newImg, cols), emptyObjectSQL, emptyObjectSQL)
}

// DeleteSQL returns the changes object of a delete whose old row image is
// oldImg: every column of cols.Names under removed_fields, redacted ones as
// "$encrypted$", and no other key of oldImg.
func DeleteSQL(oldImg string, cols Columns) string {
	return changesObject(emptyObjectSQL, maskedSQL(oldImg, cols), emptyObjectSQL)
}

// ChangedSQL returns the changed_fields object of an update from oldImg to
// newImg, '{}'::jsonb when no column of cols.Names differs. Each column is one
// scalar expression, without subqueries or set-returning functions:
//
//	CASE WHEN (o)->'c' IS DISTINCT FROM (n)->'c' THEN jsonb_build_object('c', jsonb_build_array((o)->'c', (n)->'c')) ELSE '{}'::jsonb END
//
// and for a redacted column the pair is the constant
// '{"c": ["$encrypted$", "$encrypted$"]}'::jsonb. The per-column objects are
// concatenated with || as a balanced tree, so neither the parse depth nor the
// copying grows linearly with the column count.
//
// IS DISTINCT FROM on jsonb is jsonb equality, which [Equal] mirrors. A key
// holding JSON null yields jsonb 'null', not SQL NULL, so a NULL column
// records as null inside the pair.
func ChangedSQL(oldImg, newImg string, cols Columns) string {
	parts := make([]string, 0, len(cols.Names))
	for _, name := range cols.Names {
		o, n := fieldSQL(oldImg, name), fieldSQL(newImg, name)
		var then string
		if cols.Redacted[name] {
			then = jsonConstSQL(map[string][2]string{name: {Encrypted, Encrypted}})
		} else {
			then = "jsonb_build_object(" + sqlq.Literal(name) + ", jsonb_build_array(" + o + ", " + n + "))"
		}
		parts = append(parts, "CASE WHEN "+o+" IS DISTINCT FROM "+n+" THEN "+then+" ELSE "+emptyObjectSQL+" END")
	}
	return concatSQL(parts)
}

// UpdateSQL wraps a changed_fields expression, such as one from [ChangedSQL],
// into the full changes object of an update.
func UpdateSQL(changedExpr string) string {
	return changesObject(emptyObjectSQL, emptyObjectSQL, "("+changedExpr+")")
}

// ReplacedSQL returns the changes object of an update whose old values are
// unknown: empty diffs and every column of cols.Names, masked, under
// replaced_fields (see [Changes.ReplacedFields]).
func ReplacedSQL(newImg string, cols Columns) string {
	return "(" + changesObject(emptyObjectSQL, emptyObjectSQL, emptyObjectSQL) +
		" || jsonb_build_object('replaced_fields', " + maskedSQL(newImg, cols) + "))"
}

func changesObject(added, removed, changed string) string {
	return "jsonb_build_object('added_fields', " + added +
		", 'removed_fields', " + removed +
		", 'changed_fields', " + changed + ")"
}

// maskedSQL selects the columns of cols.Names from img, with redacted ones
// replaced by "$encrypted$".
func maskedSQL(img string, cols Columns) string {
	return buildObject(cols.Names, func(name string) string {
		if cols.Redacted[name] {
			return sqlq.Literal(Encrypted) + "::text"
		}
		return fieldSQL(img, name)
	})
}

// fieldSQL is the jsonb value of key name in img; jsonb 'null' for a JSON
// null, SQL NULL only when the key is missing.
func fieldSQL(img, name string) string {
	return "(" + img + ")->" + sqlq.Literal(name)
}

// buildObject returns jsonb_build_object calls pairing each name with
// value(name), at most argsPerCall columns per call.
func buildObject(names []string, value func(string) string) string {
	var calls []string
	for chunk := range slices.Chunk(names, argsPerCall) {
		var b strings.Builder
		b.WriteString("jsonb_build_object(")
		for i, name := range chunk {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(sqlq.Literal(name))
			b.WriteString(", ")
			b.WriteString(value(name))
		}
		b.WriteString(")")
		calls = append(calls, b.String())
	}
	return concatSQL(calls)
}

// concatSQL joins jsonb expressions with || as a balanced tree.
func concatSQL(parts []string) string {
	switch len(parts) {
	case 0:
		return emptyObjectSQL
	case 1:
		return parts[0]
	}
	mid := len(parts) / 2
	return "(" + concatSQL(parts[:mid]) + " || " + concatSQL(parts[mid:]) + ")"
}

// jsonConstSQL renders v as a jsonb constant.
func jsonConstSQL(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("diff: encoding constant: " + err.Error()) // maps of strings always encode
	}
	return sqlq.Literal(strings.TrimSuffix(buf.String(), "\n")) + "::jsonb"
}
