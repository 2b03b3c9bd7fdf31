package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Instruction is one classic BPF instruction (struct sock_filter).
type Instruction struct {
	Op uint16
	Jt uint8
	Jf uint8
	K  uint32
}

// Filter is a classic BPF program that the kernel runs on every frame. It
// returns how many bytes of the frame to keep; 0 drops the frame.
type Filter []Instruction

// maxInstructions is the kernel's limit (BPF_MAXINSNS).
const maxInstructions = 4096

// Classic BPF opcodes used here.
const (
	bpfRetK = 0x06 // BPF_RET | BPF_K
)

// ErrNoTcpdump means CompileFilter could not find tcpdump.
var ErrNoTcpdump = errors.New("capture filters are compiled by tcpdump, which is not installed (Debian: apt-get install tcpdump)")

// CompileFilter compiles a capture filter written in tcpdump syntax, such
// as "not port 22" or "vlan and net 10.0.0.0/8", for the interface iface.
// An empty expression returns a nil Filter (capture everything).
//
// It runs `tcpdump -ddd -p -i IFACE -s SNAPLEN -- EXPR` once: libpcap compiles
// the expression for the interface's link type, and for Linux sockets (so
// that "vlan" tests the tag the kernel has already taken off the frame). The
// result is exactly what tcpdump would filter, without linking libpcap.
// tcpdump opens the interface to learn its link type, so CompileFilter
// needs the privileges of Open and must run in the interface's network
// namespace, before DropPrivileges.
func CompileFilter(ctx context.Context, iface string, snaplen int, expr string) (Filter, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, nil
	}
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		return nil, ErrNoTcpdump
	}
	if snaplen <= 0 {
		snaplen = DefaultSnaplen
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// "--" ends the options, so an expression (from a configuration file)
	// cannot smuggle in tcpdump options.
	cmd := exec.CommandContext(ctx, path, "-ddd", "-p", "-i", iface, "-s", strconv.Itoa(snaplen), "--", expr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		// tcpdump repeats its message in brackets; the first line says it.
		msg, _, _ = strings.Cut(msg, "\n")
		msg = strings.TrimPrefix(msg, "tcpdump: ")
		return nil, fmt.Errorf("live: %s: capture filter %q: %s", iface, expr, msg)
	}
	f, err := ParseFilter(stdout.String())
	if err != nil {
		return nil, fmt.Errorf("live: %s: capture filter %q: %w", iface, expr, err)
	}
	return f, nil
}

// ParseFilter parses the output of `tcpdump -ddd`: the number of
// instructions, then one instruction per line as four decimal numbers
// (opcode, jt, jf, k). It is how a filter compiled on another machine can
// be used where tcpdump is not installed.
func ParseFilter(text string) (Filter, error) {
	lines := strings.FieldsFunc(text, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' })
	if len(lines) == 0 {
		return nil, errors.New("empty BPF program")
	}
	n, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || n < 1 || n > maxInstructions {
		return nil, fmt.Errorf("BPF program: want an instruction count between 1 and %d on the first line, got %q", maxInstructions, lines[0])
	}
	if len(lines)-1 != n {
		return nil, fmt.Errorf("BPF program: says %d instructions, has %d", n, len(lines)-1)
	}
	f := make(Filter, n)
	for i, line := range lines[1:] {
		fs := strings.Fields(line)
		if len(fs) != 4 {
			return nil, fmt.Errorf("BPF program: instruction %d: want 4 numbers, got %q", i, line)
		}
		var v [4]uint64
		for j, bits := range [4]int{16, 8, 8, 32} {
			if v[j], err = strconv.ParseUint(fs[j], 10, bits); err != nil {
				return nil, fmt.Errorf("BPF program: instruction %d: %q is not a %d-bit number", i, fs[j], bits)
			}
		}
		f[i] = Instruction{Op: uint16(v[0]), Jt: uint8(v[1]), Jf: uint8(v[2]), K: uint32(v[3])}
	}
	if err := f.check(); err != nil {
		return nil, fmt.Errorf("BPF program: %w", err)
	}
	return f, nil
}

// check catches what would make the kernel refuse the program with a bare
// EINVAL: jumps out of the program and a last instruction that is not a
// return.
func (f Filter) check() error {
	for i, in := range f {
		if in.Op&0x07 == 0x05 { // BPF_JMP
			if in.Op&0xf0 == 0x00 { // BPF_JA
				if uint64(i)+1+uint64(in.K) >= uint64(len(f)) {
					return fmt.Errorf("instruction %d jumps past the end", i)
				}
			} else if i+1+int(max(in.Jt, in.Jf)) >= len(f) {
				return fmt.Errorf("instruction %d jumps past the end", i)
			}
		}
	}
	if last := f[len(f)-1]; last.Op&0x07 != 0x06 { // BPF_RET
		return errors.New("does not end with a return")
	}
	return nil
}

// withSnaplen returns the program with every constant return clamped to
// snaplen: AF_PACKET has no snaplen of its own, the filter's return value
// is it. Without a filter the program is a single "accept snaplen bytes".
func (f Filter) withSnaplen(snaplen int) Filter {
	if len(f) == 0 {
		return Filter{{Op: bpfRetK, K: uint32(snaplen)}}
	}
	out := make(Filter, len(f))
	copy(out, f)
	for i := range out {
		if out[i].Op == bpfRetK && out[i].K > uint32(snaplen) {
			out[i].K = uint32(snaplen)
		}
	}
	return out
}

// String returns the program in `tcpdump -ddd` form, which ParseFilter
// reads back.
func (f Filter) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(f)))
	for _, in := range f {
		fmt.Fprintf(&b, "\n%d %d %d %d", in.Op, in.Jt, in.Jf, in.K)
	}
	return b.String()
}
