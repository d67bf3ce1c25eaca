package auditpgx

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

type actorKey struct{}

// MaxActorBytes is the longest actor accepted: entries are indexed by actor,
// and a longer key would fail the write with an index size error.
const MaxActorBytes = 1024

// ErrInvalidActor is wrapped by the error an audited write returns when its
// context's actor cannot be recorded: longer than MaxActorBytes, not valid
// UTF-8, or holding a NUL byte. Nothing was written. The error never holds
// the actor itself.
var ErrInvalidActor = errors.New("auditpgx: invalid actor")

// WithActor returns a context that records actor as the created_by of
// every entry written by statements run with it. Without an actor,
// created_by is NULL. An actor that ValidateActor rejects makes every
// audited write run with the context fail with its error, before anything
// is sent.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor WithActor stored in ctx.
func ActorFrom(ctx context.Context) (string, bool) {
	a, _, ok := actorFrom(ctx)
	return a, ok
}

// actorFrom is ActorFrom that also returns the actor as the interface
// value ctx holds, to be bound as an argument without boxing it again.
func actorFrom(ctx context.Context) (actor string, value any, ok bool) {
	value = ctx.Value(actorKey{})
	actor, ok = value.(string)
	return actor, value, ok
}

// ValidateActor reports why actor cannot be recorded, wrapping
// ErrInvalidActor, or returns nil. Call it where an actor enters the
// application (a login, a request header) to fail there rather than at the
// first audited write.
func ValidateActor(actor string) error {
	switch {
	case len(actor) > MaxActorBytes:
		return fmt.Errorf("%w: %d bytes long, more than the %d allowed", ErrInvalidActor, len(actor), MaxActorBytes)
	case !utf8.ValidString(actor):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidActor)
	case strings.IndexByte(actor, 0) >= 0:
		return fmt.Errorf("%w: holds a NUL byte", ErrInvalidActor)
	}
	return nil
}
