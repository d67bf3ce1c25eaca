package relay

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/auditpgx/auditpgx/internal/sqlq"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ensureSource creates the publication, then the slot, when missing. The
// publication comes first: pgoutput looks it up as of the WAL position it
// decodes, and a publication made after the slot would be missing for the
// WAL in between.
func ensureSource(ctx context.Context, s settings) error {
	conn, err := pgx.Connect(ctx, s.Source)
	if err != nil {
		return fmt.Errorf("auditpgx: relay: connecting to Source: %w", err)
	}
	defer conn.Close(context.Background())
	if err := ensurePublication(ctx, conn, s); err != nil {
		return err
	}
	return ensureSlot(ctx, conn, s)
}

func ensurePublication(ctx context.Context, conn *pgx.Conn, s settings) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_catalog.pg_publication WHERE pubname = $1)", s.Publication).
		Scan(&exists); err != nil {
		return fmt.Errorf("auditpgx: relay: looking up publication %q: %w", s.Publication, err)
	}
	if !exists {
		_, err := conn.Exec(ctx, "CREATE PUBLICATION "+sqlq.Ident(s.Publication))
		if err != nil && !isCode(err, duplicateObject) {
			return fmt.Errorf("auditpgx: relay: creating publication %q: %w", s.Publication, err)
		}
	}
	missing, err := unpublished(ctx, conn, s)
	for _, t := range missing {
		alter := "ALTER PUBLICATION " + sqlq.Ident(s.Publication) + " ADD TABLE " + t
		if _, err := conn.Exec(ctx, alter); err != nil && !isCode(err, duplicateObject) {
			return fmt.Errorf("auditpgx: relay: %s: %w", alter, err)
		}
	}
	return err
}

// unpublished returns the watched tables, quoted, that the publication
// does not hold.
func unpublished(ctx context.Context, conn *pgx.Conn, s settings) ([]string, error) {
	var out []string
	for _, w := range s.Watch {
		n, err := sqlq.ParseName(w.Table)
		if err != nil {
			return nil, fmt.Errorf("%w: Watch %q: %v", ErrConfig, w.Table, err)
		}
		var published bool
		err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_catalog.pg_publication p WHERE p.pubname = $1 AND (p.puballtables
	OR EXISTS (SELECT FROM pg_catalog.pg_publication_rel r WHERE r.prpubid = p.oid AND r.prrelid = pg_catalog.to_regclass($2))))`,
			s.Publication, n.Quoted()).Scan(&published)
		if err != nil {
			return nil, fmt.Errorf("auditpgx: relay: looking up watched table %q in publication %q: %w", w.Table, s.Publication, err)
		}
		if !published {
			out = append(out, n.Quoted())
		}
	}
	return out, nil
}

func ensureSlot(ctx context.Context, conn *pgx.Conn, s settings) error {
	slot, err := lookUpSlot(ctx, conn, s.Slot)
	if err != nil {
		return err
	}
	if !slot.exists {
		_, err := conn.Exec(ctx, "SELECT pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')", s.Slot)
		if err == nil {
			return nil
		}
		if !isCode(err, duplicateObject) {
			return fmt.Errorf("auditpgx: relay: creating replication slot %q: %w", s.Slot, err)
		}
		if slot, err = lookUpSlot(ctx, conn, s.Slot); err != nil {
			return err
		}
	}
	return slot.check(s.Slot)
}

// slotInfo is a slot's row of pg_replication_slots.
type slotInfo struct {
	exists, active, logical, here bool
	plugin                        string
	confirmed, restart            LSN
}

func (si slotInfo) check(name string) error {
	switch {
	case !si.logical:
		return fmt.Errorf("auditpgx: relay: replication slot %q is physical, not logical", name)
	case si.plugin != "pgoutput":
		return fmt.Errorf("auditpgx: relay: replication slot %q uses plugin %q, not pgoutput", name, si.plugin)
	case !si.here:
		return fmt.Errorf("auditpgx: relay: replication slot %q belongs to another database than Source's", name)
	}
	return nil
}

func lookUpSlot(ctx context.Context, conn *pgx.Conn, name string) (slotInfo, error) {
	var si slotInfo
	var confirmed, restart *string
	var plugin *string
	err := conn.QueryRow(ctx, `SELECT active, slot_type = 'logical', plugin, database = pg_catalog.current_database(),
	confirmed_flush_lsn::text, restart_lsn::text
FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, name).
		Scan(&si.active, &si.logical, &plugin, &si.here, &confirmed, &restart)
	if errors.Is(err, pgx.ErrNoRows) {
		return si, nil
	}
	if err != nil {
		return si, fmt.Errorf("auditpgx: relay: looking up replication slot %q: %w", name, err)
	}
	si.exists = true
	if plugin != nil {
		si.plugin = *plugin
	}
	for _, p := range []struct {
		text *string
		lsn  *LSN
	}{{confirmed, &si.confirmed}, {restart, &si.restart}} {
		if p.text == nil {
			continue
		}
		if *p.lsn, err = parseLSN(*p.text); err != nil {
			return si, fmt.Errorf("auditpgx: relay: replication slot %q: %w", name, err)
		}
	}
	return si, nil
}

// duplicateObject is the SQLSTATE of CREATE for a name that exists.
const duplicateObject = "42710"

// isCode reports whether err is a server error of SQLSTATE code.
func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// pluginArgs are pgoutput's options: the publication (a list of
// identifiers, so quoted as one, in a string of the replication command
// language, which knows no escapes but a doubled quote) and messages.
func pluginArgs(s settings) []string {
	pub := "'" + strings.ReplaceAll(sqlq.Ident(s.Publication), "'", "''") + "'"
	return []string{"proto_version '1'", "publication_names " + pub, "messages 'true'"}
}
