package auditpgx

import (
	"database/sql/driver"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"weak"
)

// sessions remembers the connections on which the application changed
// search_path (or the role, which $user in it follows). Cached plans that
// resolved unqualified names through the default search_path are not used
// on those connections: their statements are resolved anew each time.
// Entries disappear with their connections.
type sessions struct {
	changed sync.Map // weak.Pointer to the connection -> struct{}
	count   atomic.Int64
}

// connID returns the identity of the pgx connection behind conn: sqlmw
// hands interceptors a small struct wrapping it, a new value each call.
func connID(conn any) (any, bool) {
	if q, ok := conn.(*pgxQueryer); ok {
		return q.conn, true // the pgx front's
	}
	v := reflect.ValueOf(conn)
	if v.Kind() == reflect.Struct && v.NumField() > 0 && v.Field(0).CanInterface() {
		if inner, ok := v.Field(0).Interface().(driver.Conn); ok {
			v = reflect.ValueOf(inner)
		}
	}
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return nil, false
	}
	return v.Interface(), true
}

func (s *sessions) markChanged(conn any) {
	id, ok := connID(conn)
	if !ok {
		return
	}
	p := reflect.ValueOf(id).UnsafePointer()
	key := weak.Make((*byte)(p))
	if _, loaded := s.changed.LoadOrStore(key, struct{}{}); !loaded {
		s.count.Add(1)
		runtime.AddCleanup((*byte)(p), func(k weak.Pointer[byte]) {
			if _, loaded := s.changed.LoadAndDelete(k); loaded {
				s.count.Add(-1)
			}
		}, key)
	}
}

// unmark forgets conn and reports whether it was marked.
func (s *sessions) unmark(conn any) bool {
	if s.count.Load() == 0 {
		return false
	}
	id, ok := connID(conn)
	if !ok {
		return false
	}
	if _, loaded := s.changed.LoadAndDelete(weak.Make((*byte)(reflect.ValueOf(id).UnsafePointer()))); loaded {
		s.count.Add(-1)
		return true
	}
	return false
}

func (s *sessions) changedSearchPath(conn any) bool {
	if s.count.Load() == 0 {
		return false
	}
	id, ok := connID(conn)
	if !ok {
		return false
	}
	_, changed := s.changed.Load(weak.Make((*byte)(reflect.ValueOf(id).UnsafePointer())))
	return changed
}
