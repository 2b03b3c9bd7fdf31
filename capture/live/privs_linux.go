package live

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DropPrivileges gives up what opening the sockets needed; the open sockets
// keep working. With a user name it switches every thread to that user's
// uid, primary group and supplementary groups. Then it clears every
// capability set (effective, permitted, inheritable, ambient) and the
// bounding set, and sets no_new_privs, so that nothing the process runs can
// regain them.
//
// The capability calls have to reach every thread. A binary built without
// cgo (CGO_ENABLED=0) does that with syscall.AllThreadsSyscall. A cgo binary
// cannot; there the switch from root to another user (done for all threads
// by the C library) is what clears the capabilities, and the bounding set
// and no_new_privs are left alone. Either way DropPrivileges finishes by
// reading every thread's capabilities from /proc and returns an error if
// any are left.
func DropPrivileges(username string) error {
	var uid, gid int
	var groups []int
	if username != "" {
		u, err := user.Lookup(username)
		if err != nil {
			return fmt.Errorf("live: dropping privileges: %w", err)
		}
		if uid, err = strconv.Atoi(u.Uid); err != nil {
			return fmt.Errorf("live: dropping privileges: user %s: uid %q", username, u.Uid)
		}
		if gid, err = strconv.Atoi(u.Gid); err != nil {
			return fmt.Errorf("live: dropping privileges: user %s: gid %q", username, u.Gid)
		}
		groups = []int{gid}
		if ids, err := u.GroupIds(); err == nil {
			for _, s := range ids {
				if g, err := strconv.Atoi(s); err == nil && g != gid {
					groups = append(groups, g)
				}
			}
		}
	}
	allThreads := true
	// The bounding set can only shrink while CAP_SETPCAP is held, so
	// before the user changes.
	last := lastCap()
	for c := 0; c <= last; c++ {
		_, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0)
		if e == syscall.ENOTSUP {
			allThreads = false
			break
		}
		if e == syscall.EPERM || e == syscall.EINVAL {
			break // no CAP_SETPCAP (then nothing can be gained through it), or past the kernel's last capability
		}
		if e != 0 {
			return fmt.Errorf("live: dropping the capability bounding set: %w", e)
		}
	}
	if username != "" && (uid != os.Getuid() || uid != os.Geteuid() || gid != os.Getgid() || gid != os.Getegid()) {
		// syscall's set*id calls change every thread. When the process
		// already runs as the user (a service given the capabilities as
		// ambient ones), there is nothing to switch and no right to.
		if err := syscall.Setgroups(groups); err != nil {
			return fmt.Errorf("live: dropping privileges: setgroups: %w", err)
		}
		if err := syscall.Setresgid(gid, gid, gid); err != nil {
			return fmt.Errorf("live: dropping privileges: setresgid %d: %w", gid, err)
		}
		if err := syscall.Setresuid(uid, uid, uid); err != nil {
			return fmt.Errorf("live: dropping privileges: setresuid %d: %w", uid, err)
		}
	}
	if allThreads {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if _, _, e := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
			return fmt.Errorf("live: clearing capabilities: %w", e)
		}
		if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); e != 0 && e != syscall.EINVAL {
			return fmt.Errorf("live: clearing ambient capabilities: %w", e)
		}
		if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0); e != 0 {
			return fmt.Errorf("live: setting no_new_privs: %w", e)
		}
	}
	return checkNoCapabilities(allThreads)
}

// lastCap is the kernel's highest capability number.
func lastCap() int {
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return unix.CAP_LAST_CAP
}

// checkNoCapabilities reads every thread's status and fails if a
// capability is left in an effective, permitted or ambient set.
func checkNoCapabilities(allThreads bool) error {
	tasks, err := filepath.Glob("/proc/self/task/*/status")
	if err != nil || len(tasks) == 0 {
		return fmt.Errorf("live: cannot verify the capabilities: no /proc/self/task")
	}
	for _, path := range tasks {
		caps, err := readCaps(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // the thread has exited
			}
			return fmt.Errorf("live: verifying the capabilities: %w", err)
		}
		for _, k := range []string{"CapEff", "CapPrm", "CapAmb"} {
			if v := caps[k]; v != 0 {
				hint := ""
				if !allThreads {
					hint = " (a cgo build cannot clear capabilities on every thread: build with CGO_ENABLED=0, or run as root with a user to switch to)"
				}
				return fmt.Errorf("live: capabilities left after dropping them: thread %s has %s=%016x%s",
					filepath.Base(filepath.Dir(path)), k, v, hint)
			}
		}
	}
	return nil
}

// readCaps returns the Cap* lines of a /proc status file.
func readCaps(path string) (map[string]uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	caps := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.HasPrefix(k, "Cap") {
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
				caps[k] = n
			}
		}
	}
	return caps, sc.Err()
}
