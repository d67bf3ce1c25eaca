package relay

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodePayload(t *testing.T) {
	good := payloadOf("1", "2")
	entries, err := decodePayload([]byte(good), false)
	if err != nil || len(entries) != 2 {
		t.Fatalf("decodePayload(good) = %d entries, %v; want 2, nil", len(entries), err)
	}
	if got := entries[1].values[4]; got != "2" {
		t.Errorf("object_id %v, want 2", got)
	}
	if entries[0].values[9].(*string) != nil || entries[0].values[11] != nil {
		t.Errorf("null related_object_id and context gave %v and %v, want nil", entries[0].values[9], entries[0].values[11])
	}

	for _, c := range []struct{ name, content, want string }{
		{"not JSON", `{"v": 1, "entries": [`, "does not parse"},
		{"version 2", `{"v": 2, "entries": []}`, "version 2"},
		{"no version", `{"entries": []}`, `no "v"`},
		{"no entries", `{"v": 1}`, `no "entries"`},
		{"unknown top key", `{"v": 1, "entries": [], "x": 1}`, `unknown field "x"`},
		{"unknown entry key", strings.Replace(good, `"tx_id"`, `"txid"`, 1), `unknown field "txid"`},
		{"missing operation", strings.Replace(good, `"operation":"update",`, ``, 1), `"operation" is missing`},
		{"bad created", strings.Replace(good, `2026-12-06T09:55:08.123456+00:00`, `yesterday`, 1), `"created"`},
		{"changes not an object", strings.Replace(good, `"changes":{"name":["a","b"]}`, `"changes":[1]`, 1), `"changes" is neither`},
		{"fractional tx_id", strings.Replace(good, `"tx_id":7`, `"tx_id":7.5`, 1), "tx_id"},
		{"trailing data", good + ` {}`, "after the JSON value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := decodePayload([]byte(c.content), false)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("decodePayload = %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	s, err := Config{Source: "postgres://a"}.validate()
	if err != nil {
		t.Fatal(err)
	}
	if s.Dest != "postgres://a" || s.Slot != DefaultSlot || s.entry.Quoted() != `"auditpgx_entry"` ||
		s.state.Quoted() != `"auditpgx_relay_state"` || s.BatchEntries != DefaultBatchEntries {
		t.Errorf("defaults not applied: %+v", s)
	}
	s, err = Config{Source: "postgres://a", EntryTable: `Audit."Log"`}.validate()
	if err != nil || s.entry.Quoted() != `"audit"."Log"` {
		t.Errorf(`EntryTable Audit."Log" gave %s, %v; want "audit"."Log"`, s.entry.Quoted(), err)
	}
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Source is empty"},
		{Config{Source: "x", Slot: "Bad-Slot"}, `Slot "Bad-Slot"`},
		{Config{Source: "x", EntryTable: "a.b.c"}, "EntryTable"},
		{Config{Source: "x", StateTable: `"open`}, "StateTable"},
	} {
		_, err := c.cfg.validate()
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("validate(%+v) = %v, want ErrConfig naming %s", c.cfg, err, c.want)
		}
	}
}

func TestLSNString(t *testing.T) {
	for _, s := range []string{"0/0", "16/B374D848", "FFFFFFFF/FFFFFFFF"} {
		l, err := parseLSN(s)
		if err != nil || l.String() != s {
			t.Errorf("parseLSN(%s).String() = %s, %v", s, l, err)
		}
	}
}
