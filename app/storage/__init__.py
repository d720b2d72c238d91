"""Object storage for job inputs and outputs: local directory (default) or S3."""
