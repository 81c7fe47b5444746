//go:build tools

// Package objectstore pins the lab's S3-compatible object store (versitygw), built from the Go module proxy.
package objectstore

import _ "github.com/versity/versitygw/cmd/versitygw"
