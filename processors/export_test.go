package processors

import "time"

// SetMinCommitGap sets the least time between two caught-up commits for
// a test, before any runner starts; restore puts the default back once
// they have stopped.
func SetMinCommitGap(d time.Duration) (restore func()) {
	old := minCommitGap
	minCommitGap = d
	return func() { minCommitGap = old }
}
