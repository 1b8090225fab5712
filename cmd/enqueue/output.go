package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"hpnorton/internal/coordinator"
	"hpnorton/internal/record"
)

// printRuns writes runs as a table of 80 columns, or as JSON, one array. No line ends in spaces: the last column
// is not padded.
func printRuns(w io.Writer, runs []coordinator.RunInfo, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(runs)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "run\tstate\tstarted (UTC)\tcustomers\tproducts")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s", r.RunID, r.State, r.StartedAt.Format("2006-01-02 15:04:05"))
		for _, f := range r.Files {
			fmt.Fprintf(tw, "\t%d+%d", f.Added, f.Present)
		}
		fmt.Fprintln(tw)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "customers and products: rows added + present by the tasks that committed")
	return nil
}

// refusal is what --strict --json prints when the check found problems. Nothing was enqueued, so there is no run:
// no run ID, results key, tuples or workers. Each file's counts are its reading's: valid rows are those a run
// would have sent.
type refusal struct {
	Enqueued     bool             `json:"enqueued"`
	Reason       string           `json:"reason"`
	Dir          string           `json:"dir"`
	Files        []checkedFile    `json:"files"`
	Problems     []record.Problem `json:"problems"`
	ProblemCount int              `json:"problem_count"`
}

type checkedFile struct {
	Kind     string `json:"kind"`
	File     string `json:"file"`
	Error    string `json:"error,omitempty"`
	Lines    int64  `json:"lines"`
	Blank    int64  `json:"blank,omitempty"`
	Read     int64  `json:"read"`
	Valid    int64  `json:"valid"`
	Rejected int64  `json:"rejected"`
}

// refuse ends a --strict run that found problems: it reports each file's counts and the problems, and says that
// nothing was enqueued.
func refuse(stdout io.Writer, dir string, rep *coordinator.Report, asJSON bool, rejects *rejectsFile) error {
	if err := rejects.close(); err != nil {
		return err
	}
	reason := fmt.Sprintf("--strict: nothing was enqueued; %s holds rows or files that would be rejected", dir)
	doc := refusal{Reason: reason, Dir: dir, Files: []checkedFile{}, Problems: rep.Problems, ProblemCount: rep.ProblemCount}
	for _, f := range rep.Files {
		doc.Files = append(doc.Files, checkedFile{Kind: f.Kind, File: f.File, Error: f.Error, Lines: f.Lines, Blank: f.Blank,
			Read: f.Read, Valid: f.Read - f.Rejected, Rejected: f.Rejected})
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(doc)
	}
	fmt.Fprintf(stdout, "%s\n\n", reason)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "file\tlines\tread\tvalid\trejected\t")
	for _, f := range doc.Files {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t\n", f.File, f.Lines, f.Read, f.Valid, f.Rejected)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	printProblems(stdout, rep, rejects.path())
	return nil
}

// headline is the report's first line: the run, its mode, how many tasks and which workers took them, its time
// and its results key. Only the workers that took one of the run's tasks are counted, and said to be so: others
// may have served the queue and found nothing left.
func headline(rep *coordinator.Report) string {
	tasks := 0
	for _, f := range rep.Files {
		tasks += f.Tasks
	}
	took := "no tasks"
	if tasks > 0 {
		took = fmt.Sprintf("%s taken by %s", coordinator.Plural(tasks, "task"), coordinator.Plural(len(rep.Workers), "worker"))
	}
	return fmt.Sprintf("run %s: %s, %s, %.3f s; results in Redis at %s", rep.RunID, rep.Mode, took, rep.Seconds, rep.ResultsKey)
}

// printTable writes the report for a person: the tuples first, then the per-file account and the first problems.
// rejectsPath is the --rejects file, if one was given.
func printTable(w io.Writer, rep *coordinator.Report, rejectsPath string) error {
	tuples, err := json.Marshal(rep.Results)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, headline(rep))
	fmt.Fprintf(w, "results (processed, before, after, seconds): %s\n\n", tuples)
	// The counts before and after are in the tuples above; without them the table fits 80 columns for files of
	// millions of rows.
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "file\tlines\tread\tadded\tpresent\trejected\tseconds\ttasks\t")
	for _, f := range rep.Files {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%.3f\t%d\t\n", f.File, f.Lines, f.Read, f.Added, f.Present, f.Rejected, f.Seconds, f.Tasks)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rep.Update {
		// Update mode splits the present rows; a line a file keeps the table within 80 columns.
		for _, f := range rep.Files {
			fmt.Fprintf(w, "  %s: of %d present, %d updated, %d unchanged\n", f.File, f.Present, f.Updated, f.Unchanged)
		}
	}
	printProblems(w, rep, rejectsPath)
	return nil
}

// printProblems lists the first problems of a report, if it has any, and says where the rest are: in the
// --rejects file when one was given, or how to get them.
func printProblems(w io.Writer, rep *coordinator.Report, rejectsPath string) {
	if rep.ProblemCount == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", coordinator.Plural(rep.ProblemCount, "problem"))
	for i, p := range rep.Problems {
		if i == shownProblems {
			break
		}
		fmt.Fprintf(w, "  %s\n", p)
	}
	more := rep.ProblemCount - min(len(rep.Problems), shownProblems)
	switch {
	case more > 0 && rejectsPath != "":
		fmt.Fprintf(w, "  … and %d more; %s lists all %d\n", more, rejectsPath, rep.ProblemCount)
	case more > 0:
		fmt.Fprintf(w, "  … and %d more; --rejects FILE writes them all to FILE\n", more)
	case rejectsPath != "":
		fmt.Fprintf(w, "  (also in %s)\n", rejectsPath)
	}
}
