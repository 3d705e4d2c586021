"""The feature document's snippets, unchanged but for the import path (kafka_reliable).

Run against a broker: ``python docs/examples/feature_document.py`` (needs the topic
``transactions``; ``make demo`` and the tests create it). The tests run this file.
"""

# --- Basic Reliable Producer ---------------------------------------------------------------
from kafka_reliable import ReliableKafkaProducer

# Create producer with default settings
producer = ReliableKafkaProducer(
    bootstrap_servers=['localhost:9092'],
    enable_deduplication=True
)

# Send a message
message_id = producer.send_message(
    topic="transactions",
    value={"user_id": "123", "amount": 99.99},
    key="123"
)

# Check message status
status = producer.get_message_status(message_id)
print(f"Message status: {status}")

# Get comprehensive statistics
stats = producer.get_stats()
print(f"Error rate: {stats['error_rate']:.2%}")
print(f"Average latency: {stats['latency_stats']['avg_ms']:.2f}ms")

# --- Batch Operations ----------------------------------------------------------------------
# Send batch of messages
messages = [
    {"user_id": "123", "amount": 99.99},
    {"user_id": "456", "amount": 149.99},
    {"user_id": "789", "amount": 199.99}
]

results = producer.send_batch(
    topic="transactions",
    messages=messages,
    key_extractor=lambda x: x['user_id']
)

print(f"Sent: {results['sent']}/{results['total']} messages")

# --- Statistics ----------------------------------------------------------------------------
stats = producer.get_stats()

# Basic metrics
print(f"Messages sent: {stats['messages_sent']}")
print(f"Messages failed: {stats['messages_failed']}")
print(f"Error rate: {stats['error_rate']:.2%}")

# Latency metrics
latency = stats['latency_stats']
print(f"Average latency: {latency['avg_ms']:.2f}ms")
print(f"P95 latency: {latency['p95_ms']:.2f}ms")
print(f"P99 latency: {latency['p99_ms']:.2f}ms")

# DLQ metrics
dlq = stats['dlq_stats']
print(f"DLQ size: {dlq['total_messages']}")
print(f"DLQ by topic: {dlq['topic_breakdown']}")

# Retry metrics
retry = stats['retry_stats']
print(f"Total retries: {retry['total_retries']}")
print(f"Successful retries: {retry['successful_retries']}")

# Deduplication metrics (if enabled)
if 'deduplication_stats' in stats:
    dedup = stats['deduplication_stats']
    print(f"Duplicate rate: {dedup['duplicate_rate']:.2%}")

# --- Health Monitoring ---------------------------------------------------------------------
# Get current health status
health = producer.get_health_status()
print(f"Overall status: {health['status']}")  # healthy, degraded, unhealthy

# Check specific metrics
metrics = health['metrics']
print(f"Current error rate: {metrics['avg_error_rate']:.4f}")
print(f"Current latency: {metrics['avg_latency_ms']:.2f}ms")

# View any issues
if health['issues']:
    for issue in health['issues']:
        print(f"Issue: {issue}")

# --- Debugging Tools -----------------------------------------------------------------------
# Get detailed error information
dlq_messages = producer.get_dlq_messages("transactions")
for msg in dlq_messages:
    print(f"Message {msg.id}: {msg.last_error}")
    print(f"Retry count: {msg.retry_count}")
    print(f"Original value: {msg.value}")

# Check pending messages
pending = producer.get_pending_messages()
print(f"Pending messages: {len(pending)}")

# Get retry queue status
retry_stats = producer.retry_manager.get_stats()
print(f"Pending retries: {retry_stats['pending_retries']}")

producer.close()
