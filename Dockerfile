# escale image: one statically linked binary in an empty image.
#
# No base image can be pulled where escale is tested (there is no registry), so the image
# is FROM scratch and the binary must be static; it reaches the Docker daemon over the unix
# socket and backends by IP, so it needs no libc files, DNS or NSS configuration.
#
# scripts/build-images.sh does all of this. By hand, from the repository root:
#
#   RUSTFLAGS='-C target-feature=+crt-static' cargo build --release \
#       --target x86_64-unknown-linux-gnu --target-dir target/static --bin escale
#   ctx=$(mktemp -d)
#   cp target/static/x86_64-unknown-linux-gnu/release/escale Dockerfile "$ctx/"
#   DOCKER_BUILDKIT=0 docker build -t escale:dev "$ctx"
#   rm -rf "$ctx"
#
# The build context holds only the binary and this file: sending target/ (gigabytes)
# as context would be slow and pointless.
FROM scratch
LABEL io.escale.image=escale
COPY escale /escale
# The buffering middleware keeps bodies beyond its memory threshold in $TMPDIR (/tmp),
# which an empty image lacks: WORKDIR creates the directory, and the next one restores /.
WORKDIR /tmp
WORKDIR /
EXPOSE 80 443 8080
# Enable once `escale healthcheck` exists (it must exit 0 when the proxy answers /ping):
# HEALTHCHECK --interval=10s --timeout=3s --retries=3 CMD ["/escale", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/escale"]
