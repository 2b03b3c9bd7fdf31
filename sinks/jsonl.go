package sinks

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// JSONLConfig configures the JSON-lines sink: one message value per line,
// on standard output or in a file rotated by size.
type JSONLConfig struct {
	// Path is the output file; "" or "-" is standard output.
	Path string `yaml:"path"`
	// RotateSize starts a new file when writing a batch would take the
	// current one past this many bytes; 0 never rotates. The old file
	// becomes Path.1, Path.1 becomes Path.2, and so on.
	RotateSize int64 `yaml:"rotate_size"`
	// RotateKeep is how many rotated files are kept; older ones are
	// removed.
	RotateKeep int `yaml:"rotate_keep"`
	// Topics are the message topics written; empty writes every topic.
	Topics   []Topic  `yaml:"-"`
	Delivery Delivery `yaml:",inline"`

	// stdout replaces os.Stdout in tests.
	stdout io.Writer
}

// DefaultJSONLDelivery returns the JSONL sink's Delivery default.
func DefaultJSONLDelivery() Delivery {
	return Delivery{
		Buffer: 100_000, MaxBatch: 4096,
		BackoffMin: 100 * time.Millisecond, BackoffMax: 5 * time.Second, CloseTimeout: 5 * time.Second,
	}
}

// JSONL writes messages as JSON lines. A batch is written and flushed to
// the file (not fsynced) before its messages count as sent; write errors
// such as a full disk are retried.
type JSONL struct {
	*pipe
}

var _ Sink = (*JSONL)(nil)

// NewJSONL opens the output (creating the file and its directory's rotated
// siblings as needed) and starts the sink.
func NewJSONL(cfg JSONLConfig) (*JSONL, error) {
	const name = "jsonl"
	cfg.Delivery = cfg.Delivery.withDefaults(DefaultJSONLDelivery())
	if err := cfg.Delivery.validate(name); err != nil {
		return nil, err
	}
	if cfg.RotateSize < 0 {
		return nil, badSetting(name, "rotate_size", "must not be negative, got %d", cfg.RotateSize)
	}
	if cfg.RotateKeep < 0 {
		return nil, badSetting(name, "rotate_keep", "must not be negative, got %d", cfg.RotateKeep)
	}
	w := &jsonlWriter{cfg: cfg}
	if cfg.Path == "" || cfg.Path == "-" {
		w.out = cfg.stdout
		if w.out == nil {
			w.out = os.Stdout
		}
		w.bw = bufio.NewWriterSize(w.out, 64<<10)
	} else {
		if err := w.open(); err != nil {
			return nil, badSettingErr(name, "path", err, "cannot open %q", cfg.Path)
		}
	}
	return &JSONL{newPipe(name, cfg.Delivery, w, topicFilter(cfg.Topics))}, nil
}

// topicFilter returns a Send filter for topics, or nil for all topics.
func topicFilter(topics []Topic) func(Topic) bool {
	if len(topics) == 0 {
		return nil
	}
	var set [8]bool
	for _, t := range topics {
		if int(t) < len(set) {
			set[t] = true
		}
	}
	return func(t Topic) bool { return int(t) < len(set) && set[t] }
}

type jsonlWriter struct {
	cfg  JSONLConfig
	f    *os.File  // nil for standard output
	out  io.Writer // standard output
	bw   *bufio.Writer
	size int64
}

func (w *jsonlWriter) open() error {
	if err := os.MkdirAll(filepath.Dir(w.cfg.Path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(w.cfg.Path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	w.f, w.size = f, st.Size()
	if w.bw == nil {
		w.bw = bufio.NewWriterSize(f, 64<<10)
	} else {
		w.bw.Reset(f)
	}
	return nil
}

func (w *jsonlWriter) deliver(_ context.Context, batch []Message) result {
	if w.bw == nil { // a rotation failed to reopen the file
		if err := w.open(); err != nil {
			return result{retry: batch, err: fmt.Errorf("jsonl: reopen %s: %w", w.cfg.Path, err)}
		}
	}
	var n int64
	for i := range batch {
		n += int64(len(batch[i].Value)) + 1
	}
	if w.f != nil && w.cfg.RotateSize > 0 && w.size > 0 && w.size+n > w.cfg.RotateSize {
		if err := w.rotate(); err != nil {
			return result{retry: batch, err: fmt.Errorf("jsonl: rotate %s: %w", w.cfg.Path, err)}
		}
	}
	for i := range batch {
		w.bw.Write(batch[i].Value)
		w.bw.WriteByte('\n')
	}
	if err := w.bw.Flush(); err != nil {
		// A bufio.Writer that failed stays failed: start over on a fresh
		// file handle and write the whole batch again (lines may repeat).
		if w.f != nil {
			w.f.Close()
			w.f, w.bw = nil, nil
		} else {
			w.bw = bufio.NewWriterSize(w.out, 64<<10)
		}
		return result{retry: batch, err: fmt.Errorf("jsonl: write %s: %w", w.name(), err)}
	}
	w.size += n
	return result{}
}

func (w *jsonlWriter) name() string {
	if w.f == nil {
		return "standard output"
	}
	return w.cfg.Path
}

// rotate shifts Path.k to Path.k+1 (removing the oldest beyond RotateKeep),
// moves Path to Path.1 and opens a new Path.
func (w *jsonlWriter) rotate() error {
	if err := w.f.Close(); err != nil {
		return err
	}
	w.f, w.bw = nil, nil
	p := w.cfg.Path
	keep := w.cfg.RotateKeep
	if keep == 0 {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	} else {
		os.Remove(p + "." + strconv.Itoa(keep))
		for k := keep - 1; k >= 1; k-- {
			if err := os.Rename(p+"."+strconv.Itoa(k), p+"."+strconv.Itoa(k+1)); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		if err := os.Rename(p, p+".1"); err != nil {
			return err
		}
	}
	return w.open()
}

func (w *jsonlWriter) close() error {
	if w.bw != nil {
		if err := w.bw.Flush(); err != nil {
			return fmt.Errorf("jsonl: %w", err)
		}
	}
	if w.f != nil {
		return w.f.Close()
	}
	return nil
}
