//go:build !linux

package testservers

import "syscall"

// orphanGuard is nil where the kernel cannot kill a server with the test
// process; a test binary that dies without cleaning up leaves its servers.
func orphanGuard() *syscall.SysProcAttr { return nil }
