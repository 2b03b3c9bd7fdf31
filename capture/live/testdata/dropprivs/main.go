// Command dropprivs calls live.DropPrivileges with its argument and prints
// its own /proc/self/status, for TestDropPrivileges.
package main

import (
	"fmt"
	"os"

	"github.com/flowhound/flowhound/capture/live"
)

func main() {
	if err := live.DropPrivileges(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Stdout.Write(b)
}
