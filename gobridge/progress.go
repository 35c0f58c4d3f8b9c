package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// pullTracker records the blobs a pull touches (through an image handler) and, while the
// pull runs, polls the content store's ingest statuses to publish progress on the op.
type pullTracker struct {
	ctx   context.Context
	cs    content.Store
	ref   string
	mu    sync.Mutex
	order []string
	blobs map[string]*layerProgress
	seen  map[string]bool // every blob the pull walked (layers, manifests, configs)
}

type layerProgress struct {
	Ref    string `json:"ref"`
	Status string `json:"status"`
	Offset int64  `json:"offset"`
	Total  int64  `json:"total"`
}

type pullProgress struct {
	Ref    string          `json:"ref"`
	Layers []layerProgress `json:"layers"`
	Done   bool            `json:"done"`
}

func newPullTracker(ctx context.Context, cs content.Store, ref string) *pullTracker {
	return &pullTracker{ctx: ctx, cs: cs, ref: ref, blobs: map[string]*layerProgress{}, seen: map[string]bool{}}
}

func isLayer(mt string) bool {
	return strings.Contains(mt, "layer") || strings.Contains(mt, "rootfs")
}

// handler sees every descriptor the pull walks; layers are recorded, and marked "exists"
// when the content store already had them before the fetch.
func (t *pullTracker) handler() images.Handler {
	return images.HandlerFunc(func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		t.mu.Lock()
		t.seen[desc.Digest.String()] = true
		t.mu.Unlock()
		if !isLayer(desc.MediaType) {
			return nil, nil
		}
		status := "waiting"
		if _, err := t.cs.Info(ctx, desc.Digest); err == nil {
			status = "exists"
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		d := desc.Digest.String()
		if _, ok := t.blobs[d]; !ok {
			t.order = append(t.order, d)
			lp := &layerProgress{Ref: d, Status: status, Total: desc.Size}
			if status == "exists" {
				lp.Offset = desc.Size
			}
			t.blobs[d] = lp
		}
		return nil, nil
	})
}

func (t *pullTracker) run(o *op, stop <-chan struct{}) {
	if o == nil {
		return
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		t.update()
		o.setProgress(t.snapshot(false))
		select {
		case <-stop:
			return
		case <-tick.C:
		}
	}
}

// update refreshes offsets from active ingests and marks finished blobs done.
func (t *pullTracker) update() {
	active := map[string]content.Status{}
	if sts, err := t.cs.ListStatuses(t.ctx, ""); err == nil {
		for _, st := range sts {
			active[st.Ref] = st
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range t.order {
		lp := t.blobs[d]
		if lp.Status == "exists" || lp.Status == "done" {
			continue
		}
		found := false
		for key, st := range active {
			if strings.HasSuffix(key, d) || st.Expected.String() == d {
				lp.Status, lp.Offset, found = "downloading", st.Offset, true
				if st.Total > 0 {
					lp.Total = st.Total
				}
				break
			}
		}
		if found {
			continue
		}
		if _, err := t.cs.Info(t.ctx, digestOf(d)); err == nil {
			lp.Status, lp.Offset = "done", lp.Total
		}
	}
}

func (t *pullTracker) snapshot(done bool) pullProgress {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := pullProgress{Ref: t.ref, Layers: make([]layerProgress, 0, len(t.order)), Done: done}
	for _, d := range t.order {
		p.Layers = append(p.Layers, *t.blobs[d])
	}
	return p
}

func (t *pullTracker) finish(o *op) {
	if o == nil {
		return
	}
	t.mu.Lock()
	for _, lp := range t.blobs {
		if lp.Status != "exists" {
			lp.Status, lp.Offset = "done", lp.Total
		}
	}
	t.mu.Unlock()
	o.setProgress(t.snapshot(true))
}

// digests lists every blob the pull walked, for aborting their ingests after a failure.
func (t *pullTracker) digests() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.seen))
	for d := range t.seen {
		out = append(out, d)
	}
	return out
}

func digestOf(s string) digest.Digest { return digest.Digest(s) }
