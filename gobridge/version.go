package main

import (
	"runtime"
	"runtime/debug"
)

// abiVersion must equal GB_ABI_VERSION in gobridge.h.
const abiVersion = 1

// packageVersion is set at build time: -ldflags "-X main.packageVersion=<pyproject version>".
var packageVersion = "0.0.0+unknown"

const containerdModule = "github.com/containerd/containerd/v2"

func versionInfo() map[string]any {
	return map[string]any{
		"version":           packageVersion,
		"abi":               abiVersion,
		"go":                runtime.Version(),
		"containerd_client": moduleVersion(containerdModule),
	}
}

func moduleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, m := range info.Deps {
		if m.Path == path {
			return m.Version
		}
	}
	return "unknown"
}
