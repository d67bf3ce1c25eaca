package relay

import "fmt"

// PayloadError is the error Run stops with at a message of Config.Prefix
// that it cannot read: not JSON, not version 1, or an entry that does not
// fit the entry table. Neither that message's transaction nor any later
// one has been applied or confirmed; Run stops there again until the
// message is dealt with (by a relay that reads it, or by advancing the
// slot past it by hand).
type PayloadError struct {
	LSN LSN    // the message's position
	Xid uint32 // its transaction
	Err error  // what is wrong with it
}

func (e *PayloadError) Error() string {
	return fmt.Sprintf("auditpgx: relay: message at LSN %s (transaction %d): %v", e.LSN, e.Xid, e.Err)
}

// Unwrap returns Err.
func (e *PayloadError) Unwrap() error { return e.Err }
