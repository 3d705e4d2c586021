# The kafka-reliable CLI and retry worker as an image (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kafka_reliable ./kafka_reliable
COPY schemas ./schemas
RUN pip install --no-cache-dir .
USER nobody
HEALTHCHECK CMD ["kafka-reliable", "health", "--timeout-s", "5"]
ENTRYPOINT []
CMD ["kafka-reliable", "--help"]
