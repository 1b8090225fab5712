package testenv

import "testing"

// TestVanishedQueue holds VanishedQueue to asynqmon's answer for a queue read after it was removed, as asynq's
// inspector words it, and to nothing else.
func TestVanishedQueue(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		body   string
		want   bool
	}{
		{500, `NOT_FOUND: queue "hpnorton_x" does not exist` + "\n", true},
		{500, "dial tcp 127.0.0.1:6379: connect: connection refused\n", false},
		{200, `{"queues":[]} queue does not exist`, false},
	} {
		if got := VanishedQueue(tc.status, []byte(tc.body)); got != tc.want {
			t.Errorf("VanishedQueue(%d, %q) = %v, want %v", tc.status, tc.body, got, tc.want)
		}
	}
}
