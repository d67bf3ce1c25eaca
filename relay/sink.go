package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// batch is one or more whole transactions, in commit order, to apply at
// once.
type batch struct {
	entries   []entry
	txs       int
	end       LSN       // end of the last transaction's commit record
	committed time.Time // its commit time
	first     time.Time // when its first transaction arrived
}

func (b *batch) empty() bool { return b.txs == 0 }

func (b *batch) reset() { *b = batch{entries: b.entries[:0]} }

// sink is where entries go.
type sink interface {
	// applied returns the position up to which entries were applied
	// before, 0/0 when unknown.
	applied() LSN
	// apply makes the batch durable; the relay confirms b.end afterwards.
	apply(ctx context.Context, b *batch) error
	close()
}

// tableSink writes entries to the entry table and the position to the
// state table, in one transaction.
type tableSink struct {
	s     settings
	conn  *pgx.Conn
	ident pgx.Identifier
	state LSN // what the state row holds
}

func openTableSink(ctx context.Context, s settings) (*tableSink, error) {
	conn, err := pgx.Connect(ctx, s.Dest)
	if err != nil {
		return nil, fmt.Errorf("auditpgx: relay: connecting to Dest: %w", err)
	}
	t := &tableSink{s: s, conn: conn, ident: identifier(s.entry.Schema, s.entry.Rel)}
	if err := t.init(ctx); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return t, nil
}

func (t *tableSink) init(ctx context.Context) error {
	ok, err := stateTableExists(ctx, t.conn, t.s)
	if err != nil {
		return err
	}
	if !ok {
		if !t.s.Create {
			return fmt.Errorf("auditpgx: relay: state table %q does not exist in Dest (set Create, or call Setup)", t.s.state.String())
		}
		if err := createStateTable(ctx, t.conn, t.s); err != nil {
			return err
		}
	}
	row, _, err := readState(ctx, t.conn, t.s)
	if err != nil {
		return err
	}
	t.state = row.lsn
	return nil
}

func (t *tableSink) applied() LSN { return t.state }

func (t *tableSink) apply(ctx context.Context, b *batch) error {
	tx, err := t.conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("auditpgx: relay: begin on Dest: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // no-op after a commit
	if len(b.entries) > 0 {
		n, err := tx.CopyFrom(ctx, t.ident, entryColumns, &entryRows{entries: b.entries, i: -1})
		if err != nil {
			return fmt.Errorf("auditpgx: relay: copying %d entries into %q (transactions ending up to %s): %w",
				len(b.entries), t.s.entry.String(), b.end, err)
		}
		if n != int64(len(b.entries)) {
			return fmt.Errorf("auditpgx: relay: COPY into %q wrote %d entries of %d", t.s.entry.String(), n, len(b.entries))
		}
	}
	if err := writeState(ctx, tx, t.s, t.state, b.end, b.committed); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("auditpgx: relay: commit on Dest (transactions ending up to %s): %w", b.end, err)
	}
	t.state = b.end
	return nil
}

func (t *tableSink) close() { t.conn.Close(context.Background()) }

// entryRows is a pgx.CopyFromSource over entries.
type entryRows struct {
	entries []entry
	i       int
}

func (r *entryRows) Next() bool             { r.i++; return r.i < len(r.entries) }
func (r *entryRows) Values() ([]any, error) { return r.entries[r.i].values, nil }
func (r *entryRows) Err() error             { return nil }

// identifier is a pgx.Identifier of a possibly schema-qualified name.
func identifier(schema, rel string) pgx.Identifier {
	if schema == "" {
		return pgx.Identifier{rel}
	}
	return pgx.Identifier{schema, rel}
}

// ndjsonSink writes entries as JSON lines, compacted so that each is one
// line.
type ndjsonSink struct {
	w   io.Writer
	buf *bufio.Writer
}

func newNDJSONSink(w io.Writer) *ndjsonSink {
	return &ndjsonSink{w: w, buf: bufio.NewWriterSize(w, 64<<10)}
}

func (n *ndjsonSink) applied() LSN { return 0 }

func (n *ndjsonSink) apply(_ context.Context, b *batch) error {
	var line bytes.Buffer
	for _, e := range b.entries {
		line.Reset()
		if err := json.Compact(&line, e.raw); err != nil {
			return fmt.Errorf("auditpgx: relay: NDJSON: %w", err)
		}
		line.WriteByte('\n')
		n.buf.Write(line.Bytes())
	}
	if err := n.buf.Flush(); err != nil {
		return fmt.Errorf("auditpgx: relay: writing NDJSON (transactions ending up to %s): %w", b.end, err)
	}
	if s, ok := n.w.(interface{ Sync() error }); ok {
		if err := s.Sync(); err != nil {
			return fmt.Errorf("auditpgx: relay: syncing NDJSON (transactions ending up to %s): %w", b.end, err)
		}
	}
	return nil
}

func (n *ndjsonSink) close() {}
