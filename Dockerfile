# The one image every Annotate Anyone process runs from (API, CPU worker, GPU worker, beat);
# docker-compose.yml picks the command. Build: docker build -t annotate-anyone .

FROM node:20-bookworm-slim AS web
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/ ./
RUN npm run build

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --create-home --uid 10001 annotate
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server/ server/
COPY workers/ workers/
COPY migrations/ migrations/
COPY alembic.ini ./
# The ml extra brings torch, open_clip and transformers (CUDA wheels on x86_64 from PyPI).
# Editable: the CLI and the API find migrations/ and web/dist beside the code, in /app.
RUN pip install --no-cache-dir -e '.[ml]'
COPY --from=web /src/web/dist web/dist
RUN mkdir -p /var/lib/annotate-anyone && chown annotate /var/lib/annotate-anyone
USER annotate
ENV AA_DATA_DIR=/var/lib/annotate-anyone
EXPOSE 8000
CMD ["annotate-anyone", "--help"]
