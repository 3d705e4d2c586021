"""``python -m kafka_reliable`` runs the ``kafka-reliable`` command line."""

import sys

from kafka_reliable.cli.main import main

sys.exit(main())
