"""``python -m kafka_reliable.worker`` runs the retry worker.

Same options as ``kafka-reliable retry-worker``.
"""

import sys

from kafka_reliable.worker.launch import main

sys.exit(main())
