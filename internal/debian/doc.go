// Package debian turns a Debian distribution's binary package index, the
// Packages file apt keeps for every configured repository, into dependency
// edges (avro.DependencyEdge): the graph of a real distribution, about
// 63,000 binary packages and several hundred thousand edges for one
// release's main component, with the real popularity skew (libc6 has
// thousands of direct dependents, most packages have none).
//
// The steps are separate so that each can be used alone:
//
//	Indexes   asks apt (`apt-get indextargets`) which Packages indexes the
//	          machine has, with their local files, codename, architecture
//	          and date (the Date of the repository's InRelease/Release).
//	Open      reads an index file, decompressing it by its extension (.lz4
//	          with the lz4 tool, .xz/.lzma with xz, .zst with zstd, .gz and
//	          .bz2 in process, anything else as plain text).
//	Scanner   parses the Packages format (deb822 stanzas) into Packages,
//	          streaming: one stanza in memory at a time.
//	AppendEdges  maps one Package to its edges.
//	Load      does all of it for one Index, with progress reports.
//
// # The graph
//
// Nodes are "deb:<binary package name>" and "deb-source:<source package
// name>" (avro.NodeKey). Edges point from the dependent to what it depends on:
//
//	deb:P        --built-from--> deb-source:S  S is P's Source (P itself when the stanza has none)
//	deb:P        --requires-->   deb:D         D is named in P's Depends or Pre-Depends
//	deb:P        --embeds-->     deb-source:S  S is named in P's Built-Using
//	deb:V        --provided-by-> deb:P         P Provides V
//
// Versions, version constraints, architecture qualifiers ("python3:any",
// "gcc:i386"), architecture restrictions ("[amd64]") and build profiles
// ("<!nocheck>") are dropped: a node is a package name, the graph holds one
// release of one architecture, and a dependency on "python3:any" is a
// dependency on python3.
//
// Every alternative of a dependency is an edge: "Depends: a | b" gives
// P --requires--> a and P --requires--> b. The graph says what P may use,
// not which alternative apt would pick, so a change to either reaches P.
//
// A dependency on a virtual package V (a name that only Provides lines
// carry, such as "mail-transport-agent") is an edge to deb:V, like any other
// name, and each package P that Provides V gives the edge
// deb:V --provided-by--> deb:P (RelProvidedBy). V depends on its providers
// in the sense that it exists only through them, so a downward trace from
// P (who is affected when P changes) reaches every package that depends on
// V, through V, and an upward trace from a dependent reaches every
// provider. The edges keep apt's own distinction: the direct dependents of
// a package (the From of its "requires" edges) are exactly the packages
// whose Depends or Pre-Depends name it, which is what
// `apt-cache rdepends` lists, and a dependency on V is not counted as a
// dependency on V's providers, as apt does not count it either. A name that
// is both a real package and provided by others has both kinds of edges.
//
// # Envelopes
//
// Each edge's ID is "sha256:" and the first 128 bits, in hex, of the
// SHA-256 of the index's codename and the edge (EdgeID): loading the same
// release again yields the same IDs, so re-sending is idempotent, while the
// same edge in two releases (bookworm, trixie) is two facts. Source is
// "debian/<codename>"; EventTime is the index's Date; IngestTime is left
// for ingest to set. Edges are never Removed here: an index is a snapshot,
// and removal is a difference between two snapshots.
package debian
