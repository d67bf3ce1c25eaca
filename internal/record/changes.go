package record

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/auditpgx/auditpgx/diff"
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
func ImageSQL(rowRef string, cols diff.Columns) string {
	return image(rowRef, cols.Names, nil)
}

// MaskedImageSQL is [ImageSQL] with the redacted columns of cols already
// replaced by "$encrypted$": the added_fields of an insert or the
// removed_fields of a delete, ready for [CreatedSQL] and [DeletedSQL]. A
// redacted value then never leaves the row it is read from.
func MaskedImageSQL(rowRef string, cols diff.Columns) string {
	return image(rowRef, cols.Names, cols.Redacted)
}

// image is jsonb_build_object over names of the row rowRef, with the
// columns in redacted as "$encrypted$".
func image(rowRef string, names []string, redacted map[string]bool) string {
	var b strings.Builder
	b.Grow(imageSize(rowRef, names))
	writeObject(&b, names, func(b *strings.Builder, name string) {
		if redacted[name] {
			b.WriteString(encryptedTextSQL)
			return
		}
		b.WriteString(rowRef)
		b.WriteByte('.')
		b.WriteString(sqlq.Ident(name))
	})
	return b.String()
}

// CreatedSQL returns the changes object of an insert whose added_fields
// are the masked image masked (see [MaskedImageSQL]); the same object as
// [CreateSQL] of the raw image.
func CreatedSQL(masked string) string {
	return "jsonb_build_object('added_fields', " + masked + ", 'removed_fields', " + emptyObjectSQL + ", 'changed_fields', " + emptyObjectSQL + ")"
}

// DeletedSQL returns the changes object of a delete whose removed_fields
// are the masked image masked; the same object as [DeleteSQL] of the raw
// image.
func DeletedSQL(masked string) string {
	return "jsonb_build_object('added_fields', " + emptyObjectSQL + ", 'removed_fields', " + masked + ", 'changed_fields', " + emptyObjectSQL + ")"
}

// CreateSQL returns the changes object of an insert whose new row image is
// newImg: every column of cols.Names under added_fields, redacted ones as
// "$encrypted$", and no other key of newImg.
func CreateSQL(newImg string, cols diff.Columns) string {
	return CreatedSQL(maskedFrom(newImg, cols))
}

// DeleteSQL returns the changes object of a delete whose old row image is
// oldImg: every column of cols.Names under removed_fields, redacted ones as
// "$encrypted$", and no other key of oldImg.
func DeleteSQL(oldImg string, cols diff.Columns) string {
	return DeletedSQL(maskedFrom(oldImg, cols))
}

// maskedFrom is the masked image built from the keys of the raw image img.
func maskedFrom(img string, cols diff.Columns) string {
	var b strings.Builder
	b.Grow(imageSize(img, cols.Names))
	writeMasked(&b, img, cols)
	return b.String()
}

// ChangedValuesSQL is [ChangedSQL] over column values rather than images:
// olds[i] and newVals[i] are the old and new values of cols.Names[i], such
// as "pre"."__o1" and "u"."name". Each column is compared as its to_jsonb
// value, which is what an image holds, so the result is ChangedSQL's; but
// no image is built and no key looked up, which halves the cost per row of
// a wide UPDATE:
//
//	CASE WHEN to_jsonb(o) IS DISTINCT FROM to_jsonb(n) THEN jsonb_build_object('c', jsonb_build_array(o, n)) ELSE '{}'::jsonb END
//
// (to_jsonb of SQL NULL is NULL where an image holds JSON null; either way
// two NULLs are not distinct, and jsonb_build_array records null.)
func ChangedValuesSQL(olds, newVals []string, cols diff.Columns) string {
	return ChangedTypedValuesSQL(olds, newVals, nil, cols)
}

// ChangedTypedValuesSQL is [ChangedValuesSQL] given the columns' type OIDs
// (types[i], pg_attribute.atttypid, for cols.Names[i]; nil or 0 when not
// known). A column of a built-in type whose own equality is the equality of
// its to_jsonb values (see [comparedAs]) is compared as it is, which spares
// the two to_jsonb conversions per row; the entry is the same.
func ChangedTypedValuesSQL(olds, newVals []string, types []uint32, cols diff.Columns) string {
	size := 0
	for i, name := range cols.Names {
		size += 120 + 3*len(name) + 2*(len(olds[i])+len(newVals[i]))
	}
	return changed(cols, size,
		func(b *strings.Builder, i int) { b.WriteString(olds[i]) },
		func(b *strings.Builder, i int) { b.WriteString(newVals[i]) },
		func(b *strings.Builder, i int, value func(*strings.Builder, int)) {
			var typ uint32
			if i < len(types) {
				typ = types[i]
			}
			switch comparedAs(typ) {
			case typedEqual:
				value(b, i)
			case typedJSONB:
				value(b, i)
				b.WriteString("::pg_catalog.jsonb")
			case typedEqualC:
				value(b, i)
				b.WriteString(`::pg_catalog.text COLLATE "C"`)
			default:
				b.WriteString("to_jsonb(")
				value(b, i)
				b.WriteByte(')')
			}
		})
}

// Ways of comparing a column's old and new values, by comparedAs.
const (
	jsonbEqual  = iota // compare their to_jsonb values
	typedEqual         // compare them as they are
	typedJSONB         // compare them as jsonb
	typedEqualC        // compare them as text, under the "C" collation
)

// comparedAs tells how values of the type whose OID is typ may be compared
// so that two are equal exactly when their to_jsonb values are. Only
// built-in types qualify (their OIDs are fixed), each for its reason:
// integers, booleans, uuid and date have one text form per value; numeric
// equality is jsonb's equality of numbers (1.0 equals 1.00 in both);
// timestamps render with microseconds in one time zone, so equal instants
// render the same and distinct ones differently; jsonb is compared by the
// same operator; text and varchar are equal in the "C" collation exactly
// when their bytes are (a column's own collation may be nondeterministic).
// Arrays (whose equality also compares lower bounds, which to_jsonb drops),
// json (which has no equality), floats, character(n), domains and every
// other type are compared as to_jsonb values.
//
// The type is the one described, and another client may have changed it
// since (ALTER COLUMN … TYPE keeps the table's OID and columns, which the
// guard checks). So text and varchar are compared as ::text under "C",
// which costs nothing for them, analyses for any type, and for citext, say,
// compares the bytes its to_jsonb string holds rather than its own
// case-insensitive equality; jsonb as ::jsonb, which json too can be cast
// to, exactly as to_jsonb converts it. A column of the other types changed
// to a type without equality fails the UPDATE (42883) rather than passing.
func comparedAs(typ uint32) int {
	switch typ {
	case 16, 20, 21, 23, 1082, 1114, 1184, 1700, 2950:
		// bool, int8, int2, int4, date, timestamp, timestamptz, numeric,
		// uuid
		return typedEqual
	case 3802:
		return typedJSONB
	case 25, 1043: // text, varchar
		return typedEqualC
	}
	return jsonbEqual
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
func ChangedSQL(oldImg, newImg string, cols diff.Columns) string {
	size := 0
	for _, name := range cols.Names {
		size += 110 + 5*len(name) + 2*(len(oldImg)+len(newImg))
	}
	field := func(img string) func(*strings.Builder, int) {
		return func(b *strings.Builder, i int) {
			b.WriteByte('(')
			b.WriteString(img)
			b.WriteString(")->")
			b.WriteString(sqlq.Literal(cols.Names[i]))
		}
	}
	return changed(cols, size, field(oldImg), field(newImg),
		func(b *strings.Builder, i int, value func(*strings.Builder, int)) { value(b, i) })
}

// changed writes the per-column CASE expressions of [ChangedSQL] and
// [ChangedValuesSQL]: oldVal and newVal write column i's old and new values,
// compared writes a value as it is compared.
func changed(cols diff.Columns, size int, oldVal, newVal func(*strings.Builder, int), compared func(*strings.Builder, int, func(*strings.Builder, int))) string {
	var b strings.Builder
	b.Grow(size)
	writeConcat(&b, len(cols.Names), func(b *strings.Builder, i int) {
		name := cols.Names[i]
		b.WriteString("CASE WHEN ")
		compared(b, i, oldVal)
		b.WriteString(" IS DISTINCT FROM ")
		compared(b, i, newVal)
		b.WriteString(" THEN ")
		if cols.Redacted[name] {
			b.WriteString(encryptedPairSQL(name))
		} else {
			b.WriteString("jsonb_build_object(")
			b.WriteString(sqlq.Literal(name))
			b.WriteString(", jsonb_build_array(")
			oldVal(b, i)
			b.WriteString(", ")
			newVal(b, i)
			b.WriteString("))")
		}
		b.WriteString(" ELSE " + emptyObjectSQL + " END")
	})
	return b.String()
}

// UpdateSQL wraps a changed_fields expression, such as one from [ChangedSQL],
// into the full changes object of an update.
func UpdateSQL(changedExpr string) string {
	return "jsonb_build_object('added_fields', " + emptyObjectSQL + ", 'removed_fields', " + emptyObjectSQL +
		", 'changed_fields', (" + changedExpr + "))"
}

// ReplacedSQL returns the changes object of an update whose old values are
// unknown: empty diffs and every column of cols.Names, masked, under
// replaced_fields (see [Changes.ReplacedFields]).
func ReplacedSQL(newImg string, cols diff.Columns) string {
	var b strings.Builder
	b.Grow(2*changesSize + imageSize(newImg, cols.Names))
	b.WriteString("(jsonb_build_object('added_fields', " + emptyObjectSQL + ", 'removed_fields', " + emptyObjectSQL +
		", 'changed_fields', " + emptyObjectSQL + ") || jsonb_build_object('replaced_fields', ")
	writeMasked(&b, newImg, cols)
	b.WriteString("))")
	return b.String()
}

// changesSize is about the length of a changes object without its images.
const changesSize = 120

// imageSize is about the length of an object built over names from img.
func imageSize(img string, names []string) int {
	n := 0
	for _, name := range names {
		n += 2*len(name) + len(img) + 12
	}
	return n + 40*(len(names)/argsPerCall+1)
}

// writeMasked writes an object of the columns of cols.Names from img, with
// redacted ones replaced by "$encrypted$".
func writeMasked(b *strings.Builder, img string, cols diff.Columns) {
	writeObject(b, cols.Names, func(b *strings.Builder, name string) {
		if cols.Redacted[name] {
			b.WriteString(encryptedTextSQL)
			return
		}
		// The jsonb value of key name in img: jsonb 'null' for a JSON
		// null, SQL NULL only when the key is missing.
		b.WriteByte('(')
		b.WriteString(img)
		b.WriteString(")->")
		b.WriteString(sqlq.Literal(name))
	})
}

var encryptedTextSQL = sqlq.Literal(diff.Encrypted) + "::text"

// writeObject writes jsonb_build_object calls pairing each name with
// value(name), at most argsPerCall columns per call, joined by writeConcat.
func writeObject(b *strings.Builder, names []string, value func(*strings.Builder, string)) {
	calls := (len(names) + argsPerCall - 1) / argsPerCall
	writeConcat(b, calls, func(b *strings.Builder, c int) {
		b.WriteString("jsonb_build_object(")
		for i, name := range names[c*argsPerCall : min((c+1)*argsPerCall, len(names))] {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(sqlq.Literal(name))
			b.WriteString(", ")
			value(b, name)
		}
		b.WriteByte(')')
	})
}

// writeConcat writes n jsonb expressions, written by part, joined with ||
// as a balanced tree; '{}'::jsonb when n is 0.
func writeConcat(b *strings.Builder, n int, part func(*strings.Builder, int)) {
	var tree func(lo, hi int)
	tree = func(lo, hi int) {
		if hi-lo == 1 {
			part(b, lo)
			return
		}
		mid := lo + (hi-lo)/2
		b.WriteByte('(')
		tree(lo, mid)
		b.WriteString(" || ")
		tree(mid, hi)
		b.WriteByte(')')
	}
	if n == 0 {
		b.WriteString(emptyObjectSQL)
		return
	}
	tree(0, n)
}

// encryptedPairSQL is the changed_fields object of a redacted column,
// {"name":["$encrypted$","$encrypted$"]}, as a jsonb constant.
func encryptedPairSQL(name string) string {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			// Escapes as encoding/json writes them.
			return jsonConstSQL(map[string][2]string{name: {diff.Encrypted, diff.Encrypted}})
		}
	}
	// Printable ASCII but " and \ is its own JSON string.
	return sqlq.Literal(`{"`+name+`":["`+diff.Encrypted+`","`+diff.Encrypted+`"]}`) + "::jsonb"
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
