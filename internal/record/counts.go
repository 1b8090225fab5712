package record

// Counts is what became of records: of a task's, a file's or a worker's. Each count has one source. The
// enqueuer's reading sets Read and Rejected: it reads every record, and rejects the bad ones and the repeats of a
// key before any is sent. The load in MySQL sets Added and Present (repo.DB.ImportTask). Summed over a file's
// tasks and its reading, Read = Added + Present + Rejected.
//
// In update mode the load also splits Present: Updated rows held other values and took the file's, Unchanged ones
// held the same; Present = Updated + Unchanged. Outside it both stay zero.
type Counts struct {
	Read      int64 `json:"read"`
	Added     int64 `json:"added"`
	Present   int64 `json:"present"`
	Rejected  int64 `json:"rejected"`
	Updated   int64 `json:"updated,omitempty"`
	Unchanged int64 `json:"unchanged,omitempty"`
}

// Plus returns the sum of c and o, count by count.
func (c Counts) Plus(o Counts) Counts {
	return Counts{Read: c.Read + o.Read, Added: c.Added + o.Added, Present: c.Present + o.Present, Rejected: c.Rejected + o.Rejected,
		Updated: c.Updated + o.Updated, Unchanged: c.Unchanged + o.Unchanged}
}

// Balanced reports whether every record read is accounted for: added, present or rejected.
func (c Counts) Balanced() bool { return c.Read == c.Added+c.Present+c.Rejected }
