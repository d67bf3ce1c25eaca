package bench

import (
	"os"
	"testing"

	"github.com/auditpgx/auditpgx/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
