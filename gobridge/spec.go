package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/containerd/v2/contrib/seccomp"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/cap"
	"github.com/containerd/containerd/v2/pkg/oci"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// specJSON is the Spec of CONTRACT.md; every field is optional. Pointers tell "absent"
// from zero where zero is meaningful.
type specJSON struct {
	Args              []string          `json:"args"`
	Entrypoint        *[]string         `json:"entrypoint"`
	Command           *[]string         `json:"command"`
	Env               []string          `json:"env"`
	Cwd               string            `json:"cwd"`
	User              string            `json:"user"`
	Hostname          string            `json:"hostname"`
	Mounts            []mountJSON       `json:"mounts"`
	HostNetwork       bool              `json:"host_network"`
	HostPID           bool              `json:"host_pid"`
	NetnsPath         string            `json:"netns_path"`
	CapAdd            []string          `json:"cap_add"`
	CapDrop           []string          `json:"cap_drop"`
	Privileged        bool              `json:"privileged"`
	Devices           []deviceJSON      `json:"devices"`
	Seccomp           bool              `json:"seccomp"`
	SeccompProfile    string            `json:"seccomp_profile"`
	ReadonlyRootfs    bool              `json:"readonly_rootfs"`
	ShmSize           int64             `json:"shm_size"`
	Sysctls           map[string]string `json:"sysctls"`
	PidsLimit         int64             `json:"pids_limit"`
	CgroupParent      string            `json:"cgroup_parent"`
	MemoryLimit       int64             `json:"memory_limit"`
	MemoryReservation int64             `json:"memory_reservation"`
	MemorySwap        int64             `json:"memory_swap"`
	CPUShares         int64             `json:"cpu_shares"`
	CPUQuota          int64             `json:"cpu_quota"`
	CPUPeriod         int64             `json:"cpu_period"`
	CpusetCpus        string            `json:"cpuset_cpus"`
	CpusetMems        string            `json:"cpuset_mems"`
	OOMScoreAdj       *int              `json:"oom_score_adj"`
	Annotations       map[string]string `json:"annotations"`
	TTY               bool              `json:"tty"`
	NoNewPrivileges   bool              `json:"no_new_privileges"`
}

type mountJSON struct {
	Type        string   `json:"type"`
	Source      string   `json:"source"`
	Destination string   `json:"destination"`
	Options     []string `json:"options"`
}

type deviceJSON struct {
	HostPath      string `json:"host_path"`
	ContainerPath string `json:"container_path"`
	Permissions   string `json:"permissions"`
}

// processArgs applies the CONTRACT.md rules: args replaces everything; entrypoint replaces
// the image ENTRYPOINT and drops its CMD; command replaces the image CMD.
func processArgs(s *specJSON, img ocispec.ImageConfig) ([]string, error) {
	if len(s.Args) > 0 {
		return s.Args, nil
	}
	entry, cmd := img.Entrypoint, img.Cmd
	if s.Entrypoint != nil {
		entry, cmd = *s.Entrypoint, nil
	}
	if s.Command != nil {
		cmd = *s.Command
	}
	args := append(append([]string{}, entry...), cmd...)
	if len(args) == 0 {
		return nil, invalidArg("spec.args", "[]", "the image has no ENTRYPOINT or CMD; give args, entrypoint or command")
	}
	return args, nil
}

// normalizeCaps turns "net_admin" / "CAP_NET_ADMIN" into "CAP_NET_ADMIN" and checks it is
// a capability this kernel build of the client knows; "ALL" stays "ALL".
func normalizeCaps(field string, names []string) ([]string, error) {
	known := map[string]bool{}
	for _, k := range cap.Known() {
		known[k] = true
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		u := strings.ToUpper(strings.TrimSpace(n))
		if u == "ALL" {
			out = append(out, u)
			continue
		}
		if !strings.HasPrefix(u, "CAP_") {
			u = "CAP_" + u
		}
		if !known[u] {
			return nil, invalidArg(field, n, "unknown capability")
		}
		out = append(out, u)
	}
	return out, nil
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// validateSpec checks values that containerd would accept but that are surely wrong.
func validateSpec(s *specJSON) error {
	nonNeg := []struct {
		field string
		v     int64
	}{
		{"spec.shm_size", s.ShmSize}, {"spec.pids_limit", s.PidsLimit},
		{"spec.memory_limit", s.MemoryLimit}, {"spec.memory_reservation", s.MemoryReservation},
		{"spec.cpu_shares", s.CPUShares}, {"spec.cpu_period", s.CPUPeriod},
	}
	for _, f := range nonNeg {
		if f.v < 0 {
			return invalidArg(f.field, f.v, "must be >= 0")
		}
	}
	if s.MemorySwap < -1 {
		return invalidArg("spec.memory_swap", s.MemorySwap, "must be -1 (unlimited) or >= 0")
	}
	if s.MemorySwap > 0 && s.MemoryLimit > 0 && s.MemorySwap < s.MemoryLimit {
		return invalidArg("spec.memory_swap", s.MemorySwap, "must be >= memory_limit (it counts memory plus swap)")
	}
	if s.CPUQuota < -1 {
		return invalidArg("spec.cpu_quota", s.CPUQuota, "must be -1 (unlimited) or >= 0")
	}
	if s.ShmSize > 0 && s.ShmSize < 1024 {
		return invalidArg("spec.shm_size", s.ShmSize, "must be at least 1024 bytes")
	}
	if s.OOMScoreAdj != nil && (*s.OOMScoreAdj < -1000 || *s.OOMScoreAdj > 1000) {
		return invalidArg("spec.oom_score_adj", *s.OOMScoreAdj, "must be within -1000..1000")
	}
	if s.HostNetwork && s.NetnsPath != "" {
		return invalidArg("spec.netns_path", s.NetnsPath, "cannot be combined with host_network")
	}
	if s.NetnsPath != "" && !filepath.IsAbs(s.NetnsPath) {
		return invalidArg("spec.netns_path", s.NetnsPath, "must be an absolute path")
	}
	if s.Cwd != "" && !filepath.IsAbs(s.Cwd) {
		return invalidArg("spec.cwd", s.Cwd, "must be an absolute path")
	}
	if s.CgroupParent != "" && !filepath.IsAbs(s.CgroupParent) {
		return invalidArg("spec.cgroup_parent", s.CgroupParent, "must be an absolute cgroup path")
	}
	for i, e := range s.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return invalidArg(fmt.Sprintf("spec.env[%d]", i), e, `must be "KEY=VALUE"`)
		}
	}
	for i, m := range s.Mounts {
		f := fmt.Sprintf("spec.mounts[%d]", i)
		if !filepath.IsAbs(m.Destination) {
			return invalidArg(f+".destination", m.Destination, "must be an absolute path")
		}
		if m.Type == "" {
			return invalidArg(f+".type", `""`, `is required (e.g. "bind", "tmpfs")`)
		}
		if m.Type == "bind" && !filepath.IsAbs(m.Source) {
			return invalidArg(f+".source", m.Source, "a bind mount source must be an absolute path")
		}
	}
	for i, d := range s.Devices {
		f := fmt.Sprintf("spec.devices[%d]", i)
		if !filepath.IsAbs(d.HostPath) {
			return invalidArg(f+".host_path", d.HostPath, "must be an absolute path")
		}
		if d.ContainerPath != "" && !filepath.IsAbs(d.ContainerPath) {
			return invalidArg(f+".container_path", d.ContainerPath, "must be an absolute path")
		}
		if strings.Trim(d.Permissions, "rwm") != "" {
			return invalidArg(f+".permissions", d.Permissions, `must be letters from "rwm"`)
		}
	}
	for k := range s.Sysctls {
		if k == "" || strings.ContainsAny(k, " =") {
			return invalidArg("spec.sysctls", k, "is not a sysctl name")
		}
	}
	if s.SeccompProfile != "" {
		if _, err := os.Stat(s.SeccompProfile); err != nil {
			return invalidArg("spec.seccomp_profile", s.SeccompProfile, "cannot read the profile file")
		}
	}
	return nil
}

// buildSpecOpts turns the JSON spec into SpecOpts applied after the image config
// (oci.WithImageConfig), so everything given here overrides the image.
func buildSpecOpts(s *specJSON, img ocispec.ImageConfig) ([]oci.SpecOpts, error) {
	if err := validateSpec(s); err != nil {
		return nil, err
	}
	capAdd, err := normalizeCaps("spec.cap_add", s.CapAdd)
	if err != nil {
		return nil, err
	}
	capDrop, err := normalizeCaps("spec.cap_drop", s.CapDrop)
	if err != nil {
		return nil, err
	}
	args, err := processArgs(s, img)
	if err != nil {
		return nil, err
	}
	opts := []oci.SpecOpts{oci.WithProcessArgs(args...)}
	if len(s.Env) > 0 {
		opts = append(opts, oci.WithEnv(s.Env))
	}
	if s.Cwd != "" {
		opts = append(opts, oci.WithProcessCwd(s.Cwd))
	}
	if s.User != "" {
		opts = append(opts, oci.WithUser(s.User), oci.WithAdditionalGIDs(s.User))
	}
	if s.Hostname != "" {
		opts = append(opts, oci.WithHostname(s.Hostname))
	}
	if len(s.Mounts) > 0 {
		mounts := make([]specs.Mount, 0, len(s.Mounts))
		for _, m := range s.Mounts {
			mounts = append(mounts, specs.Mount{Type: m.Type, Source: m.Source, Destination: m.Destination, Options: m.Options})
		}
		opts = append(opts, oci.WithMounts(mounts))
	}
	if s.HostNetwork {
		opts = append(opts, oci.WithHostNamespace(specs.NetworkNamespace))
	}
	if s.NetnsPath != "" {
		opts = append(opts, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: s.NetnsPath}))
	}
	if s.HostPID {
		opts = append(opts, oci.WithHostNamespace(specs.PIDNamespace))
	}
	if s.Privileged {
		opts = append(opts, oci.WithPrivileged, oci.WithHostDevices, oci.WithAllDevicesAllowed)
	}
	if contains(capDrop, "ALL") {
		opts = append(opts, oci.WithCapabilities([]string{}))
	} else if len(capDrop) > 0 {
		opts = append(opts, oci.WithDroppedCapabilities(capDrop))
	}
	if contains(capAdd, "ALL") {
		opts = append(opts, oci.WithAllKnownCapabilities)
	} else if len(capAdd) > 0 {
		opts = append(opts, oci.WithAddedCapabilities(capAdd))
	}
	for _, d := range s.Devices {
		perms := d.Permissions
		if perms == "" {
			perms = "rwm"
		}
		opts = append(opts, oci.WithDevices(d.HostPath, d.ContainerPath, perms))
	}
	// Privileged containers run unconfined, as with docker --privileged.
	if !s.Privileged {
		if s.SeccompProfile != "" {
			opts = append(opts, seccomp.WithProfile(s.SeccompProfile))
		} else if s.Seccomp {
			opts = append(opts, seccomp.WithDefaultProfile())
		}
	}
	if s.ReadonlyRootfs {
		opts = append(opts, oci.WithRootFSReadonly())
	}
	if s.ShmSize > 0 {
		opts = append(opts, oci.WithDevShmSize(s.ShmSize/1024))
	}
	if len(s.Sysctls) > 0 {
		opts = append(opts, withSysctls(s.Sysctls))
	}
	if s.PidsLimit > 0 {
		opts = append(opts, oci.WithPidsLimit(s.PidsLimit))
	}
	if s.CgroupParent != "" {
		opts = append(opts, withCgroupParent(s.CgroupParent))
	}
	if s.MemoryLimit > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(s.MemoryLimit)))
	}
	if s.MemoryReservation > 0 {
		opts = append(opts, withMemoryReservation(s.MemoryReservation))
	}
	if s.MemorySwap != 0 {
		opts = append(opts, oci.WithMemorySwap(s.MemorySwap))
	}
	if s.CPUShares > 0 {
		opts = append(opts, oci.WithCPUShares(uint64(s.CPUShares)))
	}
	if s.CPUQuota != 0 || s.CPUPeriod != 0 {
		opts = append(opts, oci.WithCPUCFS(s.CPUQuota, uint64(s.CPUPeriod)))
	}
	if s.CpusetCpus != "" {
		opts = append(opts, oci.WithCPUs(s.CpusetCpus))
	}
	if s.CpusetMems != "" {
		opts = append(opts, oci.WithCPUsMems(s.CpusetMems))
	}
	if s.OOMScoreAdj != nil {
		opts = append(opts, withOOMScoreAdj(*s.OOMScoreAdj))
	}
	if len(s.Annotations) > 0 {
		opts = append(opts, oci.WithAnnotations(s.Annotations))
	}
	if s.TTY {
		opts = append(opts, oci.WithTTY)
	}
	if s.NoNewPrivileges {
		opts = append(opts, oci.WithNoNewPrivileges)
	}
	return opts, nil
}

func withSysctls(kv map[string]string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		if s.Linux.Sysctl == nil {
			s.Linux.Sysctl = map[string]string{}
		}
		keys := make([]string, 0, len(kv))
		for k := range kv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s.Linux.Sysctl[k] = kv[k]
		}
		return nil
	}
}

// withCgroupParent places the container's cgroup under parent (cgroupfs layout).
func withCgroupParent(parent string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, c *containers.Container, s *oci.Spec) error {
		if s.Linux == nil {
			s.Linux = &specs.Linux{}
		}
		s.Linux.CgroupsPath = filepath.Join(parent, c.ID)
		return nil
	}
}

func withMemoryReservation(v int64) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		ensureMemory(s).Reservation = &v
		return nil
	}
}

func ensureMemory(s *oci.Spec) *specs.LinuxMemory {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	if s.Linux.Resources.Memory == nil {
		s.Linux.Resources.Memory = &specs.LinuxMemory{}
	}
	return s.Linux.Resources.Memory
}

func withOOMScoreAdj(v int) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process == nil {
			s.Process = &specs.Process{}
		}
		s.Process.OOMScoreAdj = &v
		return nil
	}
}
