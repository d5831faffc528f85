package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/factory2/factory2/avro"
	"github.com/factory2/factory2/internal/browsertest"
	"github.com/factory2/factory2/internal/config"
	"github.com/factory2/factory2/internal/kafkatest"
	"github.com/factory2/factory2/internal/kclient"
	"github.com/factory2/factory2/internal/sample"
	"github.com/factory2/factory2/processors"
	"github.com/factory2/factory2/topics"
)

// secureExample is the example configuration the secured tests run, as a
// new user would.
const secureExample = "../../deploy/factory2.secure.example.yml"

// secureEnv is a secured broker with factory2's topics and ACLs, and a
// copy of the deploy directory's secure example pointing at it.
type secureEnv struct {
	sb     *kafkatest.SecureBroker
	bin    string // the factory2 binary
	dir    string // working directory: the config, kafka/ca.crt, policies
	config string
}

// TestSecureKafka is issue 13's "done when": against a broker with TLS,
// SCRAM and ACLs, `factory2 serve` with the secure example config runs
// the sample pipeline fed by the hooks' principal over TLS, its overview
// page shows the decisions live in a real browser, /metrics is scraped,
// and it survives a SIGTERM and restart losing and duplicating nothing;
// and each principal is refused what it must not do.
func TestSecureKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a secured Kafka broker and the factory2 binary")
	}
	env := newSecureEnv(t)
	// The pipeline first: the denials' controls write garbage to a decision
	// topic, which the comparison with the reference run would count.
	t.Run("Pipeline", env.testPipeline)
	t.Run("Denials", env.testDenials)
}

func newSecureEnv(t *testing.T) *secureEnv {
	t.Helper()
	sb := kafkatest.StartSecureBroker(t)
	e := &secureEnv{sb: sb, bin: buildFactory2(t), dir: t.TempDir()}
	// The example unchanged, its relative paths resolved in its copy's
	// directory: kafka/ca.crt is the broker's CA, policies deploy's.
	data, err := os.ReadFile(secureExample)
	if err != nil {
		t.Fatal(err)
	}
	e.config = filepath.Join(e.dir, "factory2.secure.example.yml")
	policies, _ := filepath.Abs("../../deploy/policies")
	must(t, os.WriteFile(e.config, data, 0o644))
	must(t, os.Mkdir(filepath.Join(e.dir, "kafka"), 0o755))
	must(t, os.Symlink(sb.CAFile(), filepath.Join(e.dir, "kafka", "ca.crt")))
	must(t, os.Symlink(policies, filepath.Join(e.dir, "policies")))

	// The administrator creates the topics and grants the ACLs.
	if out, err := e.run(t, kafkatest.UserAdmin, "topics", "ensure"); err != nil {
		t.Fatalf("topics ensure as admin: %v\n%s", err, out)
	}
	out, err := e.run(t, kafkatest.UserAdmin, "topics", "acls", "--processors", "User:factory2", "--hooks", "User:hooks")
	if err != nil {
		t.Fatalf("topics acls: %v\n%s", err, out)
	}
	if !strings.Contains(out, "granted") || strings.Contains(out, "FAILED") {
		t.Fatalf("topics acls printed:\n%s", out)
	}
	return e
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// buildFactory2 builds the binary, as a user runs it.
func buildFactory2(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "factory2")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cmd returns the binary with args, run as user: --config, the broker,
// and the user's name and password in the environment the example reads.
func (e *secureEnv) cmd(t *testing.T, ctx context.Context, user string, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, e.bin, append([]string{"--config", e.config}, args...)...)
	c.Dir = e.dir
	c.Env = append(os.Environ(),
		"FACTORY2_BROKERS="+e.sb.Addr,
		config.EnvKafkaUsername+"="+user,
		"FACTORY2_KAFKA_PASSWORD="+e.sb.Password(t, user))
	return c
}

// run runs the binary as user and returns its output, both streams.
func (e *secureEnv) run(t *testing.T, user string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := e.cmd(t, ctx, user, args...).CombinedOutput()
	return string(out), err
}

// client returns a client of the broker secured by sec.
func (e *secureEnv) client(t *testing.T, sec kclient.Security, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kclient.New([]string{e.sb.Addr}, sec, append([]kgo.Opt{kgo.RequestRetries(0), kgo.RetryTimeout(5 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (e *secureEnv) produce(t *testing.T, sec kclient.Security, topic string) error {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	return e.client(t, sec).ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("k"), Value: []byte("garbage")}).FirstErr()
}

func (e *secureEnv) ping(t *testing.T, sec kclient.Security) error {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	return e.client(t, sec).Ping(ctx)
}

// testDenials: each principal gets what the ACLs grant and is refused
// the rest; clients that cannot authenticate get nothing.
func (e *secureEnv) testDenials(t *testing.T) {
	const prefix = "factory2."
	decisions, input, changelog := prefix+topics.DecisionsGating, prefix+topics.EventsBuild, prefix+"gating.changelog"
	hooks, procs := e.sb.Security(kafkatest.UserHooks), e.sb.Security(kafkatest.UserFactory2)

	// The controls: what is granted works, so the refusals below are the
	// ACLs' and not a broken connection.
	if err := e.produce(t, hooks, input); err != nil {
		t.Fatalf("hooks writing %s: %v, want it granted", input, err)
	}
	if err := e.produce(t, procs, decisions); err != nil {
		t.Fatalf("processors writing %s: %v, want it granted", decisions, err)
	}

	t.Run("HooksWriteDecision", func(t *testing.T) {
		if err := e.produce(t, hooks, decisions); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("hooks writing %s: %v, want TOPIC_AUTHORIZATION_FAILED", decisions, err)
		}
	})
	t.Run("HooksWriteChangelog", func(t *testing.T) {
		// The attack: a garbage changelog record crashed a restore.
		if err := e.produce(t, hooks, changelog); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("hooks writing %s: %v, want TOPIC_AUTHORIZATION_FAILED", changelog, err)
		}
	})
	t.Run("ProcessorsWriteInput", func(t *testing.T) {
		if err := e.produce(t, procs, input); !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("processors writing %s: %v, want TOPIC_AUTHORIZATION_FAILED", input, err)
		}
	})
	t.Run("Unauthenticated", func(t *testing.T) {
		if err := e.ping(t, kclient.Security{}); err == nil {
			t.Error("a plaintext client without credentials was answered")
		}
		tlsOnly := kclient.Security{TLS: kclient.TLS{Enabled: true, CAFile: e.sb.CAFile()}}
		if err := e.ping(t, tlsOnly); err == nil {
			t.Error("a TLS client without SASL was answered")
		}
	})
	t.Run("PrincipalWithoutACLs", func(t *testing.T) {
		// A client the CA knows (mutual TLS on the inter-broker listener:
		// User:CN=factory2-client) but no ACL names gets nothing: no
		// allow-everyone fallback.
		cert, key := e.sb.ClientCert()
		sec := kclient.Security{TLS: kclient.TLS{Enabled: true, CAFile: e.sb.CAFile(), CertFile: cert, KeyFile: key}}
		cl, err := kclient.New([]string{e.sb.InternalAddr(t)}, sec, kgo.RequestRetries(0), kgo.RetryTimeout(5*time.Second))
		must(t, err)
		defer cl.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		if err := cl.Ping(ctx); err != nil {
			t.Fatalf("mutual TLS with the CA's client certificate: %v, want a connection (the refusal must be the ACLs')", err)
		}
		err = cl.ProduceSync(ctx, &kgo.Record{Topic: input, Value: []byte("garbage")}).FirstErr()
		if !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Errorf("a principal without ACLs writing %s: %v, want TOPIC_AUTHORIZATION_FAILED", input, err)
		}
	})
	t.Run("WrongPassword", func(t *testing.T) {
		wrong := filepath.Join(t.TempDir(), "pw")
		must(t, os.WriteFile(wrong, []byte("not-the-password\n"), 0o600))
		sec := e.sb.Security(kafkatest.UserHooks)
		sec.SASL.PasswordFile = wrong
		if err := e.ping(t, sec); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
		}
	})
	t.Run("WrongCA", func(t *testing.T) {
		sec := e.sb.Security(kafkatest.UserHooks)
		sec.TLS.CAFile = writeOtherCA(t)
		var unknown x509.UnknownAuthorityError
		if err := e.ping(t, sec); !errors.As(err, &unknown) {
			t.Errorf("TLS with another CA: %v, want an unknown authority error", err)
		}
	})
}

// writeOtherCA writes a CA certificate that signed nothing of the
// broker's.
func writeOtherCA(t *testing.T) string {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "another CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	path := filepath.Join(t.TempDir(), "other-ca.crt")
	must(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	return path
}

// serveProc is a running `factory2 serve`.
type serveProc struct {
	cmd  *exec.Cmd
	url  string // the HTTP server's base URL
	done chan error
	logs *bytes.Buffer
}

var serveURL = regexp.MustCompile(`HTTP at (http://\S+)`)

// startServe starts `factory2 serve` as the processors' principal and
// waits until it prints its HTTP address.
func (e *secureEnv) startServe(t *testing.T) *serveProc {
	t.Helper()
	c := e.cmd(t, context.Background(), kafkatest.UserFactory2, "serve", "--http-addr", "127.0.0.1:0", "--ensure-topics=false")
	stderr, err := c.StderrPipe()
	must(t, err)
	must(t, c.Start())
	s := &serveProc{cmd: c, done: make(chan error, 1), logs: &bytes.Buffer{}}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.logs.WriteString(line + "\n")
			if m := serveURL.FindStringSubmatch(line); m != nil {
				urls <- m[1]
			}
		}
		s.done <- c.Wait()
	}()
	t.Cleanup(func() {
		if c.ProcessState == nil {
			_ = c.Process.Kill()
		}
		if t.Failed() {
			t.Logf("factory2 serve's log:\n%s", s.logs.String())
		}
	})
	select {
	case s.url = <-urls:
	case err := <-s.done:
		t.Fatalf("factory2 serve exited before serving: %v\n%s", err, s.logs)
	case <-time.After(2 * time.Minute):
		t.Fatalf("factory2 serve printed no HTTP address within 2m:\n%s", s.logs)
	}
	// Here a browser test can open s.url (the overview page).
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *serveProc) stop(t *testing.T) {
	t.Helper()
	must(t, s.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("factory2 serve after SIGTERM: %v\n%s", err, s.logs)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("factory2 serve did not exit within 90s of SIGTERM:\n%s", s.logs)
	}
}

// testPipeline: serve (the processors' principal) decides the sample fed
// by emit (the hooks' principal) over TLS, is stopped with SIGTERM
// halfway and restarted, and every decision of a reference run (the same
// configuration and sample through `factory2 dev`'s embedded broker)
// is in the decision topics exactly once.
func (e *secureEnv) testPipeline(t *testing.T) {
	composeReadyRow := `#decision-rows tr[data-kind="compose-ready"][data-subject=` + jsString(sample.ComposeID) + `]`
	want := e.referenceDecisions(t)
	if len(want) == 0 {
		t.Fatal("the reference run made no decision: the test would prove nothing")
	}

	adminCfg, err := config.Load(e.config)
	must(t, err)
	adminCfg.Brokers = []string{e.sb.Addr}
	adminCfg.Kafka = e.sb.Security(kafkatest.UserAdmin)
	p, err := newPipeline(adminCfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	must(t, err)
	admin := e.client(t, adminCfg.Kafka)

	steps := sample.Steps(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	srv := e.startServe(t)
	// A person watches the overview page while the sample is fed: its
	// stream connects before any event.
	b := browsertest.Start(t)
	b.Navigate(srv.url + "/")
	b.WaitText("#live", "live", time.Minute)
	for i, step := range steps {
		if i == len(steps)/2 {
			e.checkMetrics(t, srv.url)
			b.WaitJS(`document.querySelectorAll("#decision-rows tr.decision").length > 0`, 2*time.Minute,
				"the first half's decisions on the page", "#decision-rows tr")
			b.Screenshot("secure-1-first-half")
			srv.stop(t)
			// Without its local state, the restarted serve restores every
			// store from the changelogs: the restore path's client must
			// carry the security options too.
			must(t, os.RemoveAll(filepath.Join(e.dir, adminCfg.State.Dir)))
			srv = e.startServe(t)
			b.Navigate(srv.url + "/")
			b.WaitText("#live", "live", time.Minute)
			if b.Count(composeReadyRow) != 0 {
				t.Fatalf("%s is ready before the second half of the sample: the page would prove nothing", sample.ComposeID)
			}
		}
		e.emitStep(t, i, step)
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		err := waitSettled(ctx, admin, p)
		cancel()
		if err != nil {
			t.Fatalf("step %d: %v\nserve's log:\n%s", i, err, srv.logs)
		}
	}
	e.checkMetrics(t, srv.url)
	// The compose became ready in the second half: the page, loaded after
	// the restart, shows it without a reload.
	b.WaitJS(`document.querySelector(`+jsString(composeReadyRow)+`) !== null`, 2*time.Minute,
		"a compose-ready row for "+sample.ComposeID, "#decision-rows tr")
	b.Screenshot("secure-2-compose-ready")
	srv.stop(t)
	if !strings.Contains(srv.logs.String(), "restoring state from changelog") {
		t.Errorf("the restarted serve restored no store from its changelog; its log:\n%s", srv.logs)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	kopts, err := adminCfg.Kafka.Opts()
	must(t, err)
	recs, err := processors.ReadCommitted(ctx, adminCfg.Brokers, p.decisionTopics(), kopts...)
	must(t, err)
	lines := make([]watchLine, len(recs))
	for i, r := range recs {
		lines[i] = watchRecord(p.cat, p.codec, r)
	}
	got := decisionSet(t, lines)
	if !slices.Equal(got, want) {
		t.Errorf("decisions in read_committed differ from the reference run's (%d, want %d):\n%s",
			len(got), len(want), lineDiff(got, want))
	}
}

// decisionSet is what must match between two runs of the sample, sorted:
// every decision (topic, key, record without its ingest_time), but of
// compose-ready only the last of each compose. A compose's readiness
// while its members load from several partitions ("2 of 3 partitions
// have sent") depends on the order the partitions are read in, which
// differs between runs; its final readiness does not. It fails t if a
// decision id appears twice: each decision is made exactly once.
func decisionSet(t *testing.T, lines []watchLine) []string {
	t.Helper()
	var out []string
	ids := map[string]bool{}
	lastCompose := map[string]string{}
	for _, l := range lines {
		line, id := decisionLine(t, l)
		if ids[id] {
			t.Errorf("decision %s is in %s twice: %s", id, l.Topic, line)
		}
		ids[id] = true
		if strings.HasSuffix(l.Topic, topics.DecisionsComposeReady) {
			lastCompose[l.Key] = line
			continue
		}
		out = append(out, line)
	}
	for _, line := range lastCompose {
		out = append(out, line)
	}
	slices.Sort(out)
	return out
}

// decisionLine is l as decisionSet compares it: topic, key and record
// without its ingest_time (partitions, offsets and the times records were
// written differ between runs); and the decision's id.
func decisionLine(t *testing.T, l watchLine) (line, id string) {
	t.Helper()
	var rec map[string]any
	if err := json.Unmarshal(l.Record, &rec); err != nil {
		t.Fatalf("decision %s/%d@%d: %v (%s)", l.Topic, l.Partition, l.Offset, err, l.Error)
	}
	delete(rec, "ingest_time")
	j, err := json.Marshal(rec) // map keys sorted
	must(t, err)
	id, _ = rec["id"].(string)
	return l.Topic + " " + l.Key + " " + string(j), id
}

// lineDiff lists the lines only one of two sorted lists has, or that
// one has more often.
func lineDiff(got, want []string) string {
	count := map[string]int{}
	for _, l := range got {
		count[l]++
	}
	for _, l := range want {
		count[l]--
	}
	var b strings.Builder
	for l, n := range count {
		switch {
		case n > 0:
			fmt.Fprintf(&b, "  extra x%d: %s\n", n, l)
		case n < 0:
			fmt.Fprintf(&b, "  missing x%d: %s\n", -n, l)
		}
	}
	return b.String()
}

// referenceDecisions runs the sample through `factory2 dev` with the
// same configuration (its embedded broker, no security) and returns its
// decisionSet.
func (e *secureEnv) referenceDecisions(t *testing.T) []string {
	t.Helper()
	stdout, stderr, err := evCLIWithin(t, 4*time.Minute, "--config", e.config, "dev", "--exit-after-sample",
		"--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--data", t.TempDir(), "-o", "json")
	if err != nil {
		t.Fatalf("reference run: dev: %v\n%s", err, stderr)
	}
	var lines []watchLine
	for l := range strings.Lines(stdout) {
		var w watchLine
		if err := json.Unmarshal([]byte(l), &w); err != nil {
			t.Fatalf("reference run: %q: %v", l, err)
		}
		lines = append(lines, w)
	}
	return decisionSet(t, lines)
}

// emitStep emits one step of the sample as JSON events with `factory2
// emit`, as the hooks' principal.
func (e *secureEnv) emitStep(t *testing.T, i int, step []avro.Record) {
	t.Helper()
	var b bytes.Buffer
	for _, r := range step {
		j, err := avro.MarshalJSON(r)
		must(t, err)
		b.Write(j)
		b.WriteByte('\n')
	}
	file := filepath.Join(t.TempDir(), fmt.Sprintf("step-%d.jsonl", i))
	must(t, os.WriteFile(file, b.Bytes(), 0o644))
	if out, err := e.run(t, kafkatest.UserHooks, "emit", "--json", file, "--txn-id", fmt.Sprintf("sample-%d", i)); err != nil {
		t.Fatalf("step %d: emit as hooks: %v\n%s", i, err, out)
	}
}

// checkMetrics scrapes /metrics: the processors' own and franz-go's
// (kprom) metrics are there, so the Kafka clients are the instrumented
// ones.
func (e *secureEnv) checkMetrics(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	for _, want := range []string{"factory2_kafka_", "factory2_"} {
		if !bytes.Contains(body, []byte("\n"+want)) {
			t.Errorf("GET /metrics has no %s metric", want)
		}
	}
}
