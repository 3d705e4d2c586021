"""A producer process for the SIGKILL scenarios: sends seq 0.. as fast as it can.

After every ``send_message`` that returned, the count is stored in a shared memory-mapped
file, so the parent knows exactly which records the application was told were accepted,
even after a SIGKILL. SIGTERM stops the loop and closes the producer (a graceful worker).
Usage: producer_child.py BOOTSTRAP TOPIC SPOOL COUNTER_FILE DURABILITY
(DURABILITY ``default`` passes nothing: the library's default mode.)
"""

from __future__ import annotations

import mmap
import signal
import struct
import sys

from kafka_reliable import ReliableKafkaProducer

_stop = False


def _on_term(*_: object) -> None:
    global _stop
    _stop = True


def main() -> None:
    bootstrap, topic, spool, counter, durability = sys.argv[1:6]
    signal.signal(signal.SIGTERM, _on_term)
    kwargs = {"durability": durability} if durability != "default" else {}
    producer = ReliableKafkaProducer(bootstrap_servers=bootstrap, spool_path=spool, enable_metrics=False, **kwargs)
    with open(counter, "r+b") as f:
        mm = mmap.mmap(f.fileno(), 8)
        seq = 0
        while not _stop:
            producer.send_message(topic, {"seq": seq, "pad": "x" * 64}, key=str(seq % 97))
            seq += 1
            struct.pack_into("<q", mm, 0, seq)
    producer.close(30)


if __name__ == "__main__":
    main()
