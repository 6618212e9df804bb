# escale-whoami image: the whoami example backend (examples/whoami.rs), static, FROM scratch.
# Built by scripts/build-images.sh from a context holding only the binary and this file:
#
#   RUSTFLAGS='-C target-feature=+crt-static' cargo build --release \
#       --target x86_64-unknown-linux-gnu --target-dir target/static --example whoami
#   ctx=$(mktemp -d)
#   cp target/static/x86_64-unknown-linux-gnu/release/examples/whoami "$ctx/"
#   cp docker/whoami.Dockerfile "$ctx/Dockerfile"
#   DOCKER_BUILDKIT=0 docker build -t escale-whoami:dev "$ctx"
#
# Settings come from the environment: WHOAMI_NAME, WHOAMI_ENV_PREFIX, WHOAMI_PORT, and
# WHOAMI_TLS_SELF_SIGNED=true (or WHOAMI_TLS_CERT/WHOAMI_TLS_KEY) to serve TLS.
FROM scratch
LABEL io.escale.image=whoami
COPY whoami /whoami
ENV WHOAMI_PORT=80
EXPOSE 80
STOPSIGNAL SIGTERM
ENTRYPOINT ["/whoami"]
