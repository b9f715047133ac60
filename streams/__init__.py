"""Stream sources and sinks: replay readers (Kafka and call hook to come).

Nothing in this package imports torch; it hands decoded work to ``engine``.
"""
