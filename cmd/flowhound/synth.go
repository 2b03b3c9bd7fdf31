package main

import (
	"fmt"
	"io"
)

func cmdSynth(args []string, stdout, stderr io.Writer) error {
	return &exitError{2, fmt.Errorf("synth: not built yet")}
}
