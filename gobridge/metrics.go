package main

import (
	"math"
	"strings"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	apitypes "github.com/containerd/containerd/api/types"
	"google.golang.org/protobuf/proto"
)

// metricsJSON is the one Metrics shape of CONTRACT.md; nil pointers encode as null for
// what this cgroup version does not measure.
type metricsJSON struct {
	Cgroup    string     `json:"cgroup"`
	Timestamp string     `json:"timestamp"`
	CPU       cpuJSON    `json:"cpu"`
	Memory    memoryJSON `json:"memory"`
	Pids      pidsJSON   `json:"pids"`
}

type cpuJSON struct {
	TotalNS          *uint64 `json:"total_ns"`
	UserNS           *uint64 `json:"user_ns"`
	SystemNS         *uint64 `json:"system_ns"`
	ThrottledPeriods *uint64 `json:"throttled_periods"`
	ThrottledTimeNS  *uint64 `json:"throttled_time_ns"`
}

type memoryJSON struct {
	Usage     *uint64 `json:"usage"`
	MaxUsage  *uint64 `json:"max_usage"`
	Limit     *uint64 `json:"limit"`
	RSS       *uint64 `json:"rss"`
	Cache     *uint64 `json:"cache"`
	Swap      *uint64 `json:"swap"`
	OOMEvents *uint64 `json:"oom_events"`
}

type pidsJSON struct {
	Current *uint64 `json:"current"`
	Limit   *uint64 `json:"limit"`
}

func u64(v uint64) *uint64 { return &v }

// nonZero is for values where 0 means "not set" (e.g. pids.max = max).
func nonZero(v uint64) *uint64 {
	if v == 0 {
		return nil
	}
	return &v
}

// limitOrNull is for a cgroup v2 limit file, which the cgroups library reads as
// math.MaxUint64 when it says "max" and as 0 when it is missing: both mean no limit.
func limitOrNull(v uint64) *uint64 {
	if v == math.MaxUint64 {
		return nil
	}
	return nonZero(v)
}

// decodeMetrics decodes the task metrics Any by its type URL (cgroup v1 or v2 stats).
func decodeMetrics(m *apitypes.Metric) (*metricsJSON, error) {
	if m == nil || m.Data == nil {
		return nil, newError(statusNotFound, "task has no metrics")
	}
	ts := m.Timestamp.AsTime()
	if m.Timestamp == nil {
		ts = time.Now()
	}
	url := m.Data.GetTypeUrl()
	switch {
	case strings.HasSuffix(url, "cgroups.v1.Metrics"):
		var s v1.Metrics
		if err := proto.Unmarshal(m.Data.GetValue(), &s); err != nil {
			return nil, newError(statusInternal, "decode cgroup v1 metrics: %v", err)
		}
		return fromV1(&s, ts), nil
	case strings.HasSuffix(url, "cgroups.v2.Metrics"):
		var s v2.Metrics
		if err := proto.Unmarshal(m.Data.GetValue(), &s); err != nil {
			return nil, newError(statusInternal, "decode cgroup v2 metrics: %v", err)
		}
		return fromV2(&s, ts), nil
	}
	return nil, newError(statusNotImplemented, "unknown metrics type %q", url)
}

func fromV1(s *v1.Metrics, ts time.Time) *metricsJSON {
	out := &metricsJSON{Cgroup: "v1", Timestamp: ts.UTC().Format(time.RFC3339Nano)}
	if c := s.CPU; c != nil {
		if u := c.Usage; u != nil {
			out.CPU.TotalNS, out.CPU.UserNS, out.CPU.SystemNS = u64(u.Total), u64(u.User), u64(u.Kernel)
		}
		if t := c.Throttling; t != nil {
			out.CPU.ThrottledPeriods, out.CPU.ThrottledTimeNS = u64(t.ThrottledPeriods), u64(t.ThrottledTime)
		}
	}
	if mem := s.Memory; mem != nil {
		out.Memory.RSS, out.Memory.Cache = u64(mem.TotalRSS), u64(mem.TotalCache)
		if u := mem.Usage; u != nil {
			out.Memory.Usage, out.Memory.MaxUsage, out.Memory.Limit = u64(u.Usage), u64(u.Max), u64(u.Limit)
			// memsw counts memory plus swap; without swap accounting it reads 0.
			if sw := mem.Swap; sw != nil && sw.Usage >= u.Usage && sw.Usage > 0 {
				out.Memory.Swap = u64(sw.Usage - u.Usage)
			}
		}
	}
	if oc := s.MemoryOomControl; oc != nil {
		out.Memory.OOMEvents = u64(oc.OomKill)
	}
	if p := s.Pids; p != nil {
		out.Pids.Current, out.Pids.Limit = u64(p.Current), nonZero(p.Limit)
	}
	return out
}

func fromV2(s *v2.Metrics, ts time.Time) *metricsJSON {
	out := &metricsJSON{Cgroup: "v2", Timestamp: ts.UTC().Format(time.RFC3339Nano)}
	if c := s.CPU; c != nil {
		out.CPU.TotalNS, out.CPU.UserNS, out.CPU.SystemNS = u64(c.UsageUsec*1000), u64(c.UserUsec*1000), u64(c.SystemUsec*1000)
		out.CPU.ThrottledPeriods, out.CPU.ThrottledTimeNS = u64(c.NrThrottled), u64(c.ThrottledUsec*1000)
	}
	if mem := s.Memory; mem != nil {
		out.Memory.Usage, out.Memory.Limit = u64(mem.Usage), u64(mem.UsageLimit)
		out.Memory.MaxUsage = nonZero(mem.MaxUsage) // memory.peak needs kernel >= 5.19
		out.Memory.RSS, out.Memory.Cache, out.Memory.Swap = u64(mem.Anon), u64(mem.File), u64(mem.SwapUsage)
	}
	if ev := s.MemoryEvents; ev != nil {
		out.Memory.OOMEvents = u64(ev.OomKill)
	}
	if p := s.Pids; p != nil {
		out.Pids.Current, out.Pids.Limit = u64(p.Current), limitOrNull(p.Limit)
	}
	return out
}
