# Minimal image for `mawid serve` / `mawid worker` (docker-compose.yml).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY templates ./templates
COPY migrations ./migrations
# Editable: the code stays in /app next to templates/ and migrations/,
# which the service finds relative to its package directory.
RUN pip install -e .
# Catalogs are compiled at build time (.mo files are not in git).
RUN if ls service/locale/*/LC_MESSAGES/messages.po >/dev/null 2>&1; then \
      pybabel compile -d service/locale -D messages; fi
RUN useradd --system --home-dir /app mawid
USER mawid

EXPOSE 8080
CMD ["mawid", "serve"]
