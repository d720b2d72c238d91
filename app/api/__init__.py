"""The HTTP API: one router per resource, thin handlers over ``app.jobs.service``."""
