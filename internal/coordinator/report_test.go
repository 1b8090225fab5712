package coordinator

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func ExampleTuple() {
	results := []Tuple{{Processed: 1000, Before: 0, After: 1000, Seconds: 0.41}, {Processed: 0, Before: 1000, After: 1000, Seconds: 0.5}}
	b, _ := json.Marshal(results)
	fmt.Println(string(b))
	// Output: [[1000,0,1000,0.41],[0,1000,1000,0.5]]
}

func TestTupleRoundTrip(t *testing.T) {
	t.Parallel()
	in := []Tuple{{Processed: 3, Before: 7, After: 10, Seconds: 1.25}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out []Tuple
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-want, +got):\n%s", diff)
	}
	for _, bad := range []string{`[[1,2,3]]`, `[[1,2,3,4,5]]`, `[[1.5,2,3,4]]`, `[{"a":1}]`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("Unmarshal(%s) succeeded, want an error", bad)
		}
	}
}
