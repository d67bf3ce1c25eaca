package diff

import (
	"bytes"
	"encoding/json"
)

// Columns describes the audited columns of a table.
type Columns struct {
	// Names lists the audited columns in table order. Excluded columns are
	// not listed; redacted ones are.
	Names []string
	// Redacted marks the columns of Names whose values are recorded as
	// [Encrypted]. Names not in Names are ignored.
	Redacted map[string]bool
}

// Image is a row as column name -> to_jsonb value, raw and unmasked.
type Image = map[string]json.RawMessage

// Create returns the changes of an inserted row: every column of cols.Names
// present in newRow, under added_fields. Redacted columns carry [Encrypted].
func Create(newRow Image, cols Columns) Changes {
	return Update(nil, newRow, cols)
}

// Delete returns the changes of a deleted row: every column of cols.Names
// present in oldRow, under removed_fields. Redacted columns carry [Encrypted].
func Delete(oldRow Image, cols Columns) Changes {
	return Update(oldRow, nil, cols)
}

// Update returns the changes between two images of a row. Only columns of
// cols.Names are considered: one present in both images whose values are not
// [Equal] goes to changed_fields as [old, new]; one present only in newRow goes
// to added_fields and one only in oldRow to removed_fields. A redacted column
// is compared on its raw values and recorded as [Encrypted], so a change to it
// reads ["$encrypted$", "$encrypted$"]. When nothing differs the result is
// [Changes.Empty].
//
// The values in the result are copies; the images may be reused afterwards.
func Update(oldRow, newRow Image, cols Columns) Changes {
	c := newChanges()
	for _, name := range cols.Names {
		ov, inOld := oldRow[name]
		nv, inNew := newRow[name]
		redacted := cols.Redacted[name]
		switch {
		case inOld && inNew:
			if !Equal(ov, nv) {
				c.ChangedFields[name] = [2]json.RawMessage{recorded(ov, redacted), recorded(nv, redacted)}
			}
		case inNew:
			c.AddedFields[name] = recorded(nv, redacted)
		case inOld:
			c.RemovedFields[name] = recorded(ov, redacted)
		}
	}
	return c
}

// recorded is the value written to the entry for a raw column value.
func recorded(v json.RawMessage, redacted bool) json.RawMessage {
	switch {
	case redacted:
		return json.RawMessage(encryptedJSON)
	case len(bytes.TrimSpace(v)) == 0:
		return json.RawMessage("null")
	}
	return bytes.Clone(v)
}
