package relay_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/auditpgx/auditpgx/relay"
)

// A relay process: create what is missing, then stream until interrupted.
// (Not run: it needs a server with wal_level=logical, and runs until
// stopped.)
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg := relay.Config{
		Source: "postgres://relay@db.internal/app",
		Dest:   "postgres://relay@audit.internal/audit",
		Logger: slog.Default(),
	}
	if err := relay.Setup(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := relay.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// How far behind a relay is.
func ExampleReadStatus() {
	st, err := relay.ReadStatus(context.Background(), relay.Config{Source: "postgres://relay@db.internal/app"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Printf("slot %s: %d bytes of WAL unconfirmed; newest entries applied %s ago\n", st.Slot, st.LagBytes, st.Lag)
}

// A relay that also seals the entry table every five minutes, creating
// the seal table if missing. (Not run.)
func ExampleConfig_seal() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var signer ed25519.PrivateKey // optional: a key kept out of the database
	cfg := relay.Config{
		Source: "postgres://relay@db.internal/app",
		Create: true,
		Seal:   &relay.SealConfig{Interval: 5 * time.Minute, Signer: signer},
	}
	if err := relay.Run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err) // a seal that failed, among others
		os.Exit(1)
	}
}
