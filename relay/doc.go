// Package relay moves the entries of auditpgx's WAL sink from a logical
// replication slot into an entry table, exactly once.
//
// With the WAL sink, an audited statement does not insert its entries: it
// emits them with pg_logical_emit_message(true, prefix, payload), a
// transactional logical decoding message that logical decoding delivers at
// commit, inside the transaction's BEGIN and COMMIT and in WAL order, and
// never for a transaction that rolled back (nor for a rolled-back
// savepoint). The relay streams them with the pgoutput plugin (option
// messages 'true', PostgreSQL 14 or later) and writes them with COPY, so
// that the entry table's ids follow commit order:
//
//	cfg := relay.Config{Source: "postgres://app@db/app"}
//	if err := relay.Setup(ctx, cfg); err != nil { // publication, slot, tables
//		return err
//	}
//	return relay.Run(ctx, cfg) // until ctx is cancelled
//
// # Payload
//
// Each message whose prefix is Config.Prefix holds UTF-8 JSON
// {"v": 1, "entries": [...]}, each entry an object of the entry table's
// columns but id, as to_jsonb writes a row. Messages with another prefix,
// and non-transactional messages, are ignored. A message of another
// version, or one that does not parse, stops Run with an error that names
// its LSN; the relay never skips it, and neither it nor anything after it
// is applied or confirmed.
//
// # Exactly once
//
// The relay keeps one row per slot in a state table of the destination
// database (Config.StateTable): (slot, lsn, committed, updated). It buffers
// each transaction's entries from BEGIN to COMMIT and applies whole
// transactions only. A batch of one or more transactions is applied in one
// destination transaction: COPY of their entries in commit order, then the
// state row set to the end LSN of the last one (the commit record's end,
// CommitMessage.TransactionEndLSN, which is also what the relay confirms),
// with an optimistic check that the row still holds the LSN this relay
// read or wrote last. Only after that commit does the relay confirm the LSN
// to the server with a standby status update, which lets the slot advance.
//
// A crash before the destination commit loses nothing: the slot has not
// been confirmed, so the server sends the transactions again. A crash
// after the commit but before the confirmation would apply them twice,
// which the state row prevents: on start, the relay reads it, asks the
// server to start streaming at that LSN (the server starts at the slot's
// confirmed_flush_lsn instead when that is later), and also skips any
// transaction that ends at or before it, in case the server sends it
// anyway (a slot's confirmed position is persisted lazily, so a server
// crash can move it back).
//
// Transactions without entries need no write: when no entries wait to be
// applied, the relay confirms their end directly, and the position the
// server reports in its keepalives, as PostgreSQL's own subscribers do, so
// that an idle slot does not hold WAL back. The state row moves with the
// next batch that has entries. Status updates are sent every 10 seconds,
// whenever the server asks for one, and in answer to a keepalive that
// moved the position. [ReadStatus] shows the slot's lag in bytes and the
// state row's.
//
// Only one relay may stream from a slot at a time; the server refuses a
// second one while the first is active, and the state row's check refuses
// a destination write made from a stale position.
//
// # Sealing
//
// With Config.Seal set, Run also seals the entry table, as store.Seal
// does: it hash-chains the committed entries into checkpoints in a seal
// table of Dest, optionally signed, when it starts and then every
// Seal.Interval, so that store.Verify can later tell an entry edited,
// deleted or inserted since. It seals through a connection of its own, in
// a goroutine, while the stream reads on. Sealing while the relay writes
// is safe: a seal covers only the ids committed when it starts, after
// waiting for the transactions then writing to the entry table (usually
// the relay's own batches, the only writer there) to end, and takes no
// lock. When such a writer outlasts Seal.Wait, or another sealer of the
// same seal table wrote the checkpoints first (store.ErrSealConflict),
// that seal writes nothing, a warning is logged, and the next interval
// tries again. Any other seal error (a seal table missing at start, a
// lost connection) stops Run with that error: the relay never goes on
// unsealed. Entries applied after the last seal are sealed by the next
// Run.
//
// # NDJSON
//
// With Config.NDJSON set, entries are written there as JSON lines instead
// (one entry object per line, as it came in the payload), and confirmed
// once written (and synced, when the writer has a Sync method). A writer
// cannot take part in a transaction, so there is no state row: a crash
// between a write and its confirmation writes those entries again on the
// next run. NDJSON output is at least once, not exactly once.
package relay
