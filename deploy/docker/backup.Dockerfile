# AurumAI backup image: the Helm chart's backup CronJob runs it (ENTRYPOINT aurum-backup); the
# same image restores (`aurum-restore`, see docs/backup.md).
#
#   docker build -f deploy/docker/backup.Dockerfile -t aurum-backup deploy/backup
#
# The build context is deploy/backup (the two scripts and their shared library, nothing else), not the repository
# root: the root's .dockerignore admits only the Rust sources, and a narrow context keeps
# anything else out of the image.
#
# Contents: Debian 12's PostgreSQL 15 client (pg_dump, pg_restore, psql) and age 1.1, plus
#   /usr/local/bin/aurum-backup   deploy/backup/aurum-backup.sh
#   /usr/local/bin/aurum-restore  deploy/backup/aurum-restore.sh
#   /usr/local/bin/aurum-backup-lib.sh  deploy/backup/aurum-backup-lib.sh (sourced by both)
# pg_dump must be at least the server's major version: this image serves PostgreSQL 15 (and
# older) servers.
#
# Run-time contract (the CronJob's pod spec):
#   - AURUM_BACKUP_DIR: a mounted volume, writable by uid/gid 65532 (fsGroup 65532);
#   - AURUM_BACKUP_RECIPIENTS_FILE: a mounted file of age PUBLIC keys; the private key is never
#     in the cluster;
#   - PGHOST, PGPORT, PGDATABASE, PGUSER, PGSSLMODE (verify-full), PGSSLROOTCERT, and
#     PGPASSWORD_FILE naming a mounted Secret key;
#   - a writable /tmp (an emptyDir, preferably medium: Memory) for the private password file and
#     the pipe between pg_dump and age; the root filesystem can stay read-only.
# No secret is baked in: no ENV or ARG holds one.
#
# Works with BuildKit and with the legacy builder: no heredocs, --chmod or --link.

# Debian 12 slim, pinned to a point release. For reproducible builds pin the digest as well
# (tag@sha256:...) and let Dependabot/Renovate move it.
FROM debian:12.12-slim

# The repository the image is built from; CI passes --build-arg IMAGE_SOURCE=<repository URL>.
ARG IMAGE_SOURCE="aurumai:deploy/docker/backup.Dockerfile"

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# hadolint DL3008 (pin apt package versions) is ignored on purpose, as in deploy/docker/
# Dockerfile: Debian drops superseded versions of a stable release from its archive at every
# point or security release, so exact pins would break the build within weeks. The base tag
# pins the release; postgresql-client-15 and age are Debian 12's own, patched by its security
# updates, and visible to image scanners in /var/lib/dpkg/status.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15 age ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /backup \
    && chown 65532:65532 /backup \
    && chmod 0750 /backup

COPY aurum-backup.sh /usr/local/bin/aurum-backup
COPY aurum-restore.sh /usr/local/bin/aurum-restore
COPY aurum-backup-lib.sh /usr/local/bin/aurum-backup-lib.sh
# The scripts must run and must at least parse their options here, not first in the cluster.
RUN chmod 0755 /usr/local/bin/aurum-backup /usr/local/bin/aurum-restore \
    && chmod 0644 /usr/local/bin/aurum-backup-lib.sh \
    && aurum-backup --help >/dev/null \
    && aurum-restore --help >/dev/null \
    && pg_dump --version \
    && age --version

LABEL org.opencontainers.image.title="aurum-backup" \
      org.opencontainers.image.description="AurumAI database backup: pg_dump streamed through age encryption, with retention; aurum-restore restores." \
      org.opencontainers.image.source="${IMAGE_SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="AurumAI"

# The default backup directory when AURUM_BACKUP_DIR is not set otherwise: mount a volume here.
ENV AURUM_BACKUP_DIR=/backup \
    AURUM_BACKUP_KEEP=7
WORKDIR /backup
USER 65532:65532
# aurum-backup stops pg_dump and age and removes its partial file on SIGTERM.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/aurum-backup"]
