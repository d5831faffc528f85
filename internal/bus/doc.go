// Package bus translates messages from the build pipeline's message buses
// (Fedora's fedora-messaging and its fedmsg predecessor, Red Hat's UMB)
// into factory2 events (the types of package avro).
//
// Translation has two steps. ParseMessage takes the bytes of one message
// as captured from a bus, a datagrepper dump or a file and finds its topic,
// id, headers, send time and body, whatever the envelope. Translate maps a
// Message to the events it states, dispatching on the topic's suffix, so
// that "org.fedoraproject.prod.buildsys.tag", "org.fedoraproject.stg.buildsys.tag"
// and a bare "buildsys.tag" are the same kind of message.
//
// Translated messages:
//
//	buildsys.build.state.change                      Koji build state change -> avro.BuildEvent
//	buildsys.tag, buildsys.untag                     Koji tag/untag -> avro.BuildEvent
//	buildsys.rpm.sign                                Koji RPM signed -> avro.SignEvent
//	brew.build.{building,complete,failed,deleted,canceled},
//	brew.build.tag, brew.build.untag, brew.sign.rpm  the same from Brew on UMB
//	resultsdb.result.new, taskotron.result.new       test result -> avro.TestResult
//	waiverdb.waiver.new                              waiver -> avro.Waiver
//	pungi.compose.status.change, pungi.status-change compose status -> avro.ComposeEvent
//
// Translate is a pure function of the message and the ingest time it is
// given: the same message always yields records with the same IDs (the
// message id, or a hash of topic and canonical body), so the IDs serve as
// idempotency keys downstream. A record's EventTime comes from the message
// itself whenever the message carries a time; only a message with no time
// at all gets the ingest time.
//
// Problems with a message's content are reported as a *FieldError naming
// the field; topics the package does not translate as ErrUnknownTopic;
// bytes that are not a message as ErrMalformed. Nothing here panics on
// unexpected JSON.
package bus
