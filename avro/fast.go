package avro

// Hand-written binary codecs for the CURRENT schema version of every record
// type: straight from the Go structs to Avro binary and back, with no maps,
// interfaces or reflection. Each function follows its .avsc field by field;
// TestFastPathMatchesGoavro proves on random records that these encode
// byte-for-byte what goavro encodes from the .avsc, and decode what goavro
// decodes, so the two cannot drift. When a schema gets a new version,
// change the functions here to match it (older versions are read through
// the resolver, which rewrites them into the current version's encoding).

// recordTag numbers the record types, for dispatch by type switch: calls
// through func values would make the encoder and decoder escape to the
// heap.
type recordTag uint8

const (
	tagBuildEvent recordTag = iota
	tagSignEvent
	tagTestResult
	tagWaiver
	tagRemoteRuleFile
	tagComposeEvent
	tagGatingDecision
	tagAutosignDecision
	tagSignedStatus
	tagComposeReadyDecision
	tagRebuildDecision
	tagComposeMember
	tagDependencyEdge
	numTags = iota
)

// tagOf returns the tag of r's type; false for nil and foreign records.
func tagOf(r Record) (recordTag, bool) {
	switch v := r.(type) {
	case *BuildEvent:
		return tagBuildEvent, v != nil
	case *SignEvent:
		return tagSignEvent, v != nil
	case *TestResult:
		return tagTestResult, v != nil
	case *Waiver:
		return tagWaiver, v != nil
	case *RemoteRuleFile:
		return tagRemoteRuleFile, v != nil
	case *ComposeEvent:
		return tagComposeEvent, v != nil
	case *GatingDecision:
		return tagGatingDecision, v != nil
	case *AutosignDecision:
		return tagAutosignDecision, v != nil
	case *SignedStatus:
		return tagSignedStatus, v != nil
	case *ComposeReadyDecision:
		return tagComposeReadyDecision, v != nil
	case *RebuildDecision:
		return tagRebuildDecision, v != nil
	case *ComposeMember:
		return tagComposeMember, v != nil
	case *DependencyEdge:
		return tagDependencyEdge, v != nil
	}
	return 0, false
}

// encodeRecord writes r, a non-nil contract record (see tagOf), with the
// current schema.
func encodeRecord(e *encoder, r Record) {
	switch v := r.(type) {
	case *BuildEvent:
		encBuildEvent(e, v)
	case *SignEvent:
		encSignEvent(e, v)
	case *TestResult:
		encTestResult(e, v)
	case *Waiver:
		encWaiver(e, v)
	case *RemoteRuleFile:
		encRemoteRuleFile(e, v)
	case *ComposeEvent:
		encComposeEvent(e, v)
	case *GatingDecision:
		encGatingDecision(e, v)
	case *AutosignDecision:
		encAutosignDecision(e, v)
	case *SignedStatus:
		encSignedStatus(e, v)
	case *ComposeReadyDecision:
		encComposeReadyDecision(e, v)
	case *RebuildDecision:
		encRebuildDecision(e, v)
	case *ComposeMember:
		encComposeMember(e, v)
	case *DependencyEdge:
		encDependencyEdge(e, v)
	}
}

// decodeRecord reads a record of type tag written with the current schema.
func decodeRecord(d *decoder, tag recordTag) Record {
	switch tag {
	case tagBuildEvent:
		v := new(BuildEvent)
		decBuildEvent(d, v)
		return v
	case tagSignEvent:
		v := new(SignEvent)
		decSignEvent(d, v)
		return v
	case tagTestResult:
		v := new(TestResult)
		decTestResult(d, v)
		return v
	case tagWaiver:
		v := new(Waiver)
		decWaiver(d, v)
		return v
	case tagRemoteRuleFile:
		v := new(RemoteRuleFile)
		decRemoteRuleFile(d, v)
		return v
	case tagComposeEvent:
		v := new(ComposeEvent)
		decComposeEvent(d, v)
		return v
	case tagGatingDecision:
		v := new(GatingDecision)
		decGatingDecision(d, v)
		return v
	case tagAutosignDecision:
		v := new(AutosignDecision)
		decAutosignDecision(d, v)
		return v
	case tagSignedStatus:
		v := new(SignedStatus)
		decSignedStatus(d, v)
		return v
	case tagComposeReadyDecision:
		v := new(ComposeReadyDecision)
		decComposeReadyDecision(d, v)
		return v
	case tagRebuildDecision:
		v := new(RebuildDecision)
		decRebuildDecision(d, v)
		return v
	case tagComposeMember:
		v := new(ComposeMember)
		decComposeMember(d, v)
		return v
	case tagDependencyEdge:
		v := new(DependencyEdge)
		decDependencyEdge(d, v)
		return v
	}
	return nil // unreachable: tags come from the catalog
}

// Fewest bytes one array item can take, to bound counts read from data.
const (
	minArtifactSize      = 4  // four strings
	minComposeItemSize   = 4  // four strings
	minRequirementSize   = 12 // eleven strings and a boolean
	minBlockerCountSize  = 2  // a string and a long
	minManifestEntrySize = 4  // three strings and an array
	minMemberTagSize     = 3  // two strings and a long
	minMemberGatingSize  = 6  // four strings and two booleans
	minStringSize        = 1
)

func encEnvelope(e *encoder, v *Envelope) {
	e.str(v.ID)
	e.str(v.Source)
	e.time("envelope.event_time", v.EventTime)
	e.time("envelope.ingest_time", v.IngestTime)
	e.str(v.Origin.Topic)
	e.str(v.Origin.MessageID)
}

func decEnvelope(d *decoder, v *Envelope) {
	v.ID = d.str("envelope.id")
	v.Source = d.str("envelope.source")
	v.EventTime = d.time("envelope.event_time")
	v.IngestTime = d.time("envelope.ingest_time")
	v.Origin.Topic = d.str("envelope.origin.topic")
	v.Origin.MessageID = d.str("envelope.origin.message_id")
}

func encStrings(e *encoder, l []string) {
	if len(l) > 0 {
		e.long(int64(len(l)))
		for _, s := range l {
			e.str(s)
		}
	}
	e.b = append(e.b, 0)
}

func decStrings(d *decoder, name string) []string {
	var l []string
	for n := d.blockLen(name, minStringSize); n > 0 && d.err == nil; n = d.blockLen(name, minStringSize) {
		if l == nil {
			l = make([]string, 0, n)
		}
		for range n {
			l = append(l, d.str(name))
		}
	}
	return l
}

func encArtifacts(e *encoder, l []Artifact) {
	if len(l) > 0 {
		e.long(int64(len(l)))
		for i := range l {
			a := &l[i]
			e.str(a.ID)
			e.str(a.Name)
			e.str(a.Type)
			e.str(a.Arch)
		}
	}
	e.b = append(e.b, 0)
}

func decArtifacts(d *decoder, name string) []Artifact {
	ok := d.err == nil
	var l []Artifact
	for n := d.blockLen(name, minArtifactSize); n > 0 && d.err == nil; n = d.blockLen(name, minArtifactSize) {
		if l == nil {
			l = make([]Artifact, 0, n)
		}
		for range n {
			l = append(l, Artifact{
				ID:   d.str("id"),
				Name: d.str("name"),
				Type: d.str("type"),
				Arch: d.str("arch"),
			})
		}
	}
	if ok && d.err != nil {
		d.nested(name)
	}
	return l
}

func encComposeItems(e *encoder, l []ComposeItem) {
	if len(l) > 0 {
		e.long(int64(len(l)))
		for i := range l {
			c := &l[i]
			e.str(c.SubjectType)
			e.str(c.SubjectID)
			e.str(c.Variant)
			e.str(c.Arch)
		}
	}
	e.b = append(e.b, 0)
}

func decComposeItems(d *decoder, name string) []ComposeItem {
	ok := d.err == nil
	var l []ComposeItem
	for n := d.blockLen(name, minComposeItemSize); n > 0 && d.err == nil; n = d.blockLen(name, minComposeItemSize) {
		if l == nil {
			l = make([]ComposeItem, 0, n)
		}
		for range n {
			l = append(l, ComposeItem{
				SubjectType: d.str("subject_type"),
				SubjectID:   d.str("subject_id"),
				Variant:     d.str("variant"),
				Arch:        d.str("arch"),
			})
		}
	}
	if ok && d.err != nil {
		d.nested(name)
	}
	return l
}

func encRequirements(e *encoder, l []Requirement) {
	if len(l) > 0 {
		e.long(int64(len(l)))
		for i := range l {
			r := &l[i]
			e.str(r.Type)
			e.str(r.Testcase)
			e.str(r.Scenario)
			e.str(r.SystemArch)
			e.str(r.SystemVariant)
			e.str(r.SubjectType)
			e.str(r.SubjectID)
			e.str(r.ResultID)
			e.str(r.WaiverID)
			e.boolean(r.Pending)
			e.str(r.Source)
			e.str(r.Detail)
		}
	}
	e.b = append(e.b, 0)
}

func decRequirements(d *decoder, name string) []Requirement {
	ok := d.err == nil
	var l []Requirement
	for n := d.blockLen(name, minRequirementSize); n > 0 && d.err == nil; n = d.blockLen(name, minRequirementSize) {
		if l == nil {
			l = make([]Requirement, 0, n)
		}
		for range n {
			l = append(l, Requirement{
				Type:          d.str("type"),
				Testcase:      d.str("testcase"),
				Scenario:      d.str("scenario"),
				SystemArch:    d.str("system_arch"),
				SystemVariant: d.str("system_variant"),
				SubjectType:   d.str("subject_type"),
				SubjectID:     d.str("subject_id"),
				ResultID:      d.str("result_id"),
				WaiverID:      d.str("waiver_id"),
				Pending:       d.boolean("pending"),
				Source:        d.str("source"),
				Detail:        d.str("detail"),
			})
		}
	}
	if ok && d.err != nil {
		d.nested(name)
	}
	return l
}

func encComposeCadence(e *encoder, v *ComposeCadence) {
	e.long(v.MinIntervalMS)
	e.str(v.WindowStart)
	e.str(v.WindowEnd)
}

func decComposeCadence(d *decoder, v *ComposeCadence, name string) {
	ok := d.err == nil
	v.MinIntervalMS = d.long("min_interval_ms")
	v.WindowStart = d.str("window_start")
	v.WindowEnd = d.str("window_end")
	if ok && d.err != nil {
		d.nested(name)
	}
}

func encBlockerCounts(e *encoder, l []BlockerCount) {
	if len(l) > 0 {
		e.long(int64(len(l)))
		for i := range l {
			b := &l[i]
			e.str(b.Type)
			e.long(b.Count)
		}
	}
	e.b = append(e.b, 0)
}

func decBlockerCounts(d *decoder, name string) []BlockerCount {
	ok := d.err == nil
	var l []BlockerCount
	for n := d.blockLen(name, minBlockerCountSize); n > 0 && d.err == nil; n = d.blockLen(name, minBlockerCountSize) {
		if l == nil {
			l = make([]BlockerCount, 0, n)
		}
		for range n {
			l = append(l, BlockerCount{
				Type:  d.str("type"),
				Count: d.long("count"),
			})
		}
	}
	if ok && d.err != nil {
		d.nested(name)
	}
	return l
}

func encManifest(e *encoder, l []ManifestEntry) {
	if len(l) > 0 {
		e.long(int64(len(l)))
		for i := range l {
			m := &l[i]
			e.str(m.NVR)
			e.str(m.Package)
			e.str(m.KeyID)
			encStrings(e, m.DecisionIDs)
		}
	}
	e.b = append(e.b, 0)
}

func decManifest(d *decoder, name string) []ManifestEntry {
	ok := d.err == nil
	var l []ManifestEntry
	for n := d.blockLen(name, minManifestEntrySize); n > 0 && d.err == nil; n = d.blockLen(name, minManifestEntrySize) {
		if l == nil {
			l = make([]ManifestEntry, 0, n)
		}
		for range n {
			l = append(l, ManifestEntry{
				NVR:         d.str("nvr"),
				Package:     d.str("package"),
				KeyID:       d.str("key_id"),
				DecisionIDs: decStrings(d, "decision_ids"),
			})
		}
	}
	if ok && d.err != nil {
		d.nested(name)
	}
	return l
}

func encMemberTags(e *encoder, l []MemberTag) {
	if len(l) > 0 {
		e.long(int64(len(l)))
		for i := range l {
			m := &l[i]
			e.str(m.Tag)
			e.long(m.Order)
			e.str(m.EventID)
		}
	}
	e.b = append(e.b, 0)
}

func decMemberTags(d *decoder, name string) []MemberTag {
	ok := d.err == nil
	var l []MemberTag
	for n := d.blockLen(name, minMemberTagSize); n > 0 && d.err == nil; n = d.blockLen(name, minMemberTagSize) {
		if l == nil {
			l = make([]MemberTag, 0, n)
		}
		for range n {
			l = append(l, MemberTag{
				Tag:     d.str("tag"),
				Order:   d.long("order"),
				EventID: d.str("event_id"),
			})
		}
	}
	if ok && d.err != nil {
		d.nested(name)
	}
	return l
}

func encMemberGatings(e *encoder, l []MemberGating) {
	if len(l) > 0 {
		e.long(int64(len(l)))
		for i := range l {
			g := &l[i]
			e.str(g.DecisionContext)
			e.str(g.ProductVersion)
			e.boolean(g.Satisfied)
			e.boolean(g.Pending)
			e.str(g.DecisionID)
			e.str(g.Summary)
		}
	}
	e.b = append(e.b, 0)
}

func decMemberGatings(d *decoder, name string) []MemberGating {
	ok := d.err == nil
	var l []MemberGating
	for n := d.blockLen(name, minMemberGatingSize); n > 0 && d.err == nil; n = d.blockLen(name, minMemberGatingSize) {
		if l == nil {
			l = make([]MemberGating, 0, n)
		}
		for range n {
			l = append(l, MemberGating{
				DecisionContext: d.str("decision_context"),
				ProductVersion:  d.str("product_version"),
				Satisfied:       d.boolean("satisfied"),
				Pending:         d.boolean("pending"),
				DecisionID:      d.str("decision_id"),
				Summary:         d.str("summary"),
			})
		}
	}
	if ok && d.err != nil {
		d.nested(name)
	}
	return l
}

// encDecision writes the fields every decision starts with.
func encDecision(e *encoder, v *Decision) {
	encEnvelope(e, &v.Envelope)
	e.str(v.PolicyVersion)
	encStrings(e, v.DerivedFrom)
	encRequirements(e, v.Satisfied)
	encRequirements(e, v.Unsatisfied)
}

func decDecision(d *decoder, v *Decision) {
	decEnvelope(d, &v.Envelope)
	v.PolicyVersion = d.str("policy_version")
	v.DerivedFrom = decStrings(d, "derived_from")
	v.Satisfied = decRequirements(d, "satisfied")
	v.Unsatisfied = decRequirements(d, "unsatisfied")
}

func encBuildEvent(e *encoder, v *BuildEvent) {
	encEnvelope(e, &v.Envelope)
	e.str(v.Kind)
	e.str(v.NVR)
	e.str(v.Name)
	e.str(v.Version)
	e.str(v.Release)
	e.str(v.Epoch)
	e.long(v.BuildID)
	e.long(v.TaskID)
	e.str(v.Owner)
	e.str(v.Instance)
	e.str(v.State)
	e.str(v.OldState)
	e.str(v.Tag)
	e.str(v.TagUser)
	e.time("creation_time", v.CreationTime)
	e.time("completion_time", v.CompletionTime)
	e.str(v.SourceURL)
	e.str(v.SourceCommit)
	encArtifacts(e, v.Artifacts)
	encStrings(e, v.Buildroot)
}

func decBuildEvent(d *decoder, v *BuildEvent) {
	decEnvelope(d, &v.Envelope)
	v.Kind = d.str("kind")
	v.NVR = d.str("nvr")
	v.Name = d.str("name")
	v.Version = d.str("version")
	v.Release = d.str("release")
	v.Epoch = d.str("epoch")
	v.BuildID = d.long("build_id")
	v.TaskID = d.long("task_id")
	v.Owner = d.str("owner")
	v.Instance = d.str("instance")
	v.State = d.str("state")
	v.OldState = d.str("old_state")
	v.Tag = d.str("tag")
	v.TagUser = d.str("tag_user")
	v.CreationTime = d.time("creation_time")
	v.CompletionTime = d.time("completion_time")
	v.SourceURL = d.str("source_url")
	v.SourceCommit = d.str("source_commit")
	v.Artifacts = decArtifacts(d, "artifacts")
	v.Buildroot = decStrings(d, "buildroot")
}

func encSignEvent(e *encoder, v *SignEvent) {
	encEnvelope(e, &v.Envelope)
	e.str(v.NVR)
	e.long(v.BuildID)
	e.str(v.SigKey)
	e.str(v.SigHash)
	encArtifacts(e, v.Artifacts)
	e.str(v.Signer)
	e.str(v.Outcome)
	e.str(v.Instance)
}

func decSignEvent(d *decoder, v *SignEvent) {
	decEnvelope(d, &v.Envelope)
	v.NVR = d.str("nvr")
	v.BuildID = d.long("build_id")
	v.SigKey = d.str("sigkey")
	v.SigHash = d.str("sighash")
	v.Artifacts = decArtifacts(d, "artifacts")
	v.Signer = d.str("signer")
	v.Outcome = d.str("outcome")
	v.Instance = d.str("instance")
}

func encTestResult(e *encoder, v *TestResult) {
	encEnvelope(e, &v.Envelope)
	e.str(v.ResultID)
	e.str(v.Testcase)
	e.str(v.Outcome)
	e.str(v.Scenario)
	e.str(v.SystemArch)
	e.str(v.SystemVariant)
	e.str(v.SubjectType)
	e.str(v.SubjectID)
	e.str(v.RefURL)
	e.str(v.Note)
	e.str(v.ErrorReason)
	e.time("submit_time", v.SubmitTime)
}

func decTestResult(d *decoder, v *TestResult) {
	decEnvelope(d, &v.Envelope)
	v.ResultID = d.str("result_id")
	v.Testcase = d.str("testcase")
	v.Outcome = d.str("outcome")
	v.Scenario = d.str("scenario")
	v.SystemArch = d.str("system_arch")
	v.SystemVariant = d.str("system_variant")
	v.SubjectType = d.str("subject_type")
	v.SubjectID = d.str("subject_id")
	v.RefURL = d.str("ref_url")
	v.Note = d.str("note")
	v.ErrorReason = d.str("error_reason")
	v.SubmitTime = d.time("submit_time")
}

func encWaiver(e *encoder, v *Waiver) {
	encEnvelope(e, &v.Envelope)
	e.str(v.WaiverID)
	e.str(v.SubjectType)
	e.str(v.SubjectID)
	e.str(v.Testcase)
	e.optStr(v.Scenario)
	e.str(v.ProductVersion)
	e.boolean(v.Waived)
	e.str(v.User)
	e.str(v.ProxiedBy)
	e.str(v.Comment)
}

func decWaiver(d *decoder, v *Waiver) {
	decEnvelope(d, &v.Envelope)
	v.WaiverID = d.str("waiver_id")
	v.SubjectType = d.str("subject_type")
	v.SubjectID = d.str("subject_id")
	v.Testcase = d.str("testcase")
	v.Scenario = d.optStr("scenario")
	v.ProductVersion = d.str("product_version")
	v.Waived = d.boolean("waived")
	v.User = d.str("user")
	v.ProxiedBy = d.str("proxied_by")
	v.Comment = d.str("comment")
}

func encRemoteRuleFile(e *encoder, v *RemoteRuleFile) {
	encEnvelope(e, &v.Envelope)
	e.str(v.SubjectType)
	e.str(v.SubjectID)
	e.str(v.SourceURL)
	e.str(v.SourceCommit)
	e.str(v.Path)
	e.str(v.Content)
	e.boolean(v.Missing)
	e.str(v.FetchError)
}

func decRemoteRuleFile(d *decoder, v *RemoteRuleFile) {
	decEnvelope(d, &v.Envelope)
	v.SubjectType = d.str("subject_type")
	v.SubjectID = d.str("subject_id")
	v.SourceURL = d.str("source_url")
	v.SourceCommit = d.str("source_commit")
	v.Path = d.str("path")
	v.Content = d.str("content")
	v.Missing = d.boolean("missing")
	v.FetchError = d.str("fetch_error")
}

func encComposeEvent(e *encoder, v *ComposeEvent) {
	encEnvelope(e, &v.Envelope)
	e.str(v.Kind)
	e.str(v.ComposeID)
	e.str(v.Status)
	e.str(v.Location)
	e.str(v.Release)
	encComposeItems(e, v.Contents)
	e.str(v.ProductVersion)
	encStrings(e, v.SourceTags)
	encStrings(e, v.PackagesAllow)
	encStrings(e, v.PackagesDeny)
	e.str(v.SigningKey)
	encStrings(e, v.DecisionContexts)
	encComposeCadence(e, &v.Cadence)
	e.boolean(v.Retired)
}

func decComposeEvent(d *decoder, v *ComposeEvent) {
	decEnvelope(d, &v.Envelope)
	v.Kind = d.str("kind")
	v.ComposeID = d.str("compose_id")
	v.Status = d.str("status")
	v.Location = d.str("location")
	v.Release = d.str("release")
	v.Contents = decComposeItems(d, "contents")
	v.ProductVersion = d.str("product_version")
	v.SourceTags = decStrings(d, "source_tags")
	v.PackagesAllow = decStrings(d, "packages_allow")
	v.PackagesDeny = decStrings(d, "packages_deny")
	v.SigningKey = d.str("signing_key")
	v.DecisionContexts = decStrings(d, "decision_contexts")
	decComposeCadence(d, &v.Cadence, "cadence")
	v.Retired = d.boolean("retired")
}

func encGatingDecision(e *encoder, v *GatingDecision) {
	encDecision(e, &v.Decision)
	e.str(v.SubjectType)
	e.str(v.SubjectID)
	e.str(v.DecisionContext)
	e.str(v.ProductVersion)
	e.boolean(v.PoliciesSatisfied)
	e.str(v.Summary)
	encStrings(e, v.AppliedPolicies)
	if p := v.Previous; p == nil {
		e.b = append(e.b, 0)
	} else {
		e.b = append(e.b, 2) // branch 1: PreviousGating
		e.boolean(p.PoliciesSatisfied)
		e.str(p.Summary)
		encRequirements(e, p.Satisfied)
		encRequirements(e, p.Unsatisfied)
	}
}

func decGatingDecision(d *decoder, v *GatingDecision) {
	decDecision(d, &v.Decision)
	v.SubjectType = d.str("subject_type")
	v.SubjectID = d.str("subject_id")
	v.DecisionContext = d.str("decision_context")
	v.ProductVersion = d.str("product_version")
	v.PoliciesSatisfied = d.boolean("policies_satisfied")
	v.Summary = d.str("summary")
	v.AppliedPolicies = decStrings(d, "applied_policies")
	if d.unionIndex("previous", 2) == 1 && d.err == nil {
		p := &PreviousGating{
			PoliciesSatisfied: d.boolean("policies_satisfied"),
			Summary:           d.str("summary"),
			Satisfied:         decRequirements(d, "satisfied"),
			Unsatisfied:       decRequirements(d, "unsatisfied"),
		}
		if d.err != nil { // started inside: d.err was nil above
			d.nested("previous")
		}
		v.Previous = p
	}
}

func encAutosignDecision(e *encoder, v *AutosignDecision) {
	encDecision(e, &v.Decision)
	e.str(v.Action)
	e.str(v.NVR)
	e.long(v.BuildID)
	e.str(v.Key)
	e.str(v.KeyID)
	e.str(v.FromTag)
	e.str(v.ToTag)
	encArtifacts(e, v.Unsigned)
	e.str(v.IdempotencyKey)
	e.int(v.Priority)
	e.str(v.Rule)
}

func decAutosignDecision(d *decoder, v *AutosignDecision) {
	decDecision(d, &v.Decision)
	v.Action = d.str("action")
	v.NVR = d.str("nvr")
	v.BuildID = d.long("build_id")
	v.Key = d.str("key")
	v.KeyID = d.str("key_id")
	v.FromTag = d.str("from_tag")
	v.ToTag = d.str("to_tag")
	v.Unsigned = decArtifacts(d, "unsigned")
	v.IdempotencyKey = d.str("idempotency_key")
	v.Priority = d.int("priority")
	v.Rule = d.str("rule")
}

func encSignedStatus(e *encoder, v *SignedStatus) {
	encDecision(e, &v.Decision)
	e.str(v.NVR)
	e.long(v.BuildID)
	e.str(v.KeyID)
	e.boolean(v.Signed)
	encArtifacts(e, v.Artifacts)
}

func decSignedStatus(d *decoder, v *SignedStatus) {
	decDecision(d, &v.Decision)
	v.NVR = d.str("nvr")
	v.BuildID = d.long("build_id")
	v.KeyID = d.str("key_id")
	v.Signed = d.boolean("signed")
	v.Artifacts = decArtifacts(d, "artifacts")
}

func encComposeReadyDecision(e *encoder, v *ComposeReadyDecision) {
	encDecision(e, &v.Decision)
	e.str(v.ComposeID)
	e.boolean(v.Ready)
	e.str(v.DecisionContext)
	e.str(v.ProductVersion)
	e.str(v.Summary)
	e.str(v.Kind)
	e.str(v.Status)
	e.str(v.ContentDigest)
	e.long(v.Members)
	encBlockerCounts(e, v.BlockerCounts)
	encManifest(e, v.Manifest)
}

func decComposeReadyDecision(d *decoder, v *ComposeReadyDecision) {
	decDecision(d, &v.Decision)
	v.ComposeID = d.str("compose_id")
	v.Ready = d.boolean("ready")
	v.DecisionContext = d.str("decision_context")
	v.ProductVersion = d.str("product_version")
	v.Summary = d.str("summary")
	v.Kind = d.str("kind")
	v.Status = d.str("status")
	v.ContentDigest = d.str("content_digest")
	v.Members = d.long("members")
	v.BlockerCounts = decBlockerCounts(d, "blocker_counts")
	v.Manifest = decManifest(d, "manifest")
}

func encRebuildDecision(e *encoder, v *RebuildDecision) {
	encDecision(e, &v.Decision)
	e.str(v.SubjectType)
	e.str(v.SubjectID)
	e.str(v.TriggerType)
	e.str(v.TriggerID)
	e.str(v.Relation)
	e.str(v.Reason)
	e.int(v.Priority)
}

func decRebuildDecision(d *decoder, v *RebuildDecision) {
	decDecision(d, &v.Decision)
	v.SubjectType = d.str("subject_type")
	v.SubjectID = d.str("subject_id")
	v.TriggerType = d.str("trigger_type")
	v.TriggerID = d.str("trigger_id")
	v.Relation = d.str("relation")
	v.Reason = d.str("reason")
	v.Priority = d.int("priority")
}

func encComposeMember(e *encoder, v *ComposeMember) {
	encEnvelope(e, &v.Envelope)
	e.str(v.ComposeID)
	e.str(v.NVR)
	e.str(v.Package)
	e.long(v.BuildID)
	e.str(v.State)
	e.long(v.Seq)
	encMemberTags(e, v.Tags)
	encStrings(e, v.SignedKeys)
	encMemberGatings(e, v.Gating)
	e.str(v.DefinitionID)
	e.int(v.Partition)
}

func decComposeMember(d *decoder, v *ComposeMember) {
	decEnvelope(d, &v.Envelope)
	v.ComposeID = d.str("compose_id")
	v.NVR = d.str("nvr")
	v.Package = d.str("package")
	v.BuildID = d.long("build_id")
	v.State = d.str("state")
	v.Seq = d.long("seq")
	v.Tags = decMemberTags(d, "tags")
	v.SignedKeys = decStrings(d, "signed_keys")
	v.Gating = decMemberGatings(d, "gating")
	v.DefinitionID = d.str("definition_id")
	v.Partition = d.int("partition")
}

func encDependencyEdge(e *encoder, v *DependencyEdge) {
	encEnvelope(e, &v.Envelope)
	e.str(v.FromType)
	e.str(v.FromID)
	e.str(v.Relation)
	e.str(v.ToType)
	e.str(v.ToID)
	e.boolean(v.Removed)
}

func decDependencyEdge(d *decoder, v *DependencyEdge) {
	decEnvelope(d, &v.Envelope)
	v.FromType = d.str("from_type")
	v.FromID = d.str("from_id")
	v.Relation = d.str("relation")
	v.ToType = d.str("to_type")
	v.ToID = d.str("to_id")
	v.Removed = d.boolean("removed")
}
