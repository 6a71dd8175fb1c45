"""A small bookshop: Flask, SQLAlchemy 2 ORM on PostgreSQL, Jinja templates, login sessions and a JSON API,
served by gunicorn (see gunicorn.conf.py) and recorded request by request with pytest-retrace."""
