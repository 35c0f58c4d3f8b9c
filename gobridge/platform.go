package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// A manifest, index or image config larger than this is not one a registry should serve.
const maxMetadataBlob = 4 << 20

// imagePlatforms reads the image's index or manifest and config from the registry (a
// few small blobs, nothing stored) and tells whether it has a variant for want, and if
// not, which platforms it has. containerd filters an index's manifests by platform
// itself, but pulls and unpacks a lone manifest whatever platform it was built for.
func imagePlatforms(ctx context.Context, resolver remotes.Resolver, ref string, want ocispec.Platform) (
	ok bool, found []ocispec.Platform, err error,
) {
	name, desc, err := resolver.Resolve(ctx, ref)
	if err != nil {
		return false, nil, err
	}
	fetcher, err := resolver.Fetcher(ctx, name)
	if err != nil {
		return false, nil, err
	}
	provider := fetchedBlobs{fetcher}
	match := platforms.Only(want)
	if images.IsIndexType(desc.MediaType) {
		if _, err := images.Manifest(ctx, provider, desc, match); err == nil {
			return true, nil, nil
		} else if !errdefs.IsNotFound(err) {
			return false, nil, err
		}
		found, err := images.Platforms(ctx, provider, desc)
		return false, found, err
	}
	blob, err := content.ReadBlob(ctx, provider, desc)
	if err != nil {
		return false, nil, err
	}
	var manifest ocispec.Manifest
	if err := json.Unmarshal(blob, &manifest); err != nil {
		return false, nil, fmt.Errorf("manifest of %s: %w", ref, err)
	}
	got, err := images.ConfigPlatform(ctx, provider, manifest.Config)
	if err != nil {
		return false, nil, err
	}
	return match.Match(got), []ocispec.Platform{got}, nil
}

// noVariant is the error of a pull asking for a platform the image does not have.
func noVariant(ref string, want ocispec.Platform, found []ocispec.Platform) error {
	names := make([]string, 0, len(found))
	for _, p := range found {
		names = append(names, platforms.Format(p))
	}
	return newError(statusNotFound, "image %q has no %s variant (it has: %s)",
		ref, platforms.Format(want), strings.Join(names, ", "))
}

// fetchedBlobs serves small blobs straight from the registry as a content.Provider.
type fetchedBlobs struct{ fetcher remotes.Fetcher }

func (f fetchedBlobs) ReaderAt(ctx context.Context, desc ocispec.Descriptor) (content.ReaderAt, error) {
	if desc.Size > maxMetadataBlob {
		return nil, fmt.Errorf("blob %s of %d bytes is too large for image metadata", desc.Digest, desc.Size)
	}
	rc, err := f.fetcher.Fetch(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxMetadataBlob+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxMetadataBlob {
		return nil, fmt.Errorf("blob %s is too large for image metadata", desc.Digest)
	}
	return blobReader{bytes.NewReader(data)}, nil
}

type blobReader struct{ *bytes.Reader }

func (blobReader) Close() error { return nil }
