package bus_test

import (
	"fmt"
	"time"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/bus"
)

func ExampleTranslate() {
	// A Koji tag message in the fedmsg form datagrepper serves.
	data := []byte(`{
		"topic": "org.fedoraproject.prod.buildsys.tag",
		"msg_id": "2013-0f6c6dbd-8e8c-4c24-a1f4-a73d9c2d8a69",
		"timestamp": 1359603469.2116399,
		"msg": {"name": "stage", "version": "4.1.1", "release": "3.fc18", "tag": "f18-updates-testing-pending",
		        "tag_id": 216, "user": "bodhi", "owner": "ralph"}
	}`)
	m, err := bus.ParseMessage(data, "")
	if err != nil {
		fmt.Println(err)
		return
	}
	recs, err := bus.Translate(m, time.Now())
	if err != nil {
		fmt.Println(err)
		return
	}
	ev := recs[0].(*avro.BuildEvent)
	fmt.Println(ev.Kind, ev.NVR, ev.Tag, ev.TagUser)
	fmt.Println("key:", bus.Key(ev))
	fmt.Println("id:", ev.ID)
	fmt.Println("source:", ev.Source, "at", ev.EventTime.Format(time.RFC3339))
	// Output:
	// tag stage-4.1.1-3.fc18 f18-updates-testing-pending bodhi
	// key: stage-4.1.1-3.fc18
	// id: 2013-0f6c6dbd-8e8c-4c24-a1f4-a73d9c2d8a69
	// source: koji/primary at 2013-01-31T03:37:49Z
}
