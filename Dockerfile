# StoryBot image: one process, the Discord bot.
#
#   docker build -t storybot .
#   docker run --rm storybot ask "What happened?"                        # offline, no token
#   docker compose up -d                                                # the bot (see README.md, "Deploying with Docker")
#
# PYTHON_IMAGE lets a machine without Docker Hub build from a local stand-in for
# python:3.11-slim (scripts/docker-check.sh does that). The minor version matches
# requires-python in pyproject.toml.
ARG PYTHON_IMAGE=python:3.11-slim

# Stage 1: the dependency list from pyproject.toml (with the `postgres` extra: one image serves
# a single process with its SQLite file and several processes sharing PostgreSQL). The final stage copies only this
# list, so editing other parts of pyproject.toml (tool settings, version) keeps the
# cached dependency layer; only a changed dependency list reinstalls.
FROM ${PYTHON_IMAGE} AS requirements
COPY pyproject.toml /tmp/pyproject.toml
RUN python -c "import tomllib; p = tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']; print('\n'.join(p.get('dependencies', []) + p['optional-dependencies']['postgres']))" \
        > /tmp/requirements.txt

# Stage 2: the project installed on its own (the wheel bundles knowledge/ as the seed knowledge
# base). README.md (the package's readme) and LICENSE are copied when present.
FROM ${PYTHON_IMAGE} AS project
COPY pyproject.toml README.md* LICENSE* /src/
COPY bot /src/bot
COPY knowledge /src/knowledge
RUN pip install --no-deps --target /install /src

# Stage 3: the image.
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="storybot" \
      org.opencontainers.image.description="Discord bot that answers questions about one news article"

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Fixed uid/gid so a volume's ownership means the same thing in every image version.
RUN groupadd --system --gid 10001 storybot \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin storybot \
 && mkdir -p /data \
 && chown 10001:10001 /data

# 1) Dependencies only, before any source: this layer is rebuilt only when the
#    dependency list changes, not on every source edit.
#    What only a developer uses is removed in the same layer: the packages' own test suites
#    (numpy's are 15 MB), type stubs (*.pyi), numpy's Fortran wrapper generator (f2py) and its
#    old build system (distutils). Nothing imports them at run time; scripts/docker-check.sh
#    proves the image still answers.
COPY --from=requirements /tmp/requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt \
 && site=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") \
 && find "$site" -depth -type d -name tests -path "$site/*/tests" -exec rm -rf {} + \
 && find "$site" -name "*.pyi" -delete \
 && rm -rf "$site/numpy/f2py" "$site/numpy/distutils" \
 && python -c "import numpy, numpy.typing, safetensors, psycopg, psycopg_pool, discord, rapidfuzz, yaml, ruamel.yaml" \
 && rm -f /tmp/requirements.txt

# 2) The project itself, installed in the `project` stage above: only the installed files
#    are copied, so the source tree (with its 23 MB model) never becomes a layer of its own.
COPY --from=project /install /opt/storybot
ENV PYTHONPATH=/opt/storybot
RUN python -c "import bot"

# One volume holds everything the bot writes: the SQLite file, the heartbeat file and
# the curators' knowledge base. The seed is also placed at /data/knowledge here, so
# Docker copies it into every new, empty volume (named or anonymous): `docker run
# --rm IMAGE ask ...` answers at once, and an existing volume keeps the curators'
# additions across restarts and image upgrades (Docker never copies into a volume
# that has content). For bind mounts, `run` seeds an empty folder itself.
# Declared after the chown, so a new volume starts out owned by uid 10001.
COPY --chown=10001:10001 knowledge /data/knowledge
ENV STORYBOT_DATA=/data \
    STORYBOT_KNOWLEDGE=/data/knowledge \
    STORYBOT_CACHE=/data/cache
WORKDIR /data

USER 10001:10001

# The seed knowledge base's sentence embeddings, computed once here (a few seconds) and cached
# by content in /data/cache, which a new volume gets a copy of: the first start does not
# encode them again. A curator's edit re-encodes only the texts it changed.
RUN python -m bot ask "warm up" > /dev/null
VOLUME ["/data"]

# The bot touches /data/heartbeat on every gateway heartbeat (~41 s on Discord);
# `healthcheck` fails once it is older than STORYBOT_HEALTH_MAX_AGE (default 90 s).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-m", "bot", "healthcheck"]

# Exec form, so `docker stop`'s SIGTERM goes to the bot, not to a shell. `run` handles
# SIGTERM itself (as PID 1, Python ignores it otherwise); still run with an init,
# `docker run --init` / compose `init: true`, which forwards signals and reaps children.
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
