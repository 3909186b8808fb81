package alerts

import (
	"testing"
	"time"
)

func TestHumanDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{0, "0 seconds"},
		{90 * time.Second, "90 seconds"},
		{5 * time.Minute, "5 minutes"},
		{time.Hour, "1 hour"},
		{36 * time.Hour, "36 hours"},
		{24 * time.Hour, "1 day"},
		{30 * 24 * time.Hour, "30 days"},
	} {
		if got := HumanDuration(tc.d); got != tc.want {
			t.Errorf("HumanDuration(%s) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
