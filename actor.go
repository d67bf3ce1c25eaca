package auditpgx

import "context"

type actorKey struct{}

// WithActor returns a context that records actor as the created_by of
// every entry written by statements run with it. Without an actor,
// created_by is NULL.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor WithActor stored in ctx.
func ActorFrom(ctx context.Context) (string, bool) {
	a, ok := ctx.Value(actorKey{}).(string)
	return a, ok
}
