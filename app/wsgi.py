"""The WSGI entry point for gunicorn: `gunicorn -c python:app.gunicorn_conf app.wsgi:app` (as `ninety run`).

Request bodies are read in full, at a minimum rate, before the application runs (app/request_body.py), so
a slow client cannot hold a thread and a database connection.
"""

from app import create_app
from app.request_body import BufferedBody

app = create_app()
app.wsgi_app = BufferedBody(app.wsgi_app, max_bytes=app.config["MAX_CONTENT_LENGTH"])
