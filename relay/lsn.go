package relay

import (
	"fmt"

	"github.com/jackc/pglogrepl"
)

// LSN is a position in the write-ahead log, as pg_lsn holds it.
type LSN uint64

// String renders the LSN as PostgreSQL writes a pg_lsn: 16/B374D848.
func (l LSN) String() string { return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l)) }

// parseLSN reads a pg_lsn written as text.
func parseLSN(s string) (LSN, error) {
	l, err := pglogrepl.ParseLSN(s)
	return LSN(l), err
}
