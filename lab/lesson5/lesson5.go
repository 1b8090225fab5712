// Package lesson5 is the "before" of the project: an import done the way the original program did it, one file
// after the other, one INSERT per row with autocommit, each row its own transaction and its own wait for the redo
// log. It is here only to be measured (the bench's lesson5 mode, `make compare`) and profiled (`make profile`),
// never used.
package lesson5

import (
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"hpnorton/internal/record"
)

// Import inserts every record of dir's customers.csv, then of its products.csv, into the tables of db's database,
// which repo.Open has made, and returns how many rows it inserted. A record that MySQL refuses stops it: the
// original program had no notion of a rejected row.
func Import(ctx context.Context, db *sql.DB, dir string) (rows int, err error) {
	for _, k := range record.Kinds {
		recs, err := readAll(filepath.Join(dir, k.FileName()))
		if err != nil {
			return rows, err
		}
		q := "INSERT INTO " + k.Table() + " (" + strings.Join(k.Header(), ", ") + ") VALUES (" + strings.Repeat("?, ", len(k.Columns())-1) + "?)"
		for i, rec := range recs {
			args := make([]any, len(rec))
			for j, f := range rec {
				args[j] = f
			}
			if _, err := db.ExecContext(ctx, q, args...); err != nil {
				return rows, fmt.Errorf("lesson5: %s line %d: %w", k.FileName(), i+2, err)
			}
			rows++
		}
	}
	return rows, nil
}

// readAll reads a file's records, less its header.
func readAll(path string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("lesson5: %s: %w", path, err)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("lesson5: %s is empty", path)
	}
	return recs[1:], nil
}
