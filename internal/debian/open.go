package debian

import (
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// decompressors maps a file name extension to the tool that decompresses
// it to standard output. apt keeps its lists compressed as it is told
// (Acquire::GzipIndexes, KeepCompressedAs); on Debian the default is lz4.
var decompressors = map[string]string{
	".lz4":  "lz4",
	".xz":   "xz",
	".lzma": "xz", // xz reads the legacy .lzma format too
	".zst":  "zstd",
}

// Open opens an index file for reading, decompressing it according to its
// extension: .lz4 with the lz4 tool, .xz and .lzma with xz, .zst with
// zstd (each run as `<tool> -dc <path>`), .gz and .bz2 in process, and any
// other file as plain text. ctx bounds the decompressing process's life.
//
// A decompressor that fails (a truncated or corrupt file) makes Read
// return its error, with what it wrote on standard error, instead of
// io.EOF: a damaged file never reads as a shorter one. The caller owns the
// ReadCloser and must Close it, which stops the decompressor if it is
// still running.
func Open(ctx context.Context, path string) (io.ReadCloser, error) {
	ext := filepath.Ext(path)
	if tool, ok := decompressors[ext]; ok {
		return openTool(ctx, tool, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("debian: %w", err)
	}
	switch ext {
	case ".gz":
		z, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("debian: %s: %w", path, err)
		}
		return readCloser{Reader: z, close: f.Close}, nil
	case ".bz2":
		return readCloser{Reader: bzip2.NewReader(f), close: f.Close}, nil
	}
	return f, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// openTool starts `tool -dc path` and returns its standard output.
func openTool(ctx context.Context, tool, path string) (io.ReadCloser, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("debian: %w", err)
	}
	abs, err := filepath.Abs(path) // never an argument that starts with '-'
	if err != nil {
		return nil, fmt.Errorf("debian: %w", err)
	}
	cmd := exec.CommandContext(ctx, tool, "-dc", abs)
	p := &toolReader{ctx: ctx, cmd: cmd, path: path}
	cmd.Stderr = &p.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("debian: %w", err)
	}
	p.out = out
	if err := cmd.Start(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("debian: decompressing %s needs the %s tool (Debian package %s): %w", path, tool, toolPackage(tool), err)
		}
		return nil, fmt.Errorf("debian: decompressing %s: %w", path, err)
	}
	return p, nil
}

// toolPackage names the Debian package that ships tool.
func toolPackage(tool string) string {
	if tool == "xz" {
		return "xz-utils"
	}
	return tool
}

// toolReader reads a decompressor's standard output and, at its end,
// reports how the process exited.
type toolReader struct {
	ctx    context.Context
	cmd    *exec.Cmd
	path   string
	out    io.ReadCloser
	stderr cappedBuffer
	done   bool  // the process was waited for
	err    error // the result of the read that ended the output
}

func (p *toolReader) Read(b []byte) (int, error) {
	if p.done {
		return 0, p.err
	}
	n, err := p.out.Read(b)
	if errors.Is(err, io.EOF) {
		// os/exec: Wait closes the pipe, so it comes only after the last read.
		p.done, p.err = true, io.EOF
		if werr := p.cmd.Wait(); werr != nil {
			p.err = p.failure(werr)
		}
		return n, p.err
	}
	return n, err
}

func (p *toolReader) failure(err error) error {
	if ctxErr := p.ctx.Err(); ctxErr != nil {
		return fmt.Errorf("debian: decompressing %s: %w", p.path, ctxErr)
	}
	msg := strings.TrimSpace(p.stderr.String())
	if msg == "" {
		return fmt.Errorf("debian: decompressing %s: %s: %w", p.path, p.cmd.Args[0], err)
	}
	return fmt.Errorf("debian: decompressing %s: %s: %w: %s", p.path, p.cmd.Args[0], err, msg)
}

// Close stops the decompressor if the output was not read to its end.
func (p *toolReader) Close() error {
	if p.done {
		return nil
	}
	p.done, p.err = true, fmt.Errorf("debian: %s: read after Close", p.path)
	_ = p.cmd.Process.Kill() // it may have exited already; Wait reports either way
	_ = p.cmd.Wait()         // killed on purpose: its exit status says nothing
	return nil
}

// cappedBuffer keeps the first 4 KiB written to it: enough of a tool's
// standard error to say what went wrong.
type cappedBuffer struct{ bytes.Buffer }

func (c *cappedBuffer) Write(b []byte) (int, error) {
	if room := 4<<10 - c.Len(); room > 0 {
		c.Buffer.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}
