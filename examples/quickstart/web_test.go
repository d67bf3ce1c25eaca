package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/auditpgx/auditpgx/internal/browsertest"
	"github.com/auditpgx/auditpgx/internal/pgtest"
)

var screenshots = flag.String("screenshots", "", "write screenshots of the web pages on the demo's data into this `directory` "+
	"(go test ./examples/quickstart -run TestWebPages -screenshots ../../docs/img)")

// The quickstart's data through the web pages, in Chromium: the stream,
// Bob's update of user 1 and its history. With -screenshots, each page is
// also written as a PNG, as the README shows them.
func TestWebPages(t *testing.T) {
	after := func(ctx context.Context, db *sql.DB) error {
		h, err := pages(db)
		if err != nil {
			return err
		}
		srv := httptest.NewServer(h)
		defer srv.Close()
		b := browsertest.New(t)
		var bobUpdate int64
		if err := db.QueryRowContext(ctx, `SELECT id FROM auditpgx_entry WHERE created_by = 'bob'`).Scan(&bobUpdate); err != nil {
			return err
		}
		for _, p := range []struct{ name, path, want string }{
			{"stream", "/", `tbody.tx.multi`},                                        // Carol's three-row update, grouped
			{"entry", fmt.Sprintf("/entries/%d", bobUpdate), `tr.changed .redacted`}, // the redacted password
			{"object", "/objects/users/1", `table.state`},
		} {
			b.Run(t, chromedp.Navigate(srv.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.want)))
			if *screenshots == "" {
				continue
			}
			png, err := chromedp.Run(b.Ctx(), chromedp.CaptureScreenshot())
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(*screenshots, "web-"+p.name+".png"), png, 0o644); err != nil {
				return err
			}
		}
		b.RequireClean(t)
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := demo(ctx, io.Discard, pgtest.NewDatabase(t), after); err != nil {
		t.Fatal(err)
	}
}
