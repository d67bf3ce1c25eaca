package record

import "testing"

func TestObjectIDText(t *testing.T) {
	for _, c := range []struct {
		types []uint32
		texts []string
		want  string
		ok    bool
	}{
		{[]uint32{oidInt4}, []string{"7"}, "7", true},
		{[]uint32{oidText}, []string{`a"b`}, `a"b`, true},
		{[]uint32{oidInt8, oidText}, []string{"7", "eu"}, `[7,"eu"]`, true},
		{[]uint32{oidInt2, oidVarchar, oidUUID}, []string{"-1", "q\"\\\b\f\n\r\t\x01\x1f\x7fé", "6f1c0b2e-1c7a-4a2b-9a57-3f0d2c8f4a11"},
			`[-1,"q\"\\\b\f\n\r\t\u0001\u001f` + "\x7fé" + `","6f1c0b2e-1c7a-4a2b-9a57-3f0d2c8f4a11"]`, true},
		{[]uint32{1082}, []string{"2026-01-02"}, "", false}, // date: the server renders it
		{[]uint32{oidInt4, 1700}, []string{"1", "1.50"}, "", false},
	} {
		got, ok := ObjectIDText(c.types, c.texts)
		if got != c.want || ok != c.ok {
			t.Errorf("ObjectIDText(%v, %q) = %q, %t; want %q, %t", c.types, c.texts, got, ok, c.want, c.ok)
		}
	}
}
