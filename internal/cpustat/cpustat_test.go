package cpustat

import (
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/factory2/factory2/internal/kafkatest"
)

func TestParseStat(t *testing.T) {
	busy, total, err := parseStat([]byte("cpu  100 5 30 800 50 1 2 3 0 0\ncpu0 50 2 15 400 25 0 1 1 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	// user+nice+system+irq+softirq+steal; idle and iowait are not busy.
	if busy != 100+5+30+1+2+3 || total != 100+5+30+800+50+1+2+3 {
		t.Errorf("busy %d total %d", busy, total)
	}
	for _, bad := range []string{"", "intr 1 2 3\n", "cpu 1 2 x 4 5\n"} {
		if _, _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q): no error", bad)
		}
	}
}

func TestParseProcessStat(t *testing.T) {
	// A command name with spaces and parentheses of its own.
	line := "1234 (java (a) b) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 40 0 123 0 0\n"
	ticks, err := parseProcessStat("1234", []byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if ticks != 250+75 {
		t.Errorf("ticks %d, want utime+stime 325", ticks)
	}
	if _, err := parseProcessStat("1", []byte("1 (x) S 1 2")); err == nil {
		t.Error("a short line: no error")
	}
}

// TestUsageSeesThisProcessBusy burns CPU on every core for a while and
// checks that the usage accounts for it on this process and the machine.
func TestUsageSeesThisProcessBusy(t *testing.T) {
	s, err := Take()
	if err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	done := make(chan struct{})
	for range runtime.NumCPU() {
		go func() {
			defer func() { done <- struct{}{} }()
			x := 0
			for !stop.Load() {
				x++
			}
			_ = x
		}()
	}
	time.Sleep(300 * time.Millisecond)
	stop.Store(true)
	for range runtime.NumCPU() {
		<-done
	}
	u, err := s.Since()
	if err != nil {
		t.Fatal(err)
	}
	t.Log(u)
	// However loaded the machine, spinning goroutines got some of it.
	if u.Self <= 0 || u.Machine < u.Self*0.9 || u.Machine > float64(u.Cores)+0.01 {
		t.Errorf("usage %+v: want this process busy, within the machine's busy cores", u)
	}
	if !strings.Contains(u.String(), "this process") {
		t.Errorf("String() = %q", u.String())
	}
}

// TestBrokerFound checks that the broker make test started is counted as
// one (its command line names kafka.Kafka).
func TestBrokerFound(t *testing.T) {
	if os.Getenv(kafkatest.EnvBrokers) == "" || !strings.HasPrefix(os.Getenv(kafkatest.EnvBrokers), "127.0.0.1:") {
		t.Skip("no local broker configured")
	}
	pids, err := brokerPIDs()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) == 0 {
		t.Fatalf("no kafka.Kafka process found, with %s=%s", kafkatest.EnvBrokers, os.Getenv(kafkatest.EnvBrokers))
	}
}
