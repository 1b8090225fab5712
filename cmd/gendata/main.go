// Command gendata writes deterministic sample files, customers.csv and products.csv, of any size. The shipped
// testdata is its output for 1,000 rows: go run ./cmd/gendata --rows 1000 testdata
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"hpnorton/internal/cli"
	"hpnorton/internal/gen"
)

const synopsis = "gendata [--rows N] [--bom] [--crlf] [--repeat-every N] DIR"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gendata", flag.ContinueOnError)
	err := cli.Guard(func() error { return generate(fs, args, stdout) })
	return cli.Exit(context.Background(), stdout, stderr, fs, synopsis, err)
}

func generate(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	rows := fs.Int("rows", 1000, "`N` records per file, from 1 to 10,000,000")
	var opt gen.Options
	fs.BoolVar(&opt.BOM, "bom", false, "start each file with a UTF-8 byte-order mark")
	fs.BoolVar(&opt.CRLF, "crlf", false, "end lines with CRLF")
	fs.IntVar(&opt.RepeatEvery, "repeat-every", 0, "give every `N`th record (3 or more) the key of an earlier one: 10 repeats 10% of keys; 0 repeats none")
	if err := cli.Parse(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() == 0:
		return &cli.UsageError{Msg: "missing DIR: the folder to write customers.csv and products.csv to"}
	case fs.NArg() > 1:
		return &cli.UsageError{Msg: fmt.Sprintf("one output folder expected, got %d arguments", fs.NArg())}
	case opt.RepeatEvery != 0 && opt.RepeatEvery < 3:
		return cli.Invalid(fs, "repeat-every", fmt.Sprintf("must be 0 or at least 3, got %d", opt.RepeatEvery))
	case *rows < 1 || *rows > gen.MaxRows:
		return cli.Invalid(fs, "rows", fmt.Sprintf("must be from 1 to 10,000,000, got %d", *rows))
	}
	if err := gen.WriteDir(fs.Arg(0), *rows, opt); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %d customers and %d products to %s\n", *rows, *rows, fs.Arg(0))
	return nil
}
