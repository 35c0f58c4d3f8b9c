package main

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"testing"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	apitypes "github.com/containerd/containerd/api/types"
	"github.com/containerd/typeurl/v2"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The VM running the integration tests is cgroup v1, so these tests are the only check of
// the v2 mapping. Every source value is distinct, so a field read from the wrong place
// shows up as a wrong number rather than passing by coincidence.

var metricsTS = time.Date(2026, 3, 4, 5, 6, 7, 890, time.UTC)

// metricOf wraps stats the way containerd does on the way to the client: the shim
// marshals them with typeurl.MarshalAny and the task service sends the result as an Any.
func metricOf(t *testing.T, stats any) *apitypes.Metric {
	t.Helper()
	a, err := typeurl.MarshalAny(stats)
	if err != nil {
		t.Fatalf("MarshalAny: %v", err)
	}
	return &apitypes.Metric{Timestamp: timestamppb.New(metricsTS), ID: "c1", Data: typeurl.MarshalProto(a)}
}

// decodeToJSON runs decodeMetrics and returns the Metrics shape as the Python side sees it.
func decodeToJSON(t *testing.T, m *apitypes.Metric) map[string]any {
	t.Helper()
	out, err := decodeMetrics(m)
	if err != nil {
		t.Fatalf("decodeMetrics: %v", err)
	}
	raw, err := json.Marshal(out)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	var got map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // exact uint64s, not float64
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("decode JSON: %v", err)
	}
	return got
}

// n is a JSON number as decodeToJSON yields it.
func n(v uint64) any { return json.Number(strconv.FormatUint(v, 10)) }

func assertMetrics(t *testing.T, got, want map[string]any) {
	t.Helper()
	for _, section := range []string{"cgroup", "timestamp", "cpu", "memory", "pids"} {
		if !reflect.DeepEqual(got[section], want[section]) {
			t.Errorf("%s:\n got  %v\n want %v", section, got[section], want[section])
		}
	}
	if len(got) != len(want) {
		t.Errorf("keys: got %v, want %v", got, want)
	}
}

func TestMetricsV2EveryField(t *testing.T) {
	stats := &v2.Metrics{
		CPU: &v2.CPUStat{
			UsageUsec: 7001, UserUsec: 5002, SystemUsec: 1999,
			NrPeriods: 40, NrThrottled: 11, ThrottledUsec: 303,
		},
		Memory: &v2.MemoryStat{
			Anon: 4096 * 3, File: 4096 * 5, // memory.stat: anon -> rss, file -> cache
			Usage: 1 << 20, UsageLimit: 64 << 20, MaxUsage: 2 << 20,
			SwapUsage: 4096 * 7, SwapLimit: 128 << 20,
			// Fields the Metrics shape does not carry, set so a mix-up would show.
			Shmem: 11, Slab: 13, KernelStack: 17, FileMapped: 19,
		},
		MemoryEvents: &v2.MemoryEvents{Oom: 3, OomKill: 2, Max: 9},
		Pids:         &v2.PidsStat{Current: 6, Limit: 100},
	}
	got := decodeToJSON(t, metricOf(t, stats))
	assertMetrics(t, got, map[string]any{
		"cgroup":    "v2",
		"timestamp": "2026-03-04T05:06:07.00000089Z",
		"cpu": map[string]any{
			// cpu.stat is in microseconds; the shape is in nanoseconds.
			"total_ns": n(7001000), "user_ns": n(5002000), "system_ns": n(1999000),
			"throttled_periods": n(11), "throttled_time_ns": n(303000),
		},
		"memory": map[string]any{
			"usage": n(1 << 20), "max_usage": n(2 << 20), "limit": n(64 << 20),
			"rss": n(4096 * 3), "cache": n(4096 * 5), "swap": n(4096 * 7),
			"oom_events": n(2),
		},
		"pids": map[string]any{"current": n(6), "limit": n(100)},
	})
}

func TestMetricsV2UnsetAndUnlimited(t *testing.T) {
	// What the cgroups library reports without memory.peak (kernel < 5.19: 0) and with
	// pids.max = "max" (math.MaxUint64); the memory-events and cpu files missing entirely.
	stats := &v2.Metrics{
		Memory: &v2.MemoryStat{Usage: 5000, UsageLimit: math.MaxUint64},
		Pids:   &v2.PidsStat{Current: 1, Limit: math.MaxUint64},
	}
	got := decodeToJSON(t, metricOf(t, stats))
	assertMetrics(t, got, map[string]any{
		"cgroup":    "v2",
		"timestamp": "2026-03-04T05:06:07.00000089Z",
		"cpu": map[string]any{
			"total_ns": nil, "user_ns": nil, "system_ns": nil,
			"throttled_periods": nil, "throttled_time_ns": nil,
		},
		"memory": map[string]any{
			"usage": n(5000), "max_usage": nil, "limit": n(math.MaxUint64),
			"rss": n(0), "cache": n(0), "swap": n(0), "oom_events": nil,
		},
		"pids": map[string]any{"current": n(1), "limit": nil},
	})
	stats.Pids.Limit = 0 // no pids controller value at all
	if got := decodeToJSON(t, metricOf(t, stats)); got["pids"].(map[string]any)["limit"] != nil {
		t.Errorf("v2 pids.limit 0: got %v, want null", got["pids"])
	}
}

func TestMetricsV1EveryField(t *testing.T) {
	stats := &v1.Metrics{
		CPU: &v1.CPUStat{
			Usage:      &v1.CPUUsage{Total: 9000, Kernel: 2500, User: 6100, PerCPU: []uint64{4000, 5000}},
			Throttling: &v1.Throttle{Periods: 50, ThrottledPeriods: 12, ThrottledTime: 777},
		},
		Memory: &v1.MemoryStat{
			// The hierarchical totals are read, not the cgroup's own rss/cache.
			RSS: 1, Cache: 2, TotalRSS: 4096 * 3, TotalCache: 4096 * 5,
			Usage: &v1.MemoryEntry{Usage: 1 << 20, Max: 3 << 20, Limit: 64 << 20, Failcnt: 4},
			// memsw: memory + swap, so swap = memsw usage - memory usage.
			Swap:   &v1.MemoryEntry{Usage: 1<<20 + 4096*7, Max: 5 << 20, Limit: 128 << 20},
			Kernel: &v1.MemoryEntry{Usage: 99},
		},
		MemoryOomControl: &v1.MemoryOomControl{OomKill: 2, UnderOom: 1},
		Pids:             &v1.PidsStat{Current: 6, Limit: 100},
	}
	got := decodeToJSON(t, metricOf(t, stats))
	assertMetrics(t, got, map[string]any{
		"cgroup":    "v1",
		"timestamp": "2026-03-04T05:06:07.00000089Z",
		"cpu": map[string]any{
			"total_ns": n(9000), "user_ns": n(6100), "system_ns": n(2500),
			"throttled_periods": n(12), "throttled_time_ns": n(777),
		},
		"memory": map[string]any{
			"usage": n(1 << 20), "max_usage": n(3 << 20), "limit": n(64 << 20),
			"rss": n(4096 * 3), "cache": n(4096 * 5), "swap": n(4096 * 7),
			"oom_events": n(2),
		},
		"pids": map[string]any{"current": n(6), "limit": n(100)},
	})
}

func TestMetricsV1UnsetAndUnlimited(t *testing.T) {
	// No swap accounting (memsw entries ignored: usage 0), pids.max = "max" (the cgroups
	// library reads it as 0), no oom_control and no cpu controller stats.
	stats := &v1.Metrics{
		Memory: &v1.MemoryStat{
			TotalRSS: 10, TotalCache: 20,
			Usage: &v1.MemoryEntry{Usage: 30, Max: 40, Limit: 9223372036854771712},
			Swap:  &v1.MemoryEntry{},
		},
		Pids: &v1.PidsStat{Current: 1, Limit: 0},
	}
	got := decodeToJSON(t, metricOf(t, stats))
	assertMetrics(t, got, map[string]any{
		"cgroup":    "v1",
		"timestamp": "2026-03-04T05:06:07.00000089Z",
		"cpu": map[string]any{
			"total_ns": nil, "user_ns": nil, "system_ns": nil,
			"throttled_periods": nil, "throttled_time_ns": nil,
		},
		"memory": map[string]any{
			"usage": n(30), "max_usage": n(40), "limit": n(9223372036854771712),
			"rss": n(10), "cache": n(20), "swap": nil, "oom_events": nil,
		},
		"pids": map[string]any{"current": n(1), "limit": nil},
	})
	// memsw below usage (read at a different instant) must not wrap around.
	stats.Memory.Swap = &v1.MemoryEntry{Usage: 25}
	if sw := decodeToJSON(t, metricOf(t, stats))["memory"].(map[string]any)["swap"]; sw != nil {
		t.Errorf("v1 memsw < usage: swap = %v, want null", sw)
	}
}

func TestMetricsEmptyStatsAreAllNull(t *testing.T) {
	for _, stats := range []any{&v1.Metrics{}, &v2.Metrics{}} {
		got := decodeToJSON(t, metricOf(t, stats))
		for _, section := range []string{"cpu", "memory", "pids"} {
			for k, v := range got[section].(map[string]any) {
				if v != nil {
					t.Errorf("%T: %s.%s = %v, want null", stats, section, k, v)
				}
			}
		}
	}
}

func TestMetricsWithoutTimestampUsesNow(t *testing.T) {
	m := metricOf(t, &v2.Metrics{})
	m.Timestamp = nil
	out, err := decodeMetrics(m)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := time.Parse(time.RFC3339Nano, out.Timestamp)
	if err != nil {
		t.Fatalf("timestamp %q: %v", out.Timestamp, err)
	}
	if ts.Year() < 2020 {
		t.Errorf("timestamp %s: want the current time, not the epoch", out.Timestamp)
	}
}

func TestMetricsDecodeErrors(t *testing.T) {
	garbage := []byte{0xff, 0xff, 0xff}
	cases := []struct {
		name string
		m    *apitypes.Metric
		want int32
	}{
		{"nil metric", nil, statusNotFound},
		{"no data", &apitypes.Metric{}, statusNotFound},
		{"unknown type", &apitypes.Metric{Data: &anypb.Any{TypeUrl: "example.com/other.Metrics"}}, statusNotImplemented},
		{"corrupt v1", &apitypes.Metric{Data: &anypb.Any{TypeUrl: "io.containerd.cgroups.v1.Metrics", Value: garbage}}, statusInternal},
		{"corrupt v2", &apitypes.Metric{Data: &anypb.Any{TypeUrl: "io.containerd.cgroups.v2.Metrics", Value: garbage}}, statusInternal},
	}
	for _, tc := range cases {
		out, err := decodeMetrics(tc.m)
		if got := statusOf(err); got != tc.want || out != nil {
			t.Errorf("%s: status %s, out %v; want %s and no metrics", tc.name, statusName(got), out, statusName(tc.want))
		}
	}
}

func TestMetricsTypeURLsAreContainerds(t *testing.T) {
	// decodeMetrics matches on these names; pin them to what typeurl gives the real types.
	for stats, want := range map[any]string{&v1.Metrics{}: "io.containerd.cgroups.v1.Metrics", &v2.Metrics{}: "io.containerd.cgroups.v2.Metrics"} {
		if got, err := typeurl.TypeURL(stats); err != nil || got != want {
			t.Errorf("TypeURL(%T) = %q, %v; want %q", stats, got, err, want)
		}
	}
}
