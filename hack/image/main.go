// imagepack writes the operator's container image without a container engine: one layer
// holding the static binary (and the files a scratch image lacks), as an OCI image layout and
// as a tarball that `docker load` / `podman load` read. The same image the Dockerfile builds.
//
//	imagepack -binary target/.../bigip-operator -ca-bundle /etc/ssl/certs/ca-certificates.crt \
//	          -tag bigip-operator:0.1.0 -out dist/image
//
// Everything in the image is reproducible: file times and the image's creation time are
// SOURCE_DATE_EPOCH (0 when unset), so the same binary gives the same digest.
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's conventions, shared with the Dockerfile and the chart.
const (
	BinaryPath   = "/usr/local/bin/bigip-operator"
	CABundlePath = "/etc/ssl/certs/ca-certificates.crt"
	UID          = 65532
)

func main() {
	binary := flag.String("binary", "", "the statically linked operator binary")
	caBundle := flag.String("ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "PEM bundle of public CAs (for BIG-IPs with publicly signed certificates); empty: none")
	tag := flag.String("tag", "", "image name and tag, e.g. bigip-operator:0.1.0")
	out := flag.String("out", "dist/image", "output directory: <out>/oci (OCI layout) and <out>/<name>-<tag>.docker.tar")
	version := flag.String("version", "", "version label (default: the tag's tag)")
	flag.Parse()
	if *binary == "" || *tag == "" {
		fmt.Fprintln(os.Stderr, "imagepack: -binary and -tag are required")
		os.Exit(2)
	}
	if err := pack(*binary, *caBundle, *tag, *out, *version); err != nil {
		fmt.Fprintln(os.Stderr, "imagepack:", err)
		os.Exit(1)
	}
}

func sourceDate() (time.Time, error) {
	epoch := os.Getenv("SOURCE_DATE_EPOCH")
	if epoch == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	seconds, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", epoch, err)
	}
	return time.Unix(seconds, 0).UTC(), nil
}

// layerTar is the image's only layer: the binary, the CA bundle, and passwd/group entries for
// the non-root user (so tools that look the user up find a name).
func layerTar(binary []byte, caBundle []byte, date time.Time) ([]byte, error) {
	var buffer bytes.Buffer
	w := tar.NewWriter(&buffer)
	dir := func(path string) error {
		return w.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: path + "/", Mode: 0o755, ModTime: date, Format: tar.FormatPAX})
	}
	file := func(path string, mode int64, content []byte) error {
		if err := w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: mode, Size: int64(len(content)), ModTime: date, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := w.Write(content)
		return err
	}
	dirs := []string{"etc", "usr", "usr/local", "usr/local/bin", "tmp"}
	if caBundle != nil {
		dirs = append(dirs, "etc/ssl", "etc/ssl/certs")
	}
	for _, d := range dirs {
		if err := dir(d); err != nil {
			return nil, err
		}
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", UID, UID)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", UID)
	if err := file("etc/passwd", 0o644, []byte(passwd)); err != nil {
		return nil, err
	}
	if err := file("etc/group", 0o644, []byte(group)); err != nil {
		return nil, err
	}
	if caBundle != nil {
		if err := file(CABundlePath[1:], 0o644, caBundle); err != nil {
			return nil, err
		}
	}
	if err := file(BinaryPath[1:], 0o755, binary); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buffer.Bytes(), nil
}

func pack(binaryPath, caBundlePath, tag, out, version string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("tag %q: %w", tag, err)
	}
	if version == "" {
		version = ref.TagStr()
	}
	date, err := sourceDate()
	if err != nil {
		return err
	}
	binary, err := os.ReadFile(binaryPath)
	if err != nil {
		return err
	}
	var caBundle []byte
	if caBundlePath != "" {
		if caBundle, err = os.ReadFile(caBundlePath); err != nil {
			return fmt.Errorf("CA bundle: %w", err)
		}
	}
	content, err := layerTar(binary, caBundle, date)
	if err != nil {
		return err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(content)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(9))
	if err != nil {
		return err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.Append(base, mutate.Addendum{
		Layer:     layer,
		History:   v1.History{Created: v1.Time{Time: date}, CreatedBy: "imagepack: " + filepath.Base(binaryPath), Comment: "static binary, CA bundle, passwd"},
		MediaType: types.OCILayer,
	})
	if err != nil {
		return err
	}
	config, err := img.ConfigFile()
	if err != nil {
		return err
	}
	config = config.DeepCopy()
	config.Architecture = "amd64"
	config.OS = "linux"
	config.Created = v1.Time{Time: date}
	config.Config.User = fmt.Sprintf("%d:%d", UID, UID)
	config.Config.Entrypoint = []string{BinaryPath}
	config.Config.Cmd = []string{"run", "--help"}
	config.Config.WorkingDir = "/"
	config.Config.Env = []string{"PATH=/usr/local/bin", "SSL_CERT_FILE=" + CABundlePath}
	config.Config.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
	config.Config.Labels = map[string]string{
		"org.opencontainers.image.title":       "bigip-operator",
		"org.opencontainers.image.description": "Programs F5 BIG-IP load balancers from Kubernetes",
		"org.opencontainers.image.version":     version,
		"org.opencontainers.image.licenses":    "Apache-2.0",
		"org.opencontainers.image.created":     date.Format(time.RFC3339),
	}
	if img, err = mutate.ConfigFile(img, config); err != nil {
		return err
	}

	ociDir := filepath.Join(out, "oci")
	if err := os.RemoveAll(ociDir); err != nil {
		return err
	}
	index, err := layout.Write(ociDir, empty.Index)
	if err != nil {
		return err
	}
	if err := index.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref.TagStr(),
		"io.containerd.image.name":          ref.Name(),
	})); err != nil {
		return err
	}
	dockerTar := filepath.Join(out, fmt.Sprintf("%s-%s.docker.tar", filepath.Base(ref.RepositoryStr()), ref.TagStr()))
	if err := tarball.WriteToFile(dockerTar, ref, img); err != nil {
		return err
	}

	digest, err := img.Digest()
	if err != nil {
		return err
	}
	manifest, err := img.Manifest()
	if err != nil {
		return err
	}
	compressed := manifest.Config.Size
	for _, l := range manifest.Layers {
		compressed += l.Size
	}
	fmt.Printf("image %s (%s)\n", tag, ref.Name())
	fmt.Printf("  digest            %s\n", digest)
	fmt.Printf("  OCI layout        %s\n", ociDir)
	fmt.Printf("  docker load -i    %s\n", dockerTar)
	fmt.Printf("  size compressed   %.1f MB (%d bytes: layer + config)\n", float64(compressed)/1e6, compressed)
	fmt.Printf("  size unpacked     %.1f MB\n", float64(len(content))/1e6)
	return nil
}
