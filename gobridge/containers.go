package main

import (
	"context"
	"strings"
	"syscall"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/defaults"
	"github.com/containerd/containerd/v2/pkg/identifiers"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/errdefs"
)

const defaultRuntime = "io.containerd.runc.v2"

type containerCreateReq struct {
	Client      uint64            `json:"client"`
	ID          string            `json:"id"`
	Image       string            `json:"image"`
	Runtime     string            `json:"runtime"`
	Snapshotter string            `json:"snapshotter"`
	Labels      map[string]string `json:"labels"`
	Spec        specJSON          `json:"spec"`
}

type containerReq struct {
	Client uint64 `json:"client"`
	ID     string `json:"id"`
	Force  bool   `json:"force"`
}

type containerListReq struct {
	Client uint64            `json:"client"`
	Labels map[string]string `json:"labels"`
}

type containerInfoJSON struct {
	ID          string            `json:"id"`
	Image       string            `json:"image"`
	Runtime     string            `json:"runtime"`
	Snapshotter string            `json:"snapshotter"`
	SnapshotKey string            `json:"snapshot_key"`
	Labels      map[string]string `json:"labels"`
	CreatedAt   string            `json:"created_at"`
}

func init() {
	register("containers.create", containersCreate)
	register("containers.get", containersGet)
	register("containers.list", containersList)
	register("containers.delete", containersDelete)
}

func toContainerInfo(c containers.Container) *containerInfoJSON {
	return &containerInfoJSON{
		ID: c.ID, Image: c.Image, Runtime: c.Runtime.Name, Snapshotter: c.Snapshotter,
		SnapshotKey: c.SnapshotKey, Labels: nonNilMap(c.Labels),
		CreatedAt: c.CreatedAt.UTC().Format(time.RFC3339Nano),
	}
}

// loadContainer loads by id, naming the container in a NOT_FOUND error.
func loadContainer(ctx context.Context, h *clientHandle, id string) (containerd.Container, error) {
	if id == "" {
		return nil, invalidArg("id", `""`, "a container id is required")
	}
	c, err := h.c.LoadContainer(ctx, id)
	if err != nil {
		return nil, wrapNotFound("container", id, err)
	}
	return c, nil
}

func containersCreate(c *call) (any, error) {
	var r containerCreateReq
	if err := decode(c, &r); err != nil {
		return nil, err
	}
	h, err := getClient(r.Client)
	if err != nil {
		return nil, err
	}
	if err := identifiers.Validate(r.ID); err != nil {
		return nil, invalidArg("id", r.ID, err.Error())
	}
	ref, err := normalizeRef(r.Image)
	if err != nil {
		return nil, invalidArg("image", r.Image, err.Error())
	}
	lease, ctx, err := newCallLease(h.nsCtx(c), h.c.LeasesService(), "create")
	if err != nil {
		return nil, err
	}
	failed := true
	defer func() { lease.release(failed) }()
	img, err := h.c.GetImage(ctx, ref)
	if err != nil {
		return nil, wrapNotFound("image", ref, err)
	}
	cfg, err := readImageConfig(ctx, img)
	if err != nil {
		return nil, err
	}
	specOpts, err := buildSpecOpts(&r.Spec, cfg.Config)
	if err != nil {
		return nil, err
	}
	snapshotter := r.Snapshotter
	if snapshotter == "" {
		snapshotter = defaults.DefaultSnapshotter
	}
	// The image may have been pulled without unpacking (or for another snapshotter).
	if ok, err := img.IsUnpacked(ctx, snapshotter); err != nil {
		return nil, err
	} else if !ok {
		if err := img.Unpack(ctx, snapshotter); err != nil {
			return nil, err
		}
	}
	runtime := r.Runtime
	if runtime == "" {
		runtime = defaultRuntime
	}
	opts := []containerd.NewContainerOpts{
		containerd.WithImage(img),
		containerd.WithSnapshotter(snapshotter),
		containerd.WithNewSnapshot(r.ID, img),
		containerd.WithRuntime(runtime, nil),
		containerd.WithContainerLabels(r.Labels),
		containerd.WithNewSpec(append([]oci.SpecOpts{oci.WithImageConfig(img)}, specOpts...)...),
	}
	ctr, err := h.c.NewContainer(ctx, r.ID, opts...)
	if err != nil {
		if errdefs.IsAlreadyExists(err) {
			return nil, newError(statusAlreadyExists, "container %q already exists", r.ID)
		}
		// NewContainer made the snapshot before a spec option failed: remove it.
		if rerr := h.c.SnapshotService(snapshotter).Remove(detached(ctx), r.ID); rerr != nil && !errdefs.IsNotFound(rerr) {
			return nil, newError(statusInternal, "create container %q failed (%v) and its snapshot could not be removed: %v", r.ID, err, rerr)
		}
		// Spec options that fail on user input (unknown user, missing device) are the
		// caller's fault; name the container so the message has context.
		return nil, classifySpecError(r.ID, &r.Spec, err)
	}
	failed = false // the container record now holds its snapshot
	info, err := ctr.Info(ctx)
	if err != nil {
		return nil, err
	}
	return toContainerInfo(info), nil
}

// classifySpecError reports spec-option failures that containerd returns untyped as
// INVALID_ARGUMENT (they come from the request, e.g. an unknown user or device).
func classifySpecError(id string, s *specJSON, err error) error {
	if st := statusOf(err); st != statusUnknown {
		return err
	}
	msg := err.Error()
	switch {
	case s.User != "" && strings.Contains(msg, "user"):
		return newError(statusInvalidArgument, "create container %q: invalid spec.user %q: %s", id, s.User, msg)
	case s.ShmSize > 0 && strings.Contains(msg, "shm"):
		return newError(statusInvalidArgument, "create container %q: invalid spec.shm_size %d: %s", id, s.ShmSize, msg)
	case len(s.Devices) > 0 && strings.Contains(msg, "device"):
		return newError(statusInvalidArgument, "create container %q: invalid spec.devices: %s", id, msg)
	}
	return newError(statusInvalidArgument, "create container %q: invalid spec: %s", id, msg)
}

func containersGet(c *call) (any, error) {
	var r containerReq
	if err := decode(c, &r); err != nil {
		return nil, err
	}
	h, err := getClient(r.Client)
	if err != nil {
		return nil, err
	}
	ctx := h.nsCtx(c)
	ctr, err := loadContainer(ctx, h, r.ID)
	if err != nil {
		return nil, err
	}
	info, err := ctr.Info(ctx)
	if err != nil {
		return nil, wrapNotFound("container", r.ID, err)
	}
	return toContainerInfo(info), nil
}

func containersList(c *call) (any, error) {
	var r containerListReq
	if err := decode(c, &r); err != nil {
		return nil, err
	}
	h, err := getClient(r.Client)
	if err != nil {
		return nil, err
	}
	ctx := h.nsCtx(c)
	list, err := h.c.ContainerService().List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*containerInfoJSON, 0, len(list))
	for _, ct := range list {
		if labelsMatch(ct.Labels, r.Labels) {
			out = append(out, toContainerInfo(ct))
		}
	}
	return map[string]any{"containers": out}, nil
}

func labelsMatch(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// containersDelete removes the task (killing it first with force), the container and
// its snapshot.
func containersDelete(c *call) (any, error) {
	var r containerReq
	if err := decode(c, &r); err != nil {
		return nil, err
	}
	h, err := getClient(r.Client)
	if err != nil {
		return nil, err
	}
	ctx := h.nsCtx(c)
	ctr, err := loadContainer(ctx, h, r.ID)
	if err != nil {
		return nil, err
	}
	if err := deleteTaskOf(ctx, ctr, r.Force); err != nil {
		return nil, err
	}
	if err := ctr.Delete(ctx, containerd.WithSnapshotCleanup); err != nil {
		return nil, wrapNotFound("container", r.ID, err)
	}
	return map[string]any{}, nil
}

// deleteTaskOf deletes the container's task if there is one. A live task is killed
// (SIGKILL) only with force; otherwise it is a FAILED_PRECONDITION.
func deleteTaskOf(ctx context.Context, ctr containerd.Container, force bool) error {
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	st, err := task.Status(ctx)
	if err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	live := st.Status == containerd.Running || st.Status == containerd.Paused || st.Status == containerd.Pausing
	if live && !force {
		return newError(statusFailedPrecondition, "container %q has a running task; kill it first or delete with force", ctr.ID())
	}
	if live {
		wait, err := task.Wait(ctx)
		if err != nil {
			return err
		}
		if err := task.Kill(ctx, syscall.SIGKILL, containerd.WithKillAll); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if _, err := task.Delete(ctx, containerd.WithProcessKill); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	return nil
}
