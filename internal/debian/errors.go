package debian

import (
	"errors"
	"fmt"
)

// ErrNoIndexes: apt knows no binary Packages index whose file exists on
// this machine. `apt-get update` downloads them.
var ErrNoIndexes = errors.New("debian: apt has no Packages index on this machine (run apt-get update)")

// SyntaxError is a problem with the text of a deb822 file (a Packages
// index, apt-get indextargets output): a line that is neither a field nor a
// continuation, a stanza without its Package field, a dependency that does
// not parse.
type SyntaxError struct {
	// Path is the file, when known.
	Path string
	// Line is the 1-based line the problem is on (the first line of the
	// field or stanza at fault).
	Line int
	// Field is the field at fault, when there is one.
	Field string
	// Msg says what is wrong.
	Msg string
}

func (e *SyntaxError) Error() string {
	where := fmt.Sprintf("line %d", e.Line)
	if e.Path != "" {
		where = fmt.Sprintf("%s:%d", e.Path, e.Line)
	}
	if e.Field != "" {
		return fmt.Sprintf("debian: %s: %s: %s", where, e.Field, e.Msg)
	}
	return fmt.Sprintf("debian: %s: %s", where, e.Msg)
}
