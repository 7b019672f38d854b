# syntax=docker/dockerfile:1
# The operator's image for Docker/Buildah/Podman. `make image` builds the same image without a
# container engine (hack/image.sh): a static binary, the CA bundle, passwd entries, user 65532.
#
#   docker build -t bigip-operator:0.1.0 .

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Static (glibc's static libc; TLS is rustls), without the BIG-IP simulator, symbols stripped.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --locked --profile image --target "$(uname -m)-unknown-linux-gnu" --no-default-features --bin bigip-operator \
 && cp "target/$(uname -m)-unknown-linux-gnu/image/bigip-operator" /bigip-operator \
 && mkdir -p /rootfs/etc /rootfs/tmp \
 && printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /rootfs/etc/passwd \
 && printf 'root:x:0:\nnonroot:x:65532:\n' > /rootfs/etc/group

FROM scratch
COPY --from=build /rootfs/ /
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /bigip-operator /usr/local/bin/bigip-operator
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/bigip-operator"]
CMD ["run", "--help"]
