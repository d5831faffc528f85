package debian

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// stanzaReader reads deb822 text (deb822(5)): stanzas of "Name: value"
// fields separated by empty lines (or lines of only spaces and tabs), where
// a line starting with a space or a tab continues the field above it and a
// line starting with '#' is a comment. Lines may be of any length (a
// Provides field of a Rust library runs past 70,000 characters).
type stanzaReader struct {
	br   *bufio.Reader
	line int    // lines read so far
	long []byte // a line longer than br's buffer, assembled
	name []byte // the current field's name
	val  []byte // the current field's value
}

func newStanzaReader(r io.Reader) *stanzaReader {
	return &stanzaReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// fieldFunc receives one field of a stanza: key is what the want function
// returned for its name, line the line it starts on, and value its text
// after the colon with surrounding spaces removed and continuation lines
// appended, each after a '\n' and without its leading whitespace. name and
// value are valid only during the call.
type fieldFunc func(key int, name, value []byte, line int) error

// next reads one stanza. For each field, want(name) returns a key, or a
// negative number to skip the field without copying its value; field
// receives the fields not skipped, once each, in order. next returns the
// line the stanza starts on, or 0 at the end of the input. An error from
// field is returned as it is.
func (r *stanzaReader) next(want func(name []byte) int, field fieldFunc) (start int, err error) {
	key, fieldLine := -1, 0
	inField := false
	flush := func() error {
		if !inField || key < 0 {
			return nil
		}
		return field(key, r.name, r.val, fieldLine)
	}
	for {
		line, err := r.readLine()
		if errors.Is(err, io.EOF) {
			return start, flush()
		}
		if err != nil {
			return 0, err
		}
		r.line++
		switch {
		case len(bytes.Trim(line, " \t")) == 0:
			if start > 0 {
				return start, flush()
			}
		case line[0] == '#':
		case line[0] == ' ' || line[0] == '\t':
			if !inField {
				return 0, &SyntaxError{Line: r.line, Msg: "continuation line outside a field"}
			}
			if key >= 0 {
				r.val = append(r.val, '\n')
				r.val = append(r.val, bytes.Trim(line, " \t")...)
			}
		default:
			colon := bytes.IndexByte(line, ':')
			if colon <= 0 {
				return 0, &SyntaxError{Line: r.line, Msg: "line is neither a field (Name: value) nor a continuation"}
			}
			if err := flush(); err != nil {
				return 0, err
			}
			if start == 0 {
				start = r.line
			}
			inField, fieldLine = true, r.line
			r.name = append(r.name[:0], line[:colon]...)
			key = want(r.name)
			if key >= 0 {
				r.val = append(r.val[:0], bytes.Trim(line[colon+1:], " \t")...)
			}
		}
	}
}

// readLine returns the next line without its line ending, valid until the
// next call, or io.EOF after the last line.
func (r *stanzaReader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		r.long = append(r.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = r.br.ReadSlice('\n')
			r.long = append(r.long, line...)
		}
		line = r.long
	}
	if errors.Is(err, io.EOF) && len(line) > 0 {
		err = nil // the last line has no newline; the next call returns io.EOF
	}
	if err != nil {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte{'\n'})
	return bytes.TrimSuffix(line, []byte{'\r'}), nil
}
