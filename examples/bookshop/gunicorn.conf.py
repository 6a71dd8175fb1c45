# gunicorn -c gunicorn.conf.py bookshop.app:app
import os

bind = os.environ.get("BOOKSHOP_BIND", "127.0.0.1:8000")
workers = 2
threads = 4
worker_class = "gthread"
graceful_timeout = 10
