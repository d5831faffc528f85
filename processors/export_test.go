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

// QueuedRecords is the number of fetched records r's tasks hold, not yet
// processed.
func QueuedRecords(r *Runner) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, t := range r.tasks {
		for _, q := range t.queues {
			n += len(q.recs)
		}
	}
	return n
}
