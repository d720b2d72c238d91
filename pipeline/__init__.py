"""Enclave's inference library: images and videos in, swapped images and videos out.

It knows nothing of HTTP, jobs, databases or S3 and never imports ``app``.
"""
