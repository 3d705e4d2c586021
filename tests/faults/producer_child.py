"""A producer process for the SIGKILL scenario: sends seq 0.. as fast as it can.

After every ``send_message`` that returned, the count is stored in a shared memory-mapped
file, so the parent knows exactly which records the application was told were accepted,
even after a SIGKILL. Usage: producer_child.py BOOTSTRAP TOPIC SPOOL COUNTER_FILE DURABILITY
"""

from __future__ import annotations

import mmap
import struct
import sys

from kafka_reliable import ReliableKafkaProducer


def main() -> None:
    bootstrap, topic, spool, counter, durability = sys.argv[1:6]
    kwargs = {"durability": durability} if durability != "memory" else {}
    producer = ReliableKafkaProducer(bootstrap_servers=bootstrap, spool_path=spool, enable_metrics=False, **kwargs)
    with open(counter, "r+b") as f:
        mm = mmap.mmap(f.fileno(), 8)
        seq = 0
        while True:
            producer.send_message(topic, {"seq": seq, "pad": "x" * 64}, key=str(seq % 97))
            seq += 1
            struct.pack_into("<q", mm, 0, seq)


if __name__ == "__main__":
    main()
