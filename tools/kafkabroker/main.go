// Command kafkabroker runs a Kafka wire-protocol broker (franz-go's kfake) on
// loopback for flowhound's integration tests and `make dev`. It is not a
// production broker: by default it keeps everything in memory.
//
// It lives in its own module so that franz-go stays out of flowhound's
// dependency graph.
//
//	kafkabroker -ports 9092 -partitions 3 -topics flowhound.findings.v1,flowhound.flows.v1
//
// On start it prints one "listening ADDR" line per broker on stdout; it
// stops on SIGTERM or SIGINT.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kafkabroker:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		ports      = flag.String("ports", "0", "comma-separated loopback ports, one broker each (0 = pick a free port)")
		partitions = flag.Int("partitions", 3, "partitions of seeded and auto-created topics")
		topics     = flag.String("topics", "", "comma-separated topics to create at start")
		autoCreate = flag.Bool("auto-create", false, "create topics on first metadata request for them")
		dataDir    = flag.String("data-dir", "", "persist the log here so that a restart keeps it (default: memory only)")
		syncWrites = flag.Bool("sync", false, "with -data-dir: fsync every produced batch")
		tlsCert    = flag.String("tls-cert", "", "PEM server certificate: serve TLS instead of plaintext")
		tlsKey     = flag.String("tls-key", "", "PEM key for -tls-cert")
		logLevel   = flag.String("log-level", "none", "none, error, warn, info or debug (to stderr)")
		users      listFlag
		configs    listFlag
	)
	flag.Var(&users, "user", "MECHANISM:USER:PASSWORD superuser; enables SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512); repeatable")
	flag.Var(&configs, "config", "broker config KEY=VALUE, e.g. message.max.bytes=100000; repeatable")
	flag.Parse()
	if flag.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", flag.Args())
	}

	var portList []int
	for _, p := range strings.Split(*ports, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("-ports: bad port %q", p)
		}
		portList = append(portList, n)
	}
	if *partitions < 1 {
		return fmt.Errorf("-partitions must be at least 1, got %d", *partitions)
	}
	lvl, ok := map[string]kfake.LogLevel{
		"none": kfake.LogLevelNone, "error": kfake.LogLevelError, "warn": kfake.LogLevelWarn,
		"info": kfake.LogLevelInfo, "debug": kfake.LogLevelDebug,
	}[*logLevel]
	if !ok {
		return fmt.Errorf("-log-level: unknown level %q", *logLevel)
	}

	opts := []kfake.Opt{
		kfake.NumBrokers(len(portList)),
		kfake.Ports(portList...),
		kfake.DefaultNumPartitions(*partitions),
		kfake.WithLogger(kfake.BasicLogger(os.Stderr, lvl)),
	}
	if *topics != "" {
		var ts []string
		for _, t := range strings.Split(*topics, ",") {
			if t = strings.TrimSpace(t); t != "" {
				ts = append(ts, t)
			}
		}
		opts = append(opts, kfake.SeedTopics(int32(*partitions), ts...))
	}
	if *autoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
		if *syncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	plainUsers := map[string]string{}
	if len(users) > 0 {
		opts = append(opts, kfake.EnableSASL())
		for _, u := range users {
			mech, rest, ok1 := strings.Cut(u, ":")
			user, pass, ok2 := strings.Cut(rest, ":")
			if !ok1 || !ok2 || user == "" {
				return fmt.Errorf("-user: want MECHANISM:USER:PASSWORD") // never echo a password
			}
			switch mech = strings.ToUpper(mech); mech {
			case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
			default:
				return fmt.Errorf("-user: unknown SASL mechanism %q", mech)
			}
			opts = append(opts, kfake.Superuser(mech, user, pass))
			if mech == "PLAIN" {
				plainUsers[user] = pass
			}
		}
	}
	if len(configs) > 0 {
		m := make(map[string]string, len(configs))
		for _, kv := range configs {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return fmt.Errorf("-config: want KEY=VALUE, got %q", kv)
			}
			m[k] = v
		}
		opts = append(opts, kfake.BrokerConfigs(m))
	}
	if *tlsCert != "" || *tlsKey != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fmt.Errorf("-tls-cert/-tls-key: %w", err)
		}
		opts = append(opts, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	}

	// Subscribe before listening so that a SIGTERM sent right after the
	// "listening" line is never lost.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)

	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return err
	}
	if len(plainUsers) > 0 {
		answerFailedPlain(c, plainUsers)
	}
	for _, addr := range c.ListenAddrs() {
		// Wait until the port accepts, so that "listening" means it.
		for deadline := time.Now().Add(5 * time.Second); ; {
			conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				conn.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("broker %s does not accept connections: %w", addr, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		fmt.Println("listening", addr)
	}

	<-sigs
	done := make(chan struct{})
	go func() { c.Close(); close(done) }()
	select {
	case <-done:
	case <-sigs:
		return fmt.Errorf("forced shutdown")
	case <-time.After(10 * time.Second):
		return fmt.Errorf("shutdown timed out")
	}
	return nil
}

// answerFailedPlain makes a failed SASL/PLAIN authentication answer with
// SASL_AUTHENTICATION_FAILED, as Apache Kafka does, instead of kfake's
// closing the connection, so that clients can be tested on telling bad
// credentials from a broken network. (SCRAM failures still close the
// connection.)
func answerFailedPlain(c *kfake.Cluster, users map[string]string) {
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(r kmsg.Request) (kmsg.Response, error, bool) {
		req := r.(*kmsg.SASLAuthenticateRequest)
		parts := strings.Split(string(req.SASLAuthBytes), "\x00")
		if len(parts) != 3 { // not PLAIN: authzid NUL user NUL password
			return nil, nil, false
		}
		if pass, ok := users[parts[1]]; ok && pass == parts[2] {
			return nil, nil, false
		}
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		msg := "Authentication failed: Invalid username or password"
		resp.ErrorMessage = &msg
		return resp, nil, true
	})
}
