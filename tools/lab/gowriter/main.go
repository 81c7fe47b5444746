// etcd-ha-writer: the lab's continuous writer on go.etcd.io/etcd/client/v3, the client kube-apiserver uses.
//
// One long-lived client with every endpoint (as kube-apiserver's --etcd-servers), sequential puts of unique
// keys, each classified exactly once:
//
//	ok       acknowledged: must survive every fault;
//	failed   proven not applied: rejected before a proposal (invalid argument, auth, too many requests,
//	         no leader, a proposal raft dropped during a leadership transfer) or never sent (connection
//	         refused, no address available);
//	timeout  indeterminate: deadline passed, connection lost, anything else.
//
// The client's own retries stay as they are (that is the point: measure what Kubernetes sees); they retry a
// put only when it provably did not reach a server.
//
// Output: JSON lines (on stdout, or in the -out file), one per put ({"seq":…}), one per leader seen changing ({"leader":…}, from a
// Status poll of every endpoint), and a last {"done":…} line. Writing stops at -max-ops, -max-duration, or
// when stdin reaches EOF or a line "stop"; the put in flight finishes (bounded by -op-timeout) first.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

type record struct {
	Seq      int     `json:"seq"`
	Key      string  `json:"key"`
	Value    string  `json:"value"`
	Outcome  string  `json:"outcome"`
	StartMs  float64 `json:"startMs"`
	EndMs    float64 `json:"endMs"`
	Revision string  `json:"revision,omitempty"`
	Error    string  `json:"error,omitempty"`
}

type leaderEvent struct {
	AtMs     float64 `json:"atMs"`
	ID       string  `json:"id"`
	Term     uint64  `json:"term"`
	Endpoint string  `json:"endpoint"`
}

type done struct {
	StartMs float64 `json:"startMs"`
	StopMs  float64 `json:"stopMs"`
	Puts    int     `json:"puts"`
	Reason  string  `json:"reason"`
}

func nowMs() float64 { return float64(time.Now().UnixNano()) / 1e6 }

// out: every line goes to the -out file (stdout by default), written through at once. A file keeps the
// writer independent of its reader: a reader that stops reading (a busy Node event loop) would otherwise fill
// the pipe and stall the puts.
var out struct {
	sync.Mutex
	w *bufio.Writer
}

func emit(key string, v any) {
	b, err := json.Marshal(map[string]any{key: v})
	if err != nil {
		panic(err)
	}
	out.Lock()
	defer out.Unlock()
	out.w.Write(b)
	out.w.WriteByte('\n')
	out.w.Flush()
}

// classify: only errors that prove the put was not applied are "failed".
func classify(err error) string {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "timeout"
	}
	st, ok := status.FromError(err)
	if !ok {
		return "timeout"
	}
	switch st.Code() {
	case codes.InvalidArgument, codes.PermissionDenied, codes.Unauthenticated, codes.ResourceExhausted:
		return "failed"
	case codes.Unknown:
		// raft refuses new proposals while leadership is being transferred (ErrProposalDropped): never
		// appended to the log, so never applied.
		if strings.Contains(st.Message(), "raft proposal dropped") {
			return "failed"
		}
	case codes.Unavailable:
		m := st.Message()
		if strings.Contains(m, "connection refused") || strings.Contains(m, "there is no address available") || strings.Contains(m, "etcdserver: no leader") {
			return "failed"
		}
	}
	return "timeout"
}

func tlsConfig(cacert, cert, key string) (*tls.Config, error) {
	if cacert == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(cacert)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", cacert)
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// pollLeader reports each change of leader (or term) seen by asking every endpoint's Status.
func pollLeader(ctx context.Context, c *clientv3.Client, endpoints []string, every time.Duration) {
	var last leaderEvent
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var best leaderEvent
		for _, ep := range endpoints {
			sctx, cancel := context.WithTimeout(ctx, every)
			s, err := c.Status(sctx, ep)
			cancel()
			if err != nil || s.Leader == 0 {
				continue
			}
			if s.RaftTerm > best.Term {
				best = leaderEvent{ID: fmt.Sprintf("%x", s.Leader), Term: s.RaftTerm}
			}
		}
		if best.ID != "" && (best.ID != last.ID || best.Term != last.Term) {
			for _, m := range endpoints {
				// The leader's client URL, when this client knows it.
				if s, err := statusOf(ctx, c, m, every); err == nil && fmt.Sprintf("%x", s.Header.MemberId) == best.ID {
					best.Endpoint = m
					break
				}
			}
			best.AtMs = nowMs()
			emit("leader", best)
			last = best
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func statusOf(ctx context.Context, c *clientv3.Client, ep string, d time.Duration) (*clientv3.StatusResponse, error) {
	sctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return c.Status(sctx, ep)
}

func main() {
	endpoints := flag.String("endpoints", "", "client URLs, comma-separated (all of them go into one client)")
	cacert := flag.String("cacert", "", "CA bundle (TLS)")
	cert := flag.String("cert", "", "client certificate (TLS)")
	key := flag.String("key", "", "client key (TLS)")
	prefix := flag.String("prefix", "/lab/gowriter/", "key prefix")
	opTimeout := flag.Duration("op-timeout", 2*time.Second, "deadline of each put")
	pause := flag.Duration("pause", 0, "sleep between puts")
	maxOps := flag.Int("max-ops", 100000, "bound on the number of puts")
	maxDuration := flag.Duration("max-duration", 10*time.Minute, "bound on how long to write")
	width := flag.Int("width", 6, "digits of the key's sequence number")
	leaderPoll := flag.Duration("leader-poll", 100*time.Millisecond, "how often to ask every endpoint for the leader (0: never)")
	outPath := flag.String("out", "", "file the JSON lines go to (default stdout)")
	flag.Parse()
	out.w = bufio.NewWriter(os.Stdout)
	if *outPath != "" {
		f, err := os.OpenFile(*outPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			fmt.Fprintf(os.Stderr, "etcd-ha-writer: -out: %v\n", err)
			os.Exit(2)
		}
		defer f.Close()
		out.w = bufio.NewWriter(f)
	}
	eps := strings.Split(*endpoints, ",")
	if *endpoints == "" || *opTimeout <= 0 || *maxOps < 1 {
		fmt.Fprintln(os.Stderr, "etcd-ha-writer: -endpoints is required, -op-timeout > 0, -max-ops >= 1")
		os.Exit(2)
	}
	tc, err := tlsConfig(*cacert, *cert, *key)
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd-ha-writer: TLS: %v\n", err)
		os.Exit(2)
	}
	// kube-apiserver's settings (staging/src/k8s.io/apiserver/pkg/storage/storagebackend/factory/etcd3.go):
	// dial timeout 20 s, keepalive 30 s / 10 s.
	c, err := clientv3.New(clientv3.Config{
		Endpoints:            eps,
		TLS:                  tc,
		DialTimeout:          20 * time.Second,
		DialKeepAliveTime:    30 * time.Second,
		DialKeepAliveTimeout: 10 * time.Second,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd-ha-writer: client: %v\n", err)
		os.Exit(2)
	}
	defer c.Close()

	stop := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(os.Stdin)
		for s.Scan() {
			if strings.TrimSpace(s.Text()) == "stop" {
				break
			}
		}
		stop <- "stopped"
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	if *leaderPoll > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); pollLeader(ctx, c, eps, *leaderPoll) }()
	}

	run := make([]byte, 4)
	if _, err := rand.Read(run); err != nil {
		panic(err)
	}
	runID := hex.EncodeToString(run)
	start := nowMs()
	until := time.Now().Add(*maxDuration)
	reason := "max-ops"
	puts := 0
loop:
	for seq := 0; seq < *maxOps; seq++ {
		select {
		case reason = <-stop:
			break loop
		default:
		}
		if time.Now().After(until) {
			reason = "max-duration"
			break
		}
		r := record{Seq: seq, Key: fmt.Sprintf("%s%0*d", *prefix, *width, seq), Value: fmt.Sprintf("%s:%d", runID, seq), StartMs: nowMs()}
		pctx, pcancel := context.WithTimeout(context.Background(), *opTimeout)
		res, err := c.Put(pctx, r.Key, r.Value)
		pcancel()
		r.EndMs = nowMs()
		if err == nil {
			r.Outcome = "ok"
			r.Revision = fmt.Sprint(res.Header.Revision)
		} else {
			r.Outcome = classify(err)
			r.Error = err.Error()
		}
		emit("put", r)
		puts++
		if *pause > 0 {
			select {
			case reason = <-stop:
				break loop
			case <-time.After(*pause):
			}
		}
	}
	stopMs := nowMs()
	cancel()
	wg.Wait()
	emit("done", done{StartMs: start, StopMs: stopMs, Puts: puts, Reason: reason})
}
