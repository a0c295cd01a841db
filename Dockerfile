# helpline as a container: the wheel built from this checkout, installed with the versions
# it was tested with (constraints.txt), run as an unprivileged user. Build it from the
# repository root:
#
#   docker build -t helpline:0.1.0 .
#
# The image holds no secret and no data: the key comes from the environment
# (HELPLINE_SECRET_KEY), the database lives in the volume /var/lib/helpline. See
# docs/deploy.md and docs/signal-compose.yaml.

# The Python the tests ran with (3.11.7); pin the digest too once you have pulled it:
#   docker pull python:3.11.7-slim-bookworm && docker inspect --format '{{index .RepoDigests 0}}' ...
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md babel.cfg ./
COPY helpline ./helpline
COPY flows ./flows
COPY locales ./locales
COPY data ./data
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM ${PYTHON_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HELPLINE_DB=/var/lib/helpline/helpline.db
COPY constraints.txt /tmp/constraints.txt
COPY --from=build /dist /tmp/dist
RUN python -m pip install --no-cache-dir -c /tmp/constraints.txt /tmp/dist/helpline-*.whl \
    && rm -rf /tmp/dist /tmp/constraints.txt \
    && useradd --system --uid 10001 --home-dir /var/lib/helpline --shell /usr/sbin/nologin helpline \
    && mkdir -p /var/lib/helpline /var/backups/helpline \
    && chown helpline:helpline /var/lib/helpline /var/backups/helpline \
    && chmod 0700 /var/lib/helpline /var/backups/helpline
USER helpline
WORKDIR /var/lib/helpline
VOLUME ["/var/lib/helpline"]
# `docker compose run --rm helpline doctor`, `... backup /var/backups/helpline`, etc.
ENTRYPOINT ["helpline"]
CMD ["run"]
