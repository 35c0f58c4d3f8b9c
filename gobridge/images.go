package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type authReq struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type pullReq struct {
	Client         uint64   `json:"client"`
	Ref            string   `json:"ref"`
	Platform       string   `json:"platform"`
	Auth           *authReq `json:"auth"`
	PlainHTTPHosts []string `json:"plain_http_hosts"`
	Unpack         *bool    `json:"unpack"`
	Snapshotter    string   `json:"snapshotter"`
}

type imageRefReq struct {
	Client uint64 `json:"client"`
	Ref    string `json:"ref"`
	Sync   bool   `json:"sync"`
}

type imageListReq struct {
	Client  uint64   `json:"client"`
	Filters []string `json:"filters"`
}

type imageConfigJSON struct {
	Entrypoint   []string `json:"entrypoint"`
	Cmd          []string `json:"cmd"`
	Env          []string `json:"env"`
	WorkingDir   string   `json:"working_dir"`
	User         string   `json:"user"`
	ExposedPorts []string `json:"exposed_ports"`
	StopSignal   string   `json:"stop_signal"`
}

type imageJSON struct {
	Name    string            `json:"name"`
	Digest  string            `json:"digest"`
	Size    int64             `json:"size"`
	Created string            `json:"created"`
	Labels  map[string]string `json:"labels"`
	Config  imageConfigJSON   `json:"config"`
}

func init() {
	register("images.pull", imagesPull)
	register("images.get", imagesGet)
	register("images.list", imagesList)
	register("images.remove", imagesRemove)
}

// normalizeRef turns "busybox" into "docker.io/library/busybox:latest" (what containerd
// stores), naming the field on failure.
func normalizeRef(ref string) (string, error) {
	if ref == "" {
		return "", invalidArg("ref", `""`, "an image reference is required")
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", invalidArg("ref", ref, err.Error())
	}
	return reference.TagNameOnly(named).String(), nil
}

// registryHost is the host credentials may be sent to ("docker.io" means registry-1).
func registryHost(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	host := reference.Domain(named)
	if host == "docker.io" {
		return "registry-1.docker.io"
	}
	return host
}

func newResolver(ref string, auth *authReq, plainHosts []string) (*docker.ResolverOptions, error) {
	plain := map[string]bool{}
	for _, h := range plainHosts {
		plain[h] = true
	}
	credHost := registryHost(ref)
	authorizer := docker.NewDockerAuthorizer(docker.WithAuthCreds(func(host string) (string, string, error) {
		// Credentials go to the reference's own registry and nowhere else.
		if auth == nil || host != credHost {
			return "", "", nil
		}
		return auth.Username, auth.Password, nil
	}))
	hosts := docker.ConfigureDefaultRegistries(
		docker.WithAuthorizer(authorizer),
		docker.WithPlainHTTP(func(host string) (bool, error) {
			if plain[host] {
				return true, nil
			}
			return docker.MatchLocalhost(host)
		}),
	)
	return &docker.ResolverOptions{Hosts: hosts}, nil
}

func imagesPull(c *call) (any, error) {
	var r pullReq
	if err := decode(c, &r); err != nil {
		return nil, err
	}
	h, err := getClient(r.Client)
	if err != nil {
		return nil, err
	}
	ref, err := normalizeRef(r.Ref)
	if err != nil {
		return nil, err
	}
	if r.Auth != nil && r.Auth.Username == "" {
		return nil, invalidArg("auth.username", `""`, "a username is required with auth")
	}
	ropts, _ := newResolver(ref, r.Auth, r.PlainHTTPHosts)
	resolver := docker.NewResolver(*ropts)
	opts := []containerd.RemoteOpt{containerd.WithResolver(resolver)}
	if r.Platform != "" {
		want, err := platforms.Parse(r.Platform)
		if err != nil {
			return nil, invalidArg("platform", r.Platform, err.Error())
		}
		ok, found, err := imagePlatforms(c.ctx, resolver, ref, want)
		if err != nil {
			return nil, pullError(ref, err, r.Auth)
		}
		if !ok {
			return nil, noVariant(ref, want, found)
		}
		opts = append(opts, containerd.WithPlatform(r.Platform))
	}
	if r.Unpack == nil || *r.Unpack {
		opts = append(opts, containerd.WithPullUnpack)
	}
	if r.Snapshotter != "" {
		opts = append(opts, containerd.WithPullSnapshotter(r.Snapshotter))
	}
	lease, ctx, err := newCallLease(h.nsCtx(c), h.c.LeasesService(), "pull")
	if err != nil {
		return nil, err
	}
	tracker := newPullTracker(ctx, h.c.ContentStore(), ref)
	opts = append(opts, containerd.WithImageHandler(tracker.handler()))
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() { _ = recover() }()
		tracker.run(c.op, stop)
	}()
	img, err := h.c.Pull(ctx, ref, opts...)
	close(stop)
	<-done
	if err != nil {
		abortIngests(ctx, h.c.ContentStore(), tracker.digests())
		lease.release(true)
		return nil, pullError(ref, err, r.Auth)
	}
	// The image record now holds its content; the unpacked snapshots are referenced
	// through the image's gc labels.
	defer lease.release(false)
	tracker.finish(c.op)
	return imageInfo(ctx, img)
}

// pullError classifies pull failures and makes sure no secret appears in the text.
func pullError(ref string, err error, auth *authReq) error {
	msg := err.Error()
	if auth != nil && auth.Password != "" {
		msg = strings.ReplaceAll(msg, auth.Password, "<redacted>")
	}
	st := statusOf(err)
	low := strings.ToLower(msg)
	switch {
	case st == statusCancelled || st == statusTimeout:
	case strings.Contains(low, "401 unauthorized") || strings.Contains(low, "403 forbidden") ||
		strings.Contains(low, "authorization failed") || strings.Contains(low, "no basic auth credentials"):
		st = statusUnauthenticated
	case st == statusNotFound || strings.Contains(low, "not found"):
		return newError(statusNotFound, "image %q not found in its registry: %s", ref, msg)
	case st == statusUnknown && (strings.Contains(low, "connection refused") || strings.Contains(low, "no such host")):
		st = statusUnavailable
	}
	return newError(st, "pull %s: %s", ref, msg)
}

func imagesGet(c *call) (any, error) {
	var r imageRefReq
	if err := decode(c, &r); err != nil {
		return nil, err
	}
	h, err := getClient(r.Client)
	if err != nil {
		return nil, err
	}
	ref, err := normalizeRef(r.Ref)
	if err != nil {
		return nil, err
	}
	ctx := h.nsCtx(c)
	img, err := h.c.GetImage(ctx, ref)
	if err != nil {
		return nil, wrapNotFound("image", ref, err)
	}
	return imageInfo(ctx, img)
}

func imagesList(c *call) (any, error) {
	var r imageListReq
	if err := decode(c, &r); err != nil {
		return nil, err
	}
	h, err := getClient(r.Client)
	if err != nil {
		return nil, err
	}
	ctx := h.nsCtx(c)
	imgs, err := h.c.ListImages(ctx, r.Filters...)
	if err != nil {
		return nil, err
	}
	out := make([]*imageJSON, 0, len(imgs))
	for _, img := range imgs {
		info, err := imageInfo(ctx, img)
		if err != nil {
			if errdefs.IsNotFound(err) { // content gone (e.g. being deleted): skip
				continue
			}
			return nil, err
		}
		out = append(out, info)
	}
	return map[string]any{"images": out}, nil
}

func imagesRemove(c *call) (any, error) {
	var r imageRefReq
	if err := decode(c, &r); err != nil {
		return nil, err
	}
	h, err := getClient(r.Client)
	if err != nil {
		return nil, err
	}
	ref, err := normalizeRef(r.Ref)
	if err != nil {
		return nil, err
	}
	var opts []images.DeleteOpt
	if r.Sync {
		opts = append(opts, images.SynchronousDelete())
	}
	if err := h.c.ImageService().Delete(h.nsCtx(c), ref, opts...); err != nil {
		return nil, wrapNotFound("image", ref, err)
	}
	return map[string]any{}, nil
}

// wrapNotFound prefixes NOT_FOUND errors with the kind of object, which Python maps to
// ImageNotFound / ContainerNotFound / TaskNotFound.
func wrapNotFound(kind, id string, err error) error {
	if statusOf(err) == statusNotFound {
		return newError(statusNotFound, "%s %q not found", kind, id)
	}
	return err
}

func imageInfo(ctx context.Context, img containerd.Image) (*imageJSON, error) {
	md := img.Metadata()
	out := &imageJSON{
		Name:    md.Name,
		Digest:  md.Target.Digest.String(),
		Labels:  nonNilMap(md.Labels),
		Created: md.CreatedAt.UTC().Format(time.RFC3339Nano),
		Config:  imageConfigJSON{Env: []string{}, ExposedPorts: []string{}},
	}
	size, err := img.Size(ctx)
	if err == nil {
		out.Size = size
	}
	cfg, err := readImageConfig(ctx, img)
	if err != nil {
		return nil, err
	}
	if cfg.Created != nil {
		out.Created = cfg.Created.UTC().Format(time.RFC3339Nano)
	}
	ic := cfg.Config
	out.Config.Entrypoint = ic.Entrypoint
	out.Config.Cmd = ic.Cmd
	if ic.Env != nil {
		out.Config.Env = ic.Env
	}
	out.Config.WorkingDir = ic.WorkingDir
	out.Config.User = ic.User
	out.Config.StopSignal = ic.StopSignal
	for p := range ic.ExposedPorts {
		out.Config.ExposedPorts = append(out.Config.ExposedPorts, p)
	}
	return out, nil
}

func readImageConfig(ctx context.Context, img containerd.Image) (*ocispec.Image, error) {
	desc, err := img.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("image %s config: %w", img.Name(), err)
	}
	blob, err := content.ReadBlob(ctx, img.ContentStore(), desc)
	if err != nil {
		return nil, fmt.Errorf("image %s config blob: %w", img.Name(), err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(blob, &cfg); err != nil {
		return nil, newError(statusInternal, "image %s config is not JSON: %v", img.Name(), err)
	}
	return &cfg, nil
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
