"""gunicorn settings for Zentro's web role: ``gunicorn -c gunicorn.conf.py wsgi:app`` (see docs/deploy.md).

Every value can be overridden from the environment without editing this file (GUNICORN_* below, or gunicorn's own
GUNICORN_CMD_ARGS). Workers hold no state between requests: sessions, idempotency records, scheduler leadership
and RCA progress live in PostgreSQL, rate limits in Redis (ZENTRO_RATELIMIT_STORAGE_URI), artifacts in the
storage directory (ZENTRO_STORAGE_DIR, a shared volume when there are several hosts).
"""
import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Threads per worker: RCA progress streams (SSE) hold a thread while they run, and report/PDF requests wait on the
# database; gthread keeps a slow client from blocking the worker. Processes give CPU parallelism.
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", 2 * multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))  # a worker silent this long is killed and replaced
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))  # on deploy: finish in-flight requests
keepalive = 5  # behind a load balancer that reuses connections
# Recycle workers now and then (jittered so they do not all restart together): bounds slow memory growth.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 5000))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", 500))
# No preload: each worker builds its own app, database pool and scheduler thread after the fork (APScheduler runs
# in every worker; one leader at a time holds the database lease and runs the jobs).
preload_app = False
# Zentro writes its own access line (logger zentro.access, JSON with ZENTRO_LOG_FORMAT=json); gunicorn's is off.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# The load balancer's addresses; X-Forwarded-* are trusted by the app itself through ZENTRO_PROXY_HOPS.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server, worker):
    """With several workers, Prometheus metrics are kept per process in PROMETHEUS_MULTIPROC_DIR; a dead worker's
    live gauges are removed so /metrics does not report them forever."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
