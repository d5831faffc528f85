// Command factory2 is the reactive stream processor of Fedora's build
// pipeline: it runs the processors, the embedded development broker, and
// the tools that produce, watch and replay events.
//
// main only wires signals and the exit status; every subcommand parses its
// flags and configuration, builds its components and runs them with the
// context main gives it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdin, os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "factory2:", err)
		}
		os.Exit(1)
	}
}
