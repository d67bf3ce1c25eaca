package gormsuite_test

import (
	"strings"
	"testing"

	"github.com/auditpgx/auditpgx/examples/orms/gormsuite"
)

const testsTest = `package tests_test

import (
	"os"

	"gorm.io/driver/mysql"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

var DB *gorm.DB
var (
	mysqlDSN    = "x"
	postgresDSN = "y"
)

func OpenTestConnection(cfg *gorm.Config) (db *gorm.DB, err error) {
	if os.Getenv("GORM_DIALECT") == "mysql" {
		return gorm.Open(mysql.Open(mysqlDSN), cfg)
	}
	return gorm.Open(postgres.New(postgres.Config{DSN: postgresDSN}), cfg)
}
`

func TestAdaptFile(t *testing.T) {
	ad, err := gormsuite.AdaptFile("tests_test.go", []byte(testsTest))
	if err != nil {
		t.Fatal(err)
	}
	out := string(ad.Source)
	for _, gone := range []string{"func OpenTestConnection", "postgresDSN", `"gorm.io/driver/postgres"`, `"gorm.io/driver/mysql"`, `"os"`} {
		if strings.Contains(out, gone) {
			t.Errorf("%s left in:\n%s", gone, out)
		}
	}
	if !strings.Contains(out, `mysqlDSN = "x"`) || !strings.Contains(out, "var DB *gorm.DB") {
		t.Errorf("too much removed:\n%s", out)
	}

	other := `package tests_test

import (
	"testing"

	"gorm.io/driver/postgres"
	"gorm.io/gorm"
)

func TestX(t *testing.T) {
	db, _ := gorm.Open(postgres.Open(postgresDSN), &gorm.Config{})
	_ = db
}

func helper(t *testing.T) {}
`
	ad, err = gormsuite.AdaptFile("x_test.go", []byte(other))
	if err != nil {
		t.Fatal(err)
	}
	out = string(ad.Source)
	if !strings.Contains(out, "gorm.Open(auditpgxsuiteOpen(postgresDSN)") || strings.Contains(out, "gorm.io/driver/postgres") {
		t.Errorf("postgres.Open not rewritten:\n%s", out)
	}
	if len(ad.Tests) != 1 || ad.Tests[0] != "TestX" {
		t.Errorf("tests: %v", ad.Tests)
	}
}

func TestAdaptFileRefusesUnmapped(t *testing.T) {
	const prefix = "package tests_test\n\nimport (\n\t\"database/sql\"\n\n\t\"github.com/jackc/pgx/v5\"\n\t\"gorm.io/driver/postgres\"\n)\n\nvar _, _ = sql.Open(\"mysql\", \"\")\nvar _ = gorm.Open(postgres.Open(\"\"))\n\n"
	for name, body := range map[string]string{
		"postgres.New":  `var _ = postgres.New(postgres.Config{})`,
		"sql.Open pgx":  `var _, _ = sql.Open("pgx", "")`,
		"sql.OpenDB":    `var _ = sql.OpenDB(nil)`,
		"glue's prefix": `var auditpgxsuiteX = postgres.Open("")`,
		"pgx":           `var _ = pgx.Connect`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := gormsuite.AdaptFile("x_test.go", []byte(prefix)); err != nil {
				t.Fatalf("the file without %s: %v", name, err)
			}
			if _, err := gormsuite.AdaptFile("x_test.go", []byte(prefix+body+"\n")); err == nil {
				t.Errorf("adapted without complaint")
			}
		})
	}
}
