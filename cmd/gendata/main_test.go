package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWritesBothFiles(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-rows", "3", "-crlf", dir}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, name := range []string{"customers.csv", "products.csv"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if lines := strings.Count(string(b), "\r\n"); lines != 4 {
			t.Errorf("%s has %d CRLF lines, want a header and 3 records", name, lines)
		}
	}
}

func TestRejectsBadArguments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{}, "gendata: usage error: missing DIR: the folder to write customers.csv and products.csv to"},
		{[]string{"-rows", "0", "x"}, "gendata: usage error: --rows: must be from 1 to 10,000,000, got 0"},
		{[]string{"--rows", "10000001", "x"}, "gendata: usage error: --rows: must be from 1 to 10,000,000, got 10000001"},
		{[]string{"--repeat-every", "2", "x"}, "gendata: usage error: --repeat-every: must be 0 or at least 3, got 2"},
		{[]string{"a", "b"}, "gendata: usage error: one output folder expected, got 2 arguments"},
	} {
		var stdout, stderr bytes.Buffer
		want := tc.want + "\nRun 'gendata --help' for usage.\n"
		if code := run(tc.args, &stdout, &stderr); code != 2 || stderr.String() != want || stdout.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, stdout.String(), stderr.String(), want)
		}
	}
}
