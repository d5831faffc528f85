package avro_test

import (
	"fmt"
	"log"
	"time"

	"github.com/factory2/factory2/avro"
)

func ExampleCodec() {
	c, err := avro.NewCodec()
	if err != nil {
		log.Fatal(err)
	}
	b, err := c.Encode(&avro.BuildEvent{
		Envelope: avro.Envelope{ID: "koji-1", Source: "koji/primary", EventTime: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)},
		Kind:     avro.BuildTag,
		NVR:      "bash-5.2.26-3.fc41",
		Tag:      "f41-updates-candidate",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("single-object encoding: % x ... (%d bytes)\n", b[:2], len(b))

	r, err := c.Decode(b)
	if err != nil {
		log.Fatal(err)
	}
	ev := r.(*avro.BuildEvent)
	fmt.Println(avro.TypeName(r), ev.NVR, ev.Tag, ev.EventTime)
	// Output:
	// single-object encoding: c3 01 ... (104 bytes)
	// build bash-5.2.26-3.fc41 f41-updates-candidate 2024-05-01 12:00:00 +0000 UTC
}

func ExampleMarshalJSON() {
	w := &avro.Waiver{
		Envelope:       avro.Envelope{ID: "waiverdb-77", Source: "waiverdb"},
		SubjectType:    "koji_build",
		SubjectID:      "bash-5.2.26-3.fc41",
		Testcase:       "fedora-ci.koji-build.tier0.functional",
		ProductVersion: "fedora-41",
		Waived:         true,
	}
	b, err := avro.MarshalJSON(w)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(b))

	r, err := avro.UnmarshalJSON(b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(r.SchemaName(), r.(*avro.Waiver).Scenario == nil)
	// Output:
	// {"type":"waiver","id":"waiverdb-77","source":"waiverdb","event_time":"0001-01-01T00:00:00Z","ingest_time":"0001-01-01T00:00:00Z","origin":{},"waiver_id":"","subject_type":"koji_build","subject_id":"bash-5.2.26-3.fc41","testcase":"fedora-ci.koji-build.tier0.functional","scenario":null,"product_version":"fedora-41","waived":true}
	// org.factory2.Waiver true
}

func ExampleSchema() {
	si, err := avro.Schema("build")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(si.Name, "v", si.Current.Version, "of", len(si.Versions))
	// Output:
	// org.factory2.BuildEvent v 1 of 1
}
