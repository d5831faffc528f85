package ingest_test

import (
	"fmt"
	"time"

	"github.com/factory2/factory2/internal/ingest"
	"github.com/factory2/factory2/topics"
)

func ExampleParser_ParseJSON() {
	cat, err := topics.New(topics.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	p := &ingest.Parser{
		Catalog: cat,
		Source:  "ci", // for events without a source
		Now:     func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
	}
	events, err := p.ParseJSON([]byte(`
{"type":"build","source":"koji/primary","event_time":"2026-01-02T00:00:00Z","kind":"tag","nvr":"bash-5.2.26-3.fc41","tag":"f41-updates-candidate"}
{"type":"test_result","event_time":"2026-01-02T01:00:00Z","subject_type":"koji_build","subject_id":"bash-5.2.26-3.fc41","testcase":"tier0","outcome":"PASSED"}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, ev := range events {
		env := ev.Record.Env()
		fmt.Println(ev.Line, ev.Topic, ev.Key, env.Source, env.ID)
	}

	_, err = p.ParseJSON([]byte(`{"type":"sign","event_time":"2026-01-02T00:00:00Z","nvr":"bash-5.2.26-3.fc41","outcome":"signed"}`))
	fmt.Println(err)
	// Output:
	// 2 factory2.events.build bash-5.2.26-3.fc41 koji/primary sha256:d7d2b95495778e1e0f101ab8b897b13d
	// 3 factory2.events.test bash-5.2.26-3.fc41 ci sha256:388f1b09fcb5c547a4610973a556701e
	// ingest: line 1: sign: field "sigkey": missing
}
