package store

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/auditpgx/auditpgx/internal/record"
)

// The columns sealed are the columns read, in the same order.
func TestSealColumnsFollowReadColumns(t *testing.T) {
	require.Equal(t, record.ReadColumns, strings.ReplaceAll(sealColumns, "::text", ""))
	var r sealRow
	require.Len(t, r.targets(), len(strings.Split(sealColumns, ",")))
}

// The encoding is a format: a change to it breaks every chain sealed
// before, so its bytes are pinned here.
func TestSealEncoding(t *testing.T) {
	var r sealRow
	scan := func(dest any, v any) {
		t.Helper()
		switch d := dest.(type) {
		case *int64:
			*d = v.(int64)
		case *sealTime:
			require.NoError(t, d.Scan(v))
		case *sealText:
			require.NoError(t, d.Scan(v))
		}
	}
	values := []any{int64(7), time.Date(2024, 3, 1, 12, 0, 0, 1000, time.FixedZone("x", 3600)), "alice", "update", "users",
		"42", `{"a": 1}`, nil, nil, "", int64(900), nil, []byte(`{}`)}
	for i, dest := range r.targets() {
		scan(dest, values[i])
	}
	enc := r.encode(nil)
	require.Equal(t, ""+
		"00000008"+"0000000000000007"+ // id
		"00000008"+"0006129746f3ac01"+ // created: 2024-03-01T11:00:00.000001Z in µs
		"00000005"+hex.EncodeToString([]byte("alice"))+
		"00000006"+hex.EncodeToString([]byte("update"))+
		"00000005"+hex.EncodeToString([]byte("users"))+
		"00000002"+hex.EncodeToString([]byte("42"))+
		"00000008"+hex.EncodeToString([]byte(`{"a": 1}`))+
		"ffffffff"+"ffffffff"+ // related table and object: NULL
		"00000000"+ // related field: empty, not NULL
		"00000008"+"0000000000000384"+ // tx_id
		"ffffffff"+ // fingerprint
		"00000002"+hex.EncodeToString([]byte(`{}`)), hex.EncodeToString(enc))

	ch := newChain([sha256.Size]byte{})
	d := ch.add(&r)
	sum := sha256.Sum256(enc)
	require.Equal(t, sum[:8], d[:])
	require.Equal(t, sha256.Sum256(append(make([]byte, 32), enc...)), ch.h)

	require.NoError(t, r.created.Scan("infinity"))
	require.Equal(t, int64(math.MaxInt64), r.created.micros)
	require.NoError(t, r.created.Scan("-infinity"))
	require.Equal(t, int64(math.MinInt64), r.created.micros)
	require.Error(t, r.created.Scan("soon"))
}

func TestCheckpointSignedMessage(t *testing.T) {
	c := Checkpoint{Seq: 2, Format: 1, FirstID: 10, LastID: 12, Count: 2, Gaps: []int64{11},
		Digests: []byte("01234567abcdefgh"), SealedAt: time.UnixMicro(5)}
	c.Prev[0], c.Hash[31] = 1, 2
	i := func(v int) string { return "00000008" + hex.EncodeToString([]byte{0, 0, 0, 0, 0, 0, 0, byte(v)}) }
	require.Equal(t, hex.EncodeToString([]byte("auditpgx checkpoint\x00"))+
		i(1)+i(2)+i(10)+i(12)+i(2)+ // format, seq, first, last, count
		"00000020"+"01"+strings.Repeat("00", 31)+ // prev
		"00000020"+strings.Repeat("00", 31)+"02"+ // hash
		i(1)+i(11)+ // one gap: 11
		"00000010"+hex.EncodeToString([]byte("01234567abcdefgh"))+
		i(5), // sealed_at
		hex.EncodeToString(c.SignedMessage()))
}
