// Package cpustat tells the benchmarks where a machine's CPU went during a
// run: how busy all of its cores were, how much of it the Kafka brokers
// on it took and how much this process took. It reads Linux's /proc and
// is meant for benchmarks on a machine the broker shares, where "a second
// processing thread did not help" needs the evidence that no core was
// left for it.
package cpustat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of /proc's CPU times: 100 on every
// Linux architecture Go supports.
const clockTick = 100

// Sample is the CPU used so far: by the whole machine (busy and total,
// over all cores), by the processes whose command line names
// kafka.Kafka, and by this process.
type Sample struct {
	at          time.Time
	busy, total uint64 // machine, in ticks
	brokers     uint64 // ticks
	self        uint64 // ticks
}

// Take samples the CPU counters now.
func Take() (Sample, error) {
	s := Sample{at: time.Now()}
	var err error
	if s.busy, s.total, err = machine(); err != nil {
		return s, err
	}
	if s.self, err = processTicks("self"); err != nil {
		return s, err
	}
	s.brokers, err = brokerTicks()
	return s, err
}

// Usage is the CPU used between two samples, in cores (1 = one core busy
// for the whole interval).
type Usage struct {
	Wall time.Duration
	// Cores is the number of cores of the machine.
	Cores int
	// Machine is how many cores were busy on average, by anything.
	Machine float64
	// Brokers and Self are the cores the Kafka brokers and this process
	// used; Other is the rest of the machine (the kernel's own work
	// included).
	Brokers, Self, Other float64
}

// Since is the CPU used from s to now.
func (s Sample) Since() (Usage, error) {
	now, err := Take()
	if err != nil {
		return Usage{}, err
	}
	return now.sub(s), nil
}

func (s Sample) sub(from Sample) Usage {
	u := Usage{Wall: s.at.Sub(from.at), Cores: runtime.NumCPU()}
	secs := u.Wall.Seconds()
	if secs <= 0 || s.total == from.total {
		return u
	}
	// /proc/stat's total counts every core: its share that was busy,
	// times the cores, is the busy cores on average.
	u.Machine = float64(s.busy-from.busy) / float64(s.total-from.total) * float64(u.Cores)
	cores := func(ticks uint64) float64 { return float64(ticks) / clockTick / secs }
	u.Brokers = cores(s.brokers - min(from.brokers, s.brokers))
	u.Self = cores(s.self - from.self)
	u.Other = max(0, u.Machine-u.Brokers-u.Self)
	return u
}

func (u Usage) String() string {
	return fmt.Sprintf("cpu: machine %.2f of %d cores busy (brokers %.2f, this process %.2f, other %.2f)",
		u.Machine, u.Cores, u.Brokers, u.Self, u.Other)
}

// machine reads the busy and total ticks of all cores from /proc/stat.
func machine() (busy, total uint64, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseStat(b)
}

// parseStat is machine's parser of /proc/stat.
func parseStat(b []byte) (busy, total uint64, err error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, 0, fmt.Errorf("cpustat: /proc/stat starts with %q", line)
	}
	// user nice system idle iowait irq softirq steal (guest times are
	// already in user and nice).
	for i, f := range fields[1:min(len(fields), 9)] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("cpustat: /proc/stat: %w", err)
		}
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total, nil
}

// processTicks reads the user and system ticks of process pid ("self" for
// this one) from /proc/<pid>/stat.
func processTicks(pid string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0, err
	}
	return parseProcessStat(pid, b)
}

// parseProcessStat is processTicks' parser of /proc/<pid>/stat.
func parseProcessStat(pid string, b []byte) (uint64, error) {
	// The command name, in parentheses, may hold spaces: fields count
	// from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("cpustat: /proc/%s/stat has no command name", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	// Fields 14 and 15 of proc(5), utime and stime, are the 12th and
	// 13th after the command name.
	if len(fields) < 13 {
		return 0, fmt.Errorf("cpustat: /proc/%s/stat has %d fields after the name", pid, len(fields))
	}
	var ticks uint64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpustat: /proc/%s/stat: %w", pid, err)
		}
		ticks += v
	}
	return ticks, nil
}

// brokerTicks sums processTicks over the processes running kafka.Kafka
// (the brokers deploy/kafka/kafka.sh starts, and any other on the
// machine). A broker that exits between the listing and the read is left
// out.
func brokerTicks() (uint64, error) {
	pids, err := brokerPIDs()
	if err != nil {
		return 0, err
	}
	var ticks uint64
	for _, pid := range pids {
		t, err := processTicks(pid)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		ticks += t
	}
	return ticks, nil
}

// brokerPIDs lists the processes whose command line has the argument
// kafka.Kafka (the broker's main class).
func brokerPIDs() ([]string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmd, []byte("\x00kafka.Kafka\x00")) {
			pids = append(pids, e.Name())
		}
	}
	return pids, nil
}
