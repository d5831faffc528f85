// Package koji asks a Koji hub what Koji's bus messages do not say, and
// records the answer as an event at ingest time.
//
// # Why
//
// A build counts as signed with a key when every one of its artifacts
// is (processors/gating), so the processors must know the build's
// artifact list. No Koji bus message carries it: buildsys.build.state.change
// names the build only, and buildsys.rpm.sign names one RPM at a time,
// without saying how many there are. The artifact list lives in Koji's
// database; robosignatory, before it signs a build, asks the hub for it
// (robosignatory/utils.py get_rpms: listRPMs(build_id), then
// queryRPMSigs per RPM to skip the signed ones), as Fedora release
// engineering's sigulsign_unsigned.py does (listRPMs per build).
//
// The hub imports a build's RPMs in the same database transaction that
// makes it COMPLETE (kojihub.import_build, called by host.completeBuild),
// and its message plugins queue the state change message during the call
// and send it only after the commit (plugins/hub/protonmsg.py:
// send_queued_msgs on postCommit; Fedora's fedora-messaging plugin does
// the same). So once the COMPLETE message is out, listRPMs returns every
// RPM of the build, its source RPM included.
//
// # What this package does
//
// Client is a small XML-RPC client (encoding/xml, no dependency) for the
// two read-only calls needed: getBuild (kojihub.get_build: id, NVR,
// state) and listRPMs (kojihub.list_rpms: id, name, version, release,
// arch of every RPM). Calls are anonymous, bounded by a timeout, and
// read Koji's wire format: Python's xmlrpc marshaller with allow_none
// (<nil/>) and the i8 extension (koji/xmlrpcplus.py).
//
// Enricher is used by ingestion (`factory2 emit --message` and
// POST /api/v1/events?format=message), never by the processors: when a
// bus message says a build became COMPLETE, it asks the hub once and
// returns a build event listing the RPMs (named
// name-version-release.arch.rpm, as the sign messages name them), which
// ingestion produces after the message's own events. Its id is the
// COMPLETE event's id + "#rpms" and its content depends on the build
// only. It also asks, once per buildroot the build's RPMs were built in
// (their buildroot_id), for the RPMs installed in it (listRPMs with
// componentBuildrootID, passed positionally), and returns them as
// dependency edges build:NVR --buildroot--> rpm:<file name> (ids: the
// COMPLETE event's id + "#buildroot/" + the file name), what the
// dependency views need of a build's build-time dependencies, which no
// message carries either. So sending the message again gives the same
// events, a duplicate
// to the processors. The processors and a replay read that event from
// the log: no decision depends on Koji answering at the time.
//
// # Failures
//
// A call that fails transiently (the hub unreachable or timing out, HTTP
// 5xx or 429, the ServerOffline fault: what Koji's own client retries) is
// made again, up to EnricherConfig.Attempts times (3 by default) with a
// doubling backoff (1s, 2s). Any other failure (a fault such as an
// unknown build, a malformed answer, a build id that names another NVR)
// is not retried. A build that cannot be enriched keeps an unknown
// artifact list, which `factory2 why` reports; the COMPLETE event itself
// is always ingested first. Failures are counted in
// factory2_koji_enrichments_total{outcome="failed"}; every call in
// factory2_koji_calls_total{method,outcome} and every retry in
// factory2_koji_call_retries_total.
package koji
