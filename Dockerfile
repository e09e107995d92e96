# Two images from one file:
#   target "bot"     (the default): the bot alone, as a non-root user; what docker-compose.yml deploys.
#   target "sandbox": the bot plus Samba and the stand-ins, for `docker compose --profile sandbox`.
# Based on Debian's own Python (the same packages the sandbox needs come from the same archive).
# libgssapi-krb5-2: MIT Kerberos at run time, for auth = "kerberos" to the management host; tzdata: the
# time zones change windows are read in.
# The base image is pinned by digest (scripts/pin-base-image.sh resolves the tag's current digest and
# rewrites this line); the Python packages come from requirements.lock, every file checked by hash.
FROM debian:bookworm-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251 AS base
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends python3 python3-venv ca-certificates \
    libgssapi-krb5-2 tzdata \
 && rm -rf /var/lib/apt/lists/*
# Behind a TLS-inspecting proxy, pass its CA (PEM) so pip trusts it during the build, e.g.
#   EXTRA_CA_CERT="$(cat /usr/local/share/ca-certificates/*.crt)" docker compose build
ARG EXTRA_CA_CERT=""
RUN if [ -n "$EXTRA_CA_CERT" ]; then \
      printf '%s\n' "$EXTRA_CA_CERT" > /usr/local/share/ca-certificates/extra-ca.crt && update-ca-certificates; \
    fi
RUN python3 -m venv /opt/kerberos-bot
# pip uses the system's CA store (with the proxy's CA, if given), not only its own copy of certifi
ENV PATH=/opt/kerberos-bot/bin:$PATH PYTHONUNBUFFERED=1 PIP_CERT=/etc/ssl/certs/ca-certificates.crt
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY bot ./bot
COPY handlers ./handlers

FROM base AS sandbox
# Samba provisions and serves the test DCs as root inside this throwaway container. The sandbox is
# its own distribution (sandbox/, with its shell scripts as package data); the "bot" image below
# never holds it.
COPY scripts ./scripts
COPY sandbox ./sandbox
COPY requirements-sandbox.lock ./
RUN ./scripts/install-system-packages.sh && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir -q --require-hashes -r requirements.lock -r requirements-sandbox.lock \
 && pip install --no-cache-dir -q --no-deps . ./sandbox
ENV KERBEROS_BOT_SAMBA_ROOT=/var/lib/kerberos-bot-samba
ENTRYPOINT ["kerberos-bot"]
CMD ["demo"]

FROM base AS wheels
# python-gssapi and krb5 (pypsrp's Kerberos) publish no Linux wheels: build them here (from sdists
# whose hashes the lock names), so the deployed image carries no compiler.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gcc libc6-dev python3-dev libkrb5-dev \
 && pip wheel --no-cache-dir -q --require-hashes -w /wheels -r requirements.lock \
 && pip wheel --no-cache-dir -q --no-deps -w /wheels .

FROM base AS bot
COPY --from=wheels /wheels /wheels
# exactly the locked set: no index, no resolution, then a consistency check
# the build proxy's CA (EXTRA_CA_CERT) was for pip only: the deployed image trusts Debian's store alone
RUN pip install --no-cache-dir -q --no-index --no-deps /wheels/*.whl \
 && pip check \
 && rm -rf /wheels \
 && rm -f /usr/local/share/ca-certificates/extra-ca.crt && update-ca-certificates --fresh > /dev/null \
 && useradd --create-home --uid 10001 kerberosbot
ENV PIP_CERT=
USER kerberosbot
EXPOSE 3000
ENTRYPOINT ["kerberos-bot"]
CMD ["serve", "--host", "0.0.0.0", "--port", "3000"]
