package sinks

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowhound/flowhound/detect"
	"github.com/flowhound/flowhound/internal/testservers"
)

// SASL PLAIN and SCRAM against a broker that requires it; the password is
// read from a file or the environment and never appears in errors or logs.
func TestKafkaSASL(t *testing.T) {
	const topic = "flowhound.findings.v1"
	const secret = "s3cret-Pa55"
	b := testservers.StartKafka(t, 1, "-topics", topic,
		"-user", "PLAIN:plainuser:"+secret,
		"-user", "SCRAM-SHA-256:scram256:"+secret,
		"-user", "SCRAM-SHA-512:scram512:"+secret)
	pwFile := filepath.Join(t.TempDir(), "password")
	os.WriteFile(pwFile, []byte(secret+"\n"), 0o600)
	t.Setenv("FLOWHOUND_TEST_KAFKA_PASSWORD", secret)
	for _, tc := range []struct {
		name string
		sasl SASLConfig
	}{
		{"PLAIN/env", SASLConfig{Mechanism: "PLAIN", Username: "plainuser", PasswordEnv: "FLOWHOUND_TEST_KAFKA_PASSWORD"}},
		{"SCRAM-SHA-256/file", SASLConfig{Mechanism: "SCRAM-SHA-256", Username: "scram256", PasswordFile: pwFile}},
		{"SCRAM-SHA-512/inline", SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "scram512", Password: secret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newTestKafka(t, KafkaConfig{Brokers: b.Addrs(), FindingsTopic: topic, SASL: tc.sasl})
			if err := k.Check(context.Background()); err != nil {
				t.Fatalf("check: %v", err)
			}
			sendAll(t, k, findingMessages(t, makeFindings(10)))
			flush(t, k, 10*time.Second)
			if s := k.Stats(); s.Sent != 10 {
				t.Fatalf("stats %+v", s)
			}
		})
	}

	t.Run("wrong password", func(t *testing.T) {
		var logs logBuffer
		wrong := secret + "-wrong"
		k := newTestKafka(t, KafkaConfig{Brokers: b.Addrs(), FindingsTopic: topic,
			SASL:     SASLConfig{Mechanism: "PLAIN", Username: "plainuser", Password: wrong},
			Delivery: Delivery{MaxBatch: 5, Logger: newLogger(&logs)}})
		sendAll(t, k, findingMessages(t, makeFindings(20)))
		flush(t, k, 10*time.Second)
		s := k.Stats()
		if s.Sent != 0 || s.Dropped != 20 || s.Permanent != 20 || !strings.Contains(s.LastError, "SASL authentication") {
			t.Fatalf("stats %+v: want 20 dropped as permanent, an authentication error", s)
		}
		if n := logs.count("permanent error"); n != 1 {
			t.Errorf("permanent error logged %d times, want once:\n%s", n, logs.String())
		}
		for _, text := range []string{s.LastError, logs.String(), tc(KafkaConfig{SASL: SASLConfig{Mechanism: "PLAIN", Password: wrong}})} {
			if strings.Contains(text, wrong) || strings.Contains(text, secret) {
				t.Errorf("secret leaked: %s", text)
			}
		}
	})
}

func tc(c KafkaConfig) string { return strings.Join([]string{c.SASL.String(), sprintV(c)}, " ") }

// TLS with a private CA: verified and delivered; an unknown CA is a
// permanent failure.
func TestKafkaTLS(t *testing.T) {
	const topic = "flowhound.findings.v1"
	dir := t.TempDir()
	writeCerts(t, dir)
	b := testservers.StartKafka(t, 1, "-topics", topic, "-tls-cert", filepath.Join(dir, "server.pem"), "-tls-key", filepath.Join(dir, "server-key.pem"))

	k := newTestKafka(t, KafkaConfig{Brokers: b.Addrs(), FindingsTopic: topic,
		TLS: TLSConfig{Enabled: true, CAFile: filepath.Join(dir, "ca.pem")}})
	sendAll(t, k, findingMessages(t, makeFindings(10)))
	flush(t, k, 10*time.Second)
	if s := k.Stats(); s.Sent != 10 {
		t.Fatalf("stats %+v", s)
	}

	other := t.TempDir()
	writeCerts(t, other)
	bad := newTestKafka(t, KafkaConfig{Brokers: b.Addrs(), FindingsTopic: topic,
		TLS: TLSConfig{Enabled: true, CAFile: filepath.Join(other, "ca.pem")}})
	sendAll(t, bad, findingMessages(t, makeFindings(10)))
	flush(t, bad, 10*time.Second)
	if s := bad.Stats(); s.Sent != 0 || s.Permanent != 10 || !strings.Contains(s.LastError, "certificate") {
		t.Fatalf("unknown CA: stats %+v", s)
	}
}

// writeCerts writes ca.pem, server.pem and server-key.pem (for 127.0.0.1).
func writeCerts(t *testing.T, dir string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flowhound test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srv := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	for name, block := range map[string]*pem.Block{
		"ca.pem":         {Type: "CERTIFICATE", Bytes: caDER},
		"server.pem":     {Type: "CERTIFICATE", Bytes: srvDER},
		"server-key.pem": {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// A missing topic is named in Check's error and in LastError; the messages
// wait and are delivered once the topic exists.
func TestKafkaMissingTopic(t *testing.T) {
	t.Parallel()
	b := testservers.StartKafka(t, 1)
	k := newTestKafka(t, KafkaConfig{Brokers: b.Addrs(), FindingsTopic: "flowhound.missing.v1",
		Delivery: Delivery{BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond}})
	err := k.Check(context.Background())
	if !errors.Is(err, ErrTopicMissing) || !strings.Contains(err.Error(), "flowhound.missing.v1") {
		t.Fatalf("check: %v", err)
	}
	sendAll(t, k, findingMessages(t, makeFindings(5)))
	waitFor(t, 10*time.Second, func() bool { return k.Stats().Errors > 0 })
	if s := k.Stats(); !strings.Contains(s.LastError, `topic flowhound.missing.v1 does not exist`) || s.Buffered != 5 {
		t.Fatalf("stats %+v", s)
	}
	testservers.CreateTopic(t, b.Addrs(), "flowhound.missing.v1", 1)
	flush(t, k, 20*time.Second)
	if err := k.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	testservers.Consume(t, b.Addrs(), "flowhound.missing.v1", 5)
}

// With auto_create_topics, a broker that allows it creates the topic.
func TestKafkaAutoCreate(t *testing.T) {
	b := testservers.StartKafka(t, 1, "-auto-create", "-partitions", "2")
	k := newTestKafka(t, KafkaConfig{Brokers: b.Addrs(), FindingsTopic: "flowhound.auto.v1", AutoCreateTopics: true})
	sendAll(t, k, findingMessages(t, makeFindings(30)))
	flush(t, k, 20*time.Second)
	if err := k.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	testservers.Consume(t, b.Addrs(), "flowhound.auto.v1", 30)
}

// Messages larger than the broker takes are dropped as permanent failures,
// logged once; the others in the same batch are delivered.
func TestKafkaMessageTooLarge(t *testing.T) {
	const topic = "flowhound.findings.v1"
	b := testservers.StartKafka(t, 1, "-partitions", "1", "-topics", topic, "-config", "message.max.bytes=8000")
	var logs logBuffer
	k := newTestKafka(t, KafkaConfig{Brokers: b.Addrs(), FindingsTopic: topic, Compression: "none",
		Delivery: Delivery{Logger: newLogger(&logs), Linger: 50 * time.Millisecond}})
	fs := makeFindings(22)
	big := strings.Repeat("x", 10000)
	fs[5].Evidence.Notes = []string{big}
	fs[17].Evidence.Notes = []string{big}
	sendAll(t, k, findingMessages(t, fs))
	flush(t, k, 20*time.Second)
	s := k.Stats()
	if s.Sent != 20 || s.Dropped != 2 || s.Permanent != 2 || !strings.Contains(s.LastError, "message.max.bytes") {
		t.Fatalf("stats %+v", s)
	}
	if n := logs.count("permanent error"); n != 1 {
		t.Errorf("permanent error logged %d times:\n%s", n, logs.String())
	}
	got := map[string]bool{}
	for _, m := range testservers.Consume(t, b.Addrs(), topic, 20) {
		var f detect.Finding
		f.UnmarshalJSON(m.Value)
		got[f.UID] = true
	}
	if got[fs[5].UID] || got[fs[17].UID] || len(got) != 20 {
		t.Errorf("read %d findings: %v", len(got), got)
	}

	// A message above batch_bytes never leaves the sensor.
	k2 := newTestKafka(t, KafkaConfig{Brokers: b.Addrs(), FindingsTopic: topic, BatchBytes: 4096})
	sendAll(t, k2, findingMessages(t, fs[17:18]))
	flush(t, k2, 10*time.Second)
	if s := k2.Stats(); s.Permanent != 1 || !strings.Contains(s.LastError, "batch_bytes") {
		t.Fatalf("stats %+v", s)
	}
}
