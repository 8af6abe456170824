"""Query jobs: durable records, a runner that executes them off the event loop, and waiting."""
