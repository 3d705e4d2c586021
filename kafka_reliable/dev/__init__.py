"""Local real services for development and tests: an Apache Kafka broker and Redis."""
