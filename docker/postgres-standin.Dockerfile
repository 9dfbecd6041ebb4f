# A stand-in for the official postgres image, for machines without Docker Hub (the image check,
# scripts/docker-check.sh): Debian's postgresql package on the same Debian base as the bot's
# stand-in, with an entrypoint that honours what compose.cluster.yaml uses of the official one:
# POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA, `pg_isready`, and `postgres` arguments.
ARG BASE_IMAGE=local/python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql \
 && rm -rf /var/lib/apt/lists/* \
 && for f in /usr/lib/postgresql/*/bin/*; do [ -e "/usr/local/bin/${f##*/}" ] || ln -s "$f" /usr/local/bin/; done
COPY postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["postgres"]
