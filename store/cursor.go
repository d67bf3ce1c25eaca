package store

import (
	"encoding/base64"
	"errors"
	"strconv"
)

// cursor is a position in a listing: after id, in one order.
type cursor struct {
	descending bool
	id         int64
}

// encodeCursor writes c as opaque URL-safe text. The format is internal
// and may change; callers only pass back what they were given.
func encodeCursor(c cursor) string {
	dir := "a"
	if c.descending {
		dir = "d"
	}
	return base64.RawURLEncoding.EncodeToString([]byte("v1" + dir + strconv.FormatInt(c.id, 10)))
}

var errBadCursor = errors.New("is not a cursor returned by a previous page")

func decodeCursor(s string) (cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 4 || string(b[:2]) != "v1" {
		return cursor{}, errBadCursor
	}
	id, err := strconv.ParseInt(string(b[3:]), 10, 64)
	if err != nil || id < 0 {
		return cursor{}, errBadCursor
	}
	switch b[2] {
	case 'a':
		return cursor{id: id}, nil
	case 'd':
		return cursor{descending: true, id: id}, nil
	}
	return cursor{}, errBadCursor
}
