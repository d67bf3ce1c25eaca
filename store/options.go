package store

// Option configures [Get], [History], [AsOf] and [Tables].
type Option func(*options)

type options struct {
	entryTable string
	keys       []string
	keysSet    bool
}

// WithEntryTable reads entries from table, named as for [Query].Table,
// instead of auditpgx_entry.
func WithEntryTable(table string) Option {
	return func(o *options) { o.entryTable = table }
}

// WithKeys gives the primary-key columns of the audited table, in key
// order, so that [History] and [AsOf] follow the object across updates of
// its key. Without it they read the key from the catalog of db, where the
// table is looked up by its table_name; WithKeys() with no columns turns
// following off.
func WithKeys(cols ...string) Option {
	return func(o *options) { o.keys, o.keysSet = cols, true }
}

func applyOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}
