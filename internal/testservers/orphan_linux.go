package testservers

import "syscall"

// orphanGuard has the kernel kill a server when the test process dies
// without cleaning up (a panic, a timeout).
func orphanGuard() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
