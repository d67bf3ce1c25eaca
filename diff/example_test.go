package diff_test

import (
	"encoding/json"
	"fmt"

	"github.com/auditpgx/auditpgx/diff"
)

func ExampleUpdate() {
	cols := diff.Columns{
		Names:    []string{"id", "name", "balance", "password"},
		Redacted: map[string]bool{"password": true},
	}
	oldRow := diff.Image{"id": json.RawMessage(`1`), "name": json.RawMessage(`"ann"`), "balance": json.RawMessage(`10.5`), "password": json.RawMessage(`"x"`)}
	newRow := diff.Image{"id": json.RawMessage(`1`), "name": json.RawMessage(`"ann"`), "balance": json.RawMessage(`10.50`), "password": json.RawMessage(`"y"`)}

	out, _ := json.Marshal(diff.Update(oldRow, newRow, cols))
	fmt.Println(string(out))
	// Output: {"added_fields":{},"removed_fields":{},"changed_fields":{"password":["$encrypted$","$encrypted$"]}}
}
