package main

// The image test `make test` runs after `make image` (IMAGE_DIR=<out>, IMAGE_TAG=<name:tag>):
// the image is read back from its OCI layout and its docker tarball, its filesystem is
// unpacked into an empty directory, and the binary is run from there — inside a chroot of that
// directory when the test runs as root — proving the image needs nothing else.

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The compressed size `make image` must stay under.
const maxCompressedBytes = 25_000_000

func imageDir(t *testing.T) string {
	dir := os.Getenv("IMAGE_DIR")
	if dir == "" {
		t.Fatal("IMAGE_DIR is not set: run through `make image-test` (hack/image.sh test)")
	}
	return dir
}

func ociImage(t *testing.T) v1.Image {
	index, err := layout.ImageIndexFromPath(filepath.Join(imageDir(t), "oci"))
	if err != nil {
		t.Fatalf("reading the OCI layout: %v", err)
	}
	manifest, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(manifest.Manifests) != 1 {
		t.Fatalf("the OCI layout holds %d images, want 1", len(manifest.Manifests))
	}
	tag, err := name.NewTag(os.Getenv("IMAGE_TAG"))
	if err != nil {
		t.Fatalf("IMAGE_TAG: %v", err)
	}
	want := tag.TagStr()
	if got := manifest.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; got != want {
		t.Errorf("ref.name annotation %q, want %q", got, want)
	}
	img, err := index.Image(manifest.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Every blob of the layout is named by its content's digest.
func TestLayoutBlobsMatchTheirDigests(t *testing.T) {
	blobs := filepath.Join(imageDir(t), "oci", "blobs", "sha256")
	entries, err := os.ReadDir(blobs)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 3 {
		t.Fatalf("%d blobs, want at least manifest, config and layer", len(entries))
	}
	for _, entry := range entries {
		content, err := os.ReadFile(filepath.Join(blobs, entry.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(content)
		if got := hex.EncodeToString(sum[:]); got != entry.Name() {
			t.Errorf("blob %s has digest %s", entry.Name(), got)
		}
	}
	if err := ociImageValidate(ociImage(t)); err != nil {
		t.Fatal(err)
	}
}

func ociImageValidate(img v1.Image) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if len(layers) == 0 {
		return errors.New("no layers")
	}
	return nil
}

// The docker tarball is the same image (same digest) under the tag.
func TestDockerTarballIsTheSameImage(t *testing.T) {
	tag, err := name.NewTag(os.Getenv("IMAGE_TAG"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(imageDir(t), filepath.Base(tag.RepositoryStr())+"-"+tag.TagStr()+".docker.tar")
	fromTar, err := tarball.ImageFromPath(path, &tag)
	if err != nil {
		t.Fatalf("%s as a docker tarball with tag %s: %v", path, tag, err)
	}
	// `docker load` reads a manifest.json of its own (not the OCI manifest), so the image is
	// the same when its config and layers are.
	oci := ociImage(t)
	tarConfig, err := fromTar.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	ociConfig, err := oci.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if tarConfig != ociConfig {
		t.Errorf("docker tarball config %s, OCI layout config %s", tarConfig, ociConfig)
	}
	if tarLayers, ociLayers := layerDigests(t, fromTar), layerDigests(t, oci); !slices.Equal(tarLayers, ociLayers) {
		t.Errorf("docker tarball layers %v, OCI layout layers %v", tarLayers, ociLayers)
	}
}

func layerDigests(t *testing.T, img v1.Image) []v1.Hash {
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	digests := make([]v1.Hash, 0, len(layers))
	for _, layer := range layers {
		digest, err := layer.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, digest)
	}
	return digests
}

func TestConfigRunsAsNonRootFromTheBinary(t *testing.T) {
	config, err := ociImage(t).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if config.Config.User != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", config.Config.User)
	}
	if len(config.Config.Entrypoint) != 1 || config.Config.Entrypoint[0] != BinaryPath {
		t.Errorf("entrypoint %q, want [%s]", config.Config.Entrypoint, BinaryPath)
	}
	if config.OS != "linux" || config.Architecture != "amd64" {
		t.Errorf("platform %s/%s", config.OS, config.Architecture)
	}
}

func TestCompressedSizeIsUnderBudget(t *testing.T) {
	manifest, err := ociImage(t).Manifest()
	if err != nil {
		t.Fatal(err)
	}
	size := manifest.Config.Size
	for _, l := range manifest.Layers {
		size += l.Size
	}
	t.Logf("compressed image size: %.1f MB (%d bytes)", float64(size)/1e6, size)
	if size > maxCompressedBytes {
		t.Errorf("compressed image is %d bytes, budget %d", size, maxCompressedBytes)
	}
}

// unpack writes the image's flattened filesystem into dir.
func unpack(t *testing.T, img v1.Image, dir string) []string {
	reader := mutate.Extract(img)
	defer reader.Close()
	archive := tar.NewReader(reader)
	var files []string
	for {
		header, err := archive.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, filepath.Clean("/"+header.Name))
		switch header.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			files = append(files, "/"+strings.TrimPrefix(header.Name, "/"))
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(header.Mode))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, archive); err != nil {
				t.Fatal(err)
			}
			out.Close()
		default:
			t.Fatalf("unexpected entry %s (type %c) in the image", header.Name, header.Typeflag)
		}
	}
	return files
}

// run starts the image's entrypoint with args, in a chroot of root when possible (as root),
// else from root's copy of the binary with an empty environment; returns its output.
func run(t *testing.T, root string, args ...string) (string, error) {
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command(BinaryPath, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		cmd.Dir = "/"
	} else {
		cmd = exec.Command(filepath.Join(root, BinaryPath), args...)
		cmd.Dir = root
	}
	cmd.Env = []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=" + CABundlePath}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestTheBinaryRunsFromTheUnpackedImageAlone(t *testing.T) {
	root := t.TempDir()
	files := unpack(t, ociImage(t), root)
	want := map[string]bool{BinaryPath: true, CABundlePath: true, "/etc/passwd": true, "/etc/group": true}
	for _, f := range files {
		if !want[f] {
			t.Errorf("unexpected file %s in the image", f)
		}
		delete(want, f)
	}
	for f := range want {
		t.Errorf("the image lacks %s", f)
	}
	if os.Geteuid() == 0 {
		t.Log("running the binary in a chroot of the unpacked image")
	} else {
		t.Log("not root: running the binary from the unpacked image without a chroot")
	}

	version, err := run(t, root, "--version")
	if err != nil {
		t.Fatalf("--version: %v\n%s", err, version)
	}
	if wantVersion := os.Getenv("IMAGE_VERSION"); !strings.HasPrefix(version, "bigip-operator "+wantVersion) {
		t.Errorf("--version printed %q, want bigip-operator %s", version, wantVersion)
	}
	help, err := run(t, root, "run", "--help")
	if err != nil {
		t.Fatalf("run --help: %v\n%s", err, help)
	}
	for _, flag := range []string{"--bigip-url", "--metrics-addr", "--leader-elect"} {
		if !strings.Contains(help, flag) {
			t.Errorf("run --help does not mention %s:\n%s", flag, help)
		}
	}
	// The production image carries no BIG-IP simulator (built without the `simulator` feature).
	if out, err := run(t, root, "simulator", "--help"); err == nil {
		t.Errorf("the image's binary has the simulator subcommand:\n%s", out)
	}
	// Offline commands work from the image alone: the CRDs it generates.
	crds, err := run(t, root, "crdgen")
	if err != nil || !strings.Contains(crds, "virtualservers.bigip.operator.dev") {
		t.Errorf("crdgen from the image: %v\n%.300s", err, crds)
	}
}
