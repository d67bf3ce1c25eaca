package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/auditpgx/auditpgx/relay"
	"github.com/auditpgx/auditpgx/store"
)

func runRelay(ctx context.Context, e env, args []string) error {
	if len(args) > 0 && args[0] == "status" {
		return runRelayStatus(ctx, e, args[1:])
	}
	fs, c := newFlags("relay", "", "Stream the WAL sink's entries from a logical replication slot into an entry table, exactly once,\n"+
		"until interrupted (package relay). `auditpgx relay status` shows where the slot and the relay stand.", e.stderr)
	var cfg relay.Config
	relayFlags(fs, &cfg)
	to := fs.String("to", "", "write the entries into this database (PostgreSQL connection string) instead of the source")
	create := fs.Bool("create", false, "create the publication, the slot, the state table and the entry table if missing")
	ndjson := fs.String("ndjson", "", "write each entry as a JSON line to this file (- for stdout) instead of an entry table: at least once")
	fs.Var((*watchFlag)(&cfg.Watch), "watch", "record the writes of this registered table that no auditpgx entry accounts for, as outside entries:\n"+
		"TABLE[:exclude=COL,...][:redact=COL,...][:only=COL,...], with the registration's options, or for a join table\n"+
		"TABLE:field=NAME:owner=TABLE(COL):related=TABLE(COL); repeat for each table")
	fs.BoolVar(&cfg.SetReplicaIdentity, "set-replica-identity", false, "set REPLICA IDENTITY FULL on watched tables that lack it")
	sealInterval := fs.Duration("seal-interval", 0, "seal the entry table into the seal table at start and then at this interval,\n"+
		"as auditpgx seal does (0: do not seal); a seal that fails stops the relay")
	sealTable := fs.String("seal-table", relay.DefaultSealTable, "the seal table, in the destination, with --seal-interval (created with --create)")
	sealKey := fs.String("seal-key-file", "", "with --seal-interval, sign the checkpoints with the Ed25519 private key in this PEM file\n"+
		"(PKCS #8, as openssl genpkey -algorithm ed25519 writes it)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := sealFlags(fs, &cfg, *sealInterval, *sealTable, *sealKey, *ndjson != ""); err != nil {
		return err
	}
	src, err := c.source(e)
	if err != nil {
		return err
	}
	cfg.Source, cfg.Dest, cfg.EntryTable, cfg.Create = src, *to, c.entryTable, *create
	cfg.Logger = slog.New(slog.NewTextHandler(e.stderr, nil))
	switch *ndjson {
	case "":
	case "-":
		cfg.NDJSON = e.stdout
	default:
		f, err := os.OpenFile(*ndjson, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("--ndjson: %w", err)
		}
		defer f.Close()
		cfg.NDJSON = f
	}
	if cfg.Create {
		// The entry table too, which Run leaves to Setup.
		if err := relay.Setup(ctx, cfg); err != nil {
			if errors.Is(err, relay.ErrConfig) {
				return usagef("%v", err)
			}
			return err
		}
	}
	err = relay.Run(ctx, cfg)
	if errors.Is(err, relay.ErrConfig) {
		return usagef("%v", err)
	}
	return err
}

// sealFlags sets cfg.Seal from --seal-interval, --seal-table and
// --seal-key-file.
func sealFlags(fs *flag.FlagSet, cfg *relay.Config, interval time.Duration, table, keyFile string, ndjson bool) error {
	var orphan string
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "seal-table" || f.Name == "seal-key-file" {
			orphan = f.Name
		}
	})
	switch {
	case interval < 0:
		return usagef("--seal-interval: %s is negative", interval)
	case interval == 0 && orphan != "":
		return usagef("--%s needs --seal-interval", orphan)
	case interval == 0:
		return nil
	case ndjson:
		return usagef("--seal-interval needs an entry table, and --ndjson writes none")
	}
	if _, err := store.SealDDL(table); err != nil {
		return usagef("--seal-table: %v", err)
	}
	cfg.Seal = &relay.SealConfig{Interval: interval, Table: table}
	if keyFile != "" {
		key, err := readPrivateKey(keyFile)
		if err != nil {
			return usagef("--seal-key-file: %v", err)
		}
		cfg.Seal.Signer = key
	}
	return nil
}

// relayFlags adds the flags relay and relay status share.
func relayFlags(fs *flag.FlagSet, cfg *relay.Config) {
	fs.StringVar(&cfg.Slot, "slot", relay.DefaultSlot, "the logical replication slot (pgoutput) to read")
	fs.StringVar(&cfg.Publication, "publication", relay.DefaultPublication, "the publication the slot streams (an empty one is enough)")
	fs.StringVar(&cfg.Prefix, "prefix", relay.DefaultPrefix, "the messages' prefix (auditpgx.WALSink.Prefix)")
	fs.StringVar(&cfg.StateTable, "state-table", relay.DefaultStateTable, "the table, in the destination, holding the last applied position")
}

func runRelayStatus(ctx context.Context, e env, args []string) error {
	fs, c := newFlags("relay status", "", "Show the relay's slot, its lag in bytes and seconds, and the last applied position", e.stderr)
	var cfg relay.Config
	relayFlags(fs, &cfg)
	to := fs.String("to", "", "the database the relay writes into, when not the source")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	src, err := c.source(e)
	if err != nil {
		return err
	}
	cfg.Source, cfg.Dest, cfg.EntryTable = src, *to, c.entryTable
	st, err := relay.ReadStatus(ctx, cfg)
	if errors.Is(err, relay.ErrConfig) {
		return usagef("%v", err)
	}
	if err != nil {
		return err
	}
	writeStatus(e.stdout, st)
	if !st.SlotExists {
		return fmt.Errorf("no slot %q: audited writes with the WAL sink fail until it exists (auditpgx relay --create makes it)", st.Slot)
	}
	return nil
}

func writeStatus(w io.Writer, st relay.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "slot\t%s\n", st.Slot)
	fmt.Fprintf(tw, "exists\t%t\n", st.SlotExists)
	if st.SlotExists {
		fmt.Fprintf(tw, "active\t%t\n", st.SlotActive)
		fmt.Fprintf(tw, "confirmed\t%s\n", st.Confirmed)
		fmt.Fprintf(tw, "restart\t%s\n", st.Restart)
		fmt.Fprintf(tw, "current\t%s\n", st.Current)
		fmt.Fprintf(tw, "lag\t%d bytes\n", st.LagBytes)
	}
	if st.StateFound {
		fmt.Fprintf(tw, "applied\t%s\n", st.Applied)
		fmt.Fprintf(tw, "applied lag\t%s\n", st.Lag.Round(1e6))
	}
	tw.Flush()
}

// watchFlag is --watch: TABLE[:exclude=a,b][:redact=c][:only=d], repeated.
type watchFlag []relay.WatchTable

func (w *watchFlag) String() string {
	if w == nil {
		return ""
	}
	names := make([]string, len(*w))
	for i, t := range *w {
		names[i] = t.Table
	}
	return strings.Join(names, ",")
}

func (w *watchFlag) Set(v string) error {
	parts := strings.Split(v, ":")
	t := relay.WatchTable{Table: parts[0]}
	if t.Table == "" {
		return errors.New("no table name")
	}
	for _, p := range parts[1:] {
		opt, cols, ok := strings.Cut(p, "=")
		list := strings.Split(cols, ",")
		if !ok || slices.Contains(list, "") {
			return fmt.Errorf("%q is not OPTION=COL[,COL]", p)
		}
		if opt == "field" || opt == "owner" || opt == "related" {
			if t.Link == nil {
				t.Link = &relay.WatchLink{}
			}
			if err := setLink(t.Link, opt, cols); err != nil {
				return err
			}
			continue
		}
		switch opt {
		case "exclude":
			t.Exclude = append(t.Exclude, list...)
		case "redact":
			t.Redact = append(t.Redact, list...)
		case "only":
			t.Only = append(t.Only, list...)
		default:
			return fmt.Errorf("unknown option %q (exclude, redact, only; field, owner, related)", opt)
		}
	}
	if l := t.Link; l != nil && (l.Field == "" || l.OwnerTable == "" || l.RelatedTable == "") {
		return fmt.Errorf("join table %q needs field=, owner= and related=", t.Table)
	}
	*w = append(*w, t)
	return nil
}

// setLink sets a join table's field, or its owner or related TABLE(COL).
func setLink(l *relay.WatchLink, opt, v string) error {
	if opt == "field" {
		l.Field = v
		return nil
	}
	table, col, ok := strings.Cut(v, "(")
	col, closed := strings.CutSuffix(col, ")")
	if !ok || !closed || table == "" || col == "" {
		return fmt.Errorf("%s=%q is not TABLE(COLUMN)", opt, v)
	}
	if opt == "owner" {
		l.OwnerTable, l.OwnerColumn = table, col
	} else {
		l.RelatedTable, l.RelatedColumn = table, col
	}
	return nil
}
