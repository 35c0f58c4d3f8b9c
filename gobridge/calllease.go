package main

import (
	"context"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/leases"
)

// A pull (and a create that unpacks and snapshots) runs under a lease gobridge owns, so
// that a timed-out or cancelled call leaves nothing behind. The containerd client's own
// lease is deleted with the call's context, which is already done when the call timed
// out, so that lease (24 h) kept the content and snapshots alive.

const (
	cleanupTimeout  = 10 * time.Second // for lease and ingest RPCs after the call's context ended
	leaseMargin     = 5 * time.Minute  // lease expiry past the call deadline (only matters if we die)
	leaseNoDeadline = 24 * time.Hour   // lease expiry for a pull without a deadline
)

// callLease creates the lease with a context that ignores the call's deadline: the lease
// id is chosen here, so even a Create that the server finishes after we gave up is
// deleted by release.
type callLease struct {
	lm    leases.Manager
	lease leases.Lease
	base  context.Context // namespaced, not cancelled
}

func newCallLease(ctx context.Context, lm leases.Manager, purpose string) (*callLease, context.Context, error) {
	expiry := leaseNoDeadline
	if dl, ok := ctx.Deadline(); ok {
		expiry = time.Until(dl) + leaseMargin
	}
	var l leases.Lease
	if err := leases.WithRandomID()(&l); err != nil {
		return nil, nil, err
	}
	p := &callLease{lm: lm, lease: l, base: context.WithoutCancel(ctx)}
	cctx, cancel := context.WithTimeout(p.base, cleanupTimeout)
	defer cancel()
	if _, err := lm.Create(cctx, leases.WithID(l.ID), leases.WithExpiration(expiry),
		leases.WithLabel("nomad-ctr.owner", "gobridge-"+purpose)); err != nil {
		p.release(false)
		return nil, nil, err
	}
	return p, leases.WithLease(ctx, l.ID), nil
}

// release deletes the lease (after a failure synchronously, so the content and snapshots
// it held are collected before the call returns). Errors are ignored: there is nothing
// the caller could do, and the lease still expires.
func (p *callLease) release(failed bool) {
	ctx, cancel := context.WithTimeout(p.base, cleanupTimeout)
	defer cancel()
	var opts []leases.DeleteOpt
	if failed {
		opts = append(opts, leases.SynchronousDelete)
	}
	_ = p.lm.Delete(ctx, p.lease, opts...)
}

// abortIngests aborts the unfinished downloads of the given blobs, which a cancelled
// fetch leaves active in the content store.
func abortIngests(base context.Context, cs content.Store, digests []string) {
	if len(digests) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(base), cleanupTimeout)
	defer cancel()
	sts, err := cs.ListStatuses(ctx)
	if err != nil {
		return
	}
	for _, st := range sts {
		for _, d := range digests {
			if strings.HasSuffix(st.Ref, d) || st.Expected.String() == d {
				_ = cs.Abort(ctx, st.Ref)
				break
			}
		}
	}
}
