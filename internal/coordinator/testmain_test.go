package coordinator

import (
	"testing"

	"hpnorton/internal/testenv"
)

// TestMain gives back the package's test database of Redis when its tests end.
func TestMain(m *testing.M) { testenv.Main(m) }
