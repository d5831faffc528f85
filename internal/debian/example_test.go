package debian_test

import (
	"fmt"
	"strings"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/debian"
)

// A Packages stanza becomes edges: the source it was built from, every
// alternative of its dependencies, the sources it embeds, the virtual
// packages it provides.
func ExampleAppendEdges() {
	const stanza = `Package: exim4-daemon-light
Source: exim4 (4.96-15)
Version: 4.96-15+b1
Built-Using: gcc-12 (= 12.2.0-14)
Provides: mail-transport-agent
Pre-Depends: debconf (>= 0.5) | debconf-2.0
Depends: exim4-base (>= 4.96), libc6:any (>= 2.34)
`
	sc := debian.NewScanner(strings.NewReader(stanza))
	for sc.Scan() {
		for _, e := range debian.AppendEdges(nil, sc.Package(), debian.Index{Codename: "bookworm"}) {
			fmt.Println(avro.NodeKey(e.FromType, e.FromID), e.Relation, avro.NodeKey(e.ToType, e.ToID))
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// deb:exim4-daemon-light built-from deb-source:exim4
	// deb:exim4-daemon-light embeds deb-source:gcc-12
	// deb:mail-transport-agent provided-by deb:exim4-daemon-light
	// deb:exim4-daemon-light requires deb:debconf
	// deb:exim4-daemon-light requires deb:debconf-2.0
	// deb:exim4-daemon-light requires deb:exim4-base
	// deb:exim4-daemon-light requires deb:libc6
}

func ExampleParseRelations() {
	clauses, err := debian.ParseRelations("gcc-i686-linux-gnu (>= 4:10.2) | gcc:i386, python3:any")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range clauses {
		fmt.Printf("%+v\n", c)
	}
	// Output:
	// [{Name:gcc-i686-linux-gnu Arch: Op:>= Version:4:10.2} {Name:gcc Arch:i386 Op: Version:}]
	// [{Name:python3 Arch:any Op: Version:}]
}
