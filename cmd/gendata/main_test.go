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
	for _, args := range [][]string{{}, {"-rows", "0", "x"}, {"-rows", "10000001", "x"}, {"a", "b"}} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage: gendata") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and the usage", args, code, stderr.String())
		}
	}
}
